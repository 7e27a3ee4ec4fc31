"""`coop-ledger migrate` upgrades a store of the previous release, losing and repeating nothing."""

from __future__ import annotations

import pytest

from ledger import Ledger, StoreConfig
from ledger.cli import main
from ledger.errors import StoreNeedsMigration
from ledger.pg_recorder import LockFreePostgresRecorder
from projections.registry import all_projections
from projections.runner import ProjectionRunner, read_all_tracking, tracking_table
from tests.integration.projection_support import assert_live_equals_fresh_rebuild
from tests.integration.support import Clock, World


def make_it_look_like_the_previous_release(ledger: Ledger) -> None:
    """The previous release's layout: no transaction ids, tracking by bare notification id."""
    with ledger.db.transaction() as cur:
        if isinstance(ledger.recorder, LockFreePostgresRecorder):
            events = f"{ledger.recorder.datastore.schema}.{ledger.recorder.events_table_name}"
            cur.execute(f"ALTER TABLE {events} DROP COLUMN transaction_id")
        cur.execute(f"ALTER TABLE {tracking_table(ledger.db)} DROP COLUMN xid")
        cur.execute(f"ALTER TABLE {tracking_table(ledger.db)} DROP COLUMN high")


def test_migrate_upgrades_a_store_of_the_previous_release_and_projections_resume_exactly(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", database_url)
    config = StoreConfig.from_url(database_url)
    clock = Clock()
    world = World.create(Ledger(config, clock=clock), clock)
    coop_id = world.found(size=4)
    projections = all_projections()
    ProjectionRunner(world.ledger, projections).catch_up()
    world.ledger.take_work(coop_id, client_ref="after the last catch-up", actor=world.people[0])
    old_head = world.ledger.recorder.max_notification_id() or 0
    make_it_look_like_the_previous_release(world.ledger)
    world.ledger.close()

    if config.kind == "postgresql":
        with pytest.raises(StoreNeedsMigration, match="coop-ledger migrate"):
            Ledger(config)
    with pytest.raises(StoreNeedsMigration, match="coop-ledger migrate"):
        ProjectionRunner(Ledger(config, check_store=False), projections)

    assert main(["migrate"]) == 0
    assert "migrated projection tracking" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "nothing to do" in capsys.readouterr().out

    ledger = Ledger(config, clock=clock)
    world = World(ledger, clock, world.facilitator, world.mentor, world.people)
    # Earlier events keep their order, ahead of everything written from now on.
    old = ledger.event_log.read_log((0, 0), 10**6)
    assert [n.id for _, n in old] == list(range(1, old_head + 1))
    assert all(position[0] == 0 for position, _ in old)
    world.ledger.take_work(coop_id, client_ref="after the migration", actor=world.people[1])
    runner = ProjectionRunner(ledger, projections)
    tracked = read_all_tracking(ledger.db, [p.name for p in projections])
    assert {t.position for t in tracked.values()} == {(0, old_head - 1)}
    assert runner.catch_up() == 2 * len(projections), "the two new events, each once"
    assert_live_equals_fresh_rebuild(ledger, projections)
    ledger.close()


def test_migrate_on_an_empty_store_has_nothing_to_do_and_leaves_it_ready(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", database_url)
    assert main(["migrate"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    with Ledger(StoreConfig.from_url(database_url)) as ledger:
        assert ledger.event_log.read_log((0, 0), 10) == []
