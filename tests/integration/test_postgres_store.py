"""The PostgreSQL recorder replaces dead connections itself and never doubles a save."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from psycopg_pool import PoolTimeout

from ledger import Ledger, StoreConfig, storage
from ledger.pg_recorder import LockFreePostgresRecorder
from ledger.storage import Database
from tests.integration.support import Clock, World


@pytest.fixture
def world(postgres_url: str) -> Iterator[World]:
    clock = Clock()
    ledger = Ledger(StoreConfig.from_url(postgres_url), clock=clock)
    yield World.create(ledger, clock)
    ledger.close()


def recorder_of(world: World) -> LockFreePostgresRecorder:
    assert isinstance(world.ledger.recorder, LockFreePostgresRecorder)
    return world.ledger.recorder


def test_a_command_after_the_servers_connections_died_succeeds_on_a_fresh_one(
    world: World, postgres_url: str
) -> None:
    coop_id = world.found(size=3)
    world.ledger.take_work(coop_id, client_ref="before", actor=world.people[0])  # now cached
    config = StoreConfig.from_url(postgres_url)
    with psycopg.connect(config.conninfo, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None
    assert killed[0] > 0
    result = world.ledger.take_work(coop_id, client_ref="after the outage", actor=world.people[0])
    assert world.ledger.get_cooperative(coop_id).version == result.version


def test_a_save_whose_answer_was_lost_after_commit_is_acknowledged_once_not_doubled(
    world: World,
) -> None:
    coop_id = world.found(size=3)
    recorder = recorder_of(world)
    original = recorder.save
    calls: list[int] = []

    def commit_then_lose_the_answer(curs: Any, stored_events: Any, links: Any) -> list[int]:
        calls.append(len(stored_events))
        ids = original(curs, stored_events, links)
        if len(calls) == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return ids

    recorder.save = commit_then_lose_the_answer  # type: ignore[method-assign]
    before = world.ledger.recorder.max_notification_id() or 0
    result = world.ledger.take_work(coop_id, client_ref="once", actor=world.people[0])
    assert len(calls) == 2, "sent again on a fresh connection"
    stored = world.ledger.recorder.select_notifications(start=before + 1, limit=10)
    assert [n.id for n in stored] == [result.position], "one event, acknowledged at its position"
    coop = world.ledger.get_cooperative(coop_id)
    assert [w.client_ref for w in coop.work.values()].count("once") == 1


def test_a_save_or_a_read_that_never_gets_a_connection_fails_at_once(world: World) -> None:
    coop_id = world.found(size=3)
    world.ledger.take_work(coop_id, client_ref="up", actor=world.people[0])  # now cached
    recorder = recorder_of(world)
    calls: list[int] = []

    def refuse(*_: Any, **__: Any) -> Any:
        calls.append(1)
        # What the library raises when its pool has nothing to lend.
        message = "couldn't get a connection after 5.00 sec"
        raise OperationalError(message) from PoolTimeout(message)

    recorder.datastore.get_connection = refuse  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        world.ledger.take_work(coop_id, client_ref="down", actor=world.people[0])
    assert len(calls) == 1, "no second wait for a pool that has nothing to lend"
    calls.clear()
    with pytest.raises(OperationalError):
        world.ledger.get_cooperative(coop_id)  # reads: the snapshot, then the events
    assert len(calls) == 1, "a read is not tried ten times over either"


def test_a_queued_writer_holds_its_cooperatives_lock_and_never_waits_forever(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue only spares wasted work: behind a stuck holder a writer goes on racing."""
    monkeypatch.setattr(storage, "QUEUE_WAIT_S", 0.3)
    config = StoreConfig.from_url(postgres_url)
    db = Database(config)
    try:
        with db.queue(43), psycopg.connect(config.conninfo, autocommit=True) as other:
            taken = other.execute("SELECT pg_try_advisory_lock(43)").fetchone()
            assert taken == (False,), "held while the writer is queued"
        with psycopg.connect(config.conninfo, autocommit=True) as stuck:
            stuck.execute("SELECT pg_advisory_lock(42)")
            started = time.monotonic()
            with db.queue(42):
                waited = time.monotonic() - started
            assert 0.2 < waited < 5, "waited its turn, then went on without the lock"
    finally:
        db.close()
