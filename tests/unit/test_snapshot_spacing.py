"""Snapshots are spaced out as open business grows, never closer than the interval."""

from __future__ import annotations

from ledger.application import snapshot_step
from tests.unit.helpers import found, members, work_with_hours


def test_a_small_cooperative_is_snapshotted_every_interval() -> None:
    coop = found(5)
    work_with_hours(coop, members(coop)[0], "client-1", *[30] * 100)
    assert snapshot_step(coop, 50) == 50


def test_each_doubling_of_a_large_open_state_doubles_the_events_between_snapshots() -> None:
    coop = found(5)
    member = members(coop)[0]
    work_with_hours(coop, member, "client-1", *[30] * 600)
    assert snapshot_step(coop, 50) == 100
    work_with_hours(coop, member, "client-2", *[30] * 600)
    assert snapshot_step(coop, 50) == 200
    work_with_hours(coop, member, "client-3", *[30] * 1200)
    assert snapshot_step(coop, 50) == 400
