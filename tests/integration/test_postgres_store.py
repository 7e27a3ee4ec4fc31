"""The PostgreSQL recorder replaces dead connections itself and never doubles a save."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError
from psycopg_pool import PoolTimeout

from ledger import Ledger, StoreConfig, pg_queue
from ledger.application import priority_key, queue_key
from ledger.errors import SaveOutcomeUnknown
from ledger.pg_queue import CaughtUp
from ledger.pg_recorder import LockFreePostgresRecorder
from ledger.pg_wire import Call, NoConnection
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

    def commit_then_lose_the_answer(
        line: Any, stored_events: Any, links: Any, guard: int | None = None
    ) -> list[int]:
        calls.append(len(stored_events))
        ids = original(line, stored_events, links, guard)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return ids

    recorder.save = commit_then_lose_the_answer  # type: ignore[method-assign]
    before = world.ledger.recorder.max_notification_id() or 0
    result = world.ledger.take_work(coop_id, client_ref="once", actor=world.people[0])
    assert len(calls) == 2, "sent again on a fresh connection"
    stored = world.ledger.recorder.select_notifications(start=before + 1, limit=10)
    assert [n.id for n in stored] == [result.position], "one event, acknowledged at its position"
    coop = world.ledger.get_cooperative(coop_id)
    assert [w.client_ref for w in coop.work.values()].count("once") == 1


def test_a_save_sent_before_the_store_went_away_is_reported_as_of_unknown_outcome(
    world: World,
) -> None:
    coop_id = world.found(size=3)
    recorder = recorder_of(world)
    original_save, original_take = recorder.save, recorder.lines.take

    def store_gone(*_: Any, **__: Any) -> Any:
        message = "no save connection: connection refused"
        raise OperationalError(message) from NoConnection(message)

    def commit_then_the_store_goes(
        line: Any, stored_events: Any, links: Any, guard: int | None = None
    ) -> list[int]:
        original_save(line, stored_events, links, guard)
        recorder.lines.take = store_gone  # type: ignore[method-assign]
        raise OperationalError("server closed the connection unexpectedly")

    recorder.save = commit_then_the_store_goes  # type: ignore[method-assign]
    before = world.ledger.get_cooperative(coop_id).version
    with pytest.raises(SaveOutcomeUnknown):
        world.ledger.take_work(coop_id, client_ref="maybe", actor=world.people[0])
    recorder.save = original_save  # type: ignore[method-assign]
    recorder.lines.take = original_take  # type: ignore[method-assign]
    assert world.ledger.get_cooperative(coop_id).version == before + 1, "it had in fact landed"
    assert issubclass(SaveOutcomeUnknown, OperationalError), "a 503, like any store outage"


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

    def no_line(*_: Any, **__: Any) -> Any:
        calls.append(1)
        message = "no save connection free after 5.00 s"
        raise OperationalError(message) from NoConnection(message)

    recorder.datastore.get_connection = refuse  # type: ignore[method-assign]
    recorder.lines.take = no_line  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        world.ledger.take_work(coop_id, client_ref="down", actor=world.people[0])
    assert len(calls) == 1, "no second wait for a pool that has nothing to lend"
    calls.clear()
    with pytest.raises(OperationalError):
        world.ledger.get_cooperative(coop_id)  # reads: the snapshot, then the events
    assert len(calls) == 1, "a read is not tried ten times over either"


def queue_ledger(config: StoreConfig) -> tuple[Ledger, LockFreePostgresRecorder, Call]:
    """A Ledger whose queue waits as long as the test set, and a turn's read that finds
    nothing (a cooperative nobody wrote)."""
    ledger = Ledger(config)
    recorder = ledger.recorder
    assert isinstance(recorder, LockFreePostgresRecorder)
    return ledger, recorder, recorder.read_after(uuid4(), 0)


def test_a_queued_writer_holds_its_cooperatives_lock_and_never_waits_forever(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The queue only spares wasted work: behind a stuck holder a writer goes on racing."""
    monkeypatch.setattr(pg_queue, "QUEUE_WAIT_S", 0.3)
    config = StoreConfig.from_url(postgres_url)
    ledger, recorder, nothing_yet = queue_ledger(config)
    try:
        with (
            recorder.queue(43) as place,
            psycopg.connect(config.conninfo, autocommit=True) as other,
        ):
            assert place.wait(nothing_yet) == CaughtUp([], None), "read on its turn"
            taken = other.execute("SELECT pg_try_advisory_lock(43)").fetchone()
            assert taken == (False,), "held while the writer is queued"
        with psycopg.connect(config.conninfo, autocommit=True) as after:
            taken = after.execute("SELECT pg_try_advisory_lock(43)").fetchone()
            assert taken == (True,), "let go when the writer is done"
        with psycopg.connect(config.conninfo, autocommit=True) as stuck:
            stuck.execute("SELECT pg_advisory_lock(42)")
            started = time.monotonic()
            with recorder.queue(42) as place:
                assert place.wait(nothing_yet) is None, "no turn: it races"
                waited = time.monotonic() - started
            assert 0.2 < waited < 5, "waited its turn, then went on without the lock"
    finally:
        ledger.close()


def test_a_racing_writer_gives_way_to_a_starving_queued_writer_then_goes_on(
    world: World, postgres_url: str
) -> None:
    coop_id = world.found(size=3)
    member = world.people[0]
    work_id = world.ledger.take_work(coop_id, client_ref="c", actor=member).value
    before = world.ledger.get_cooperative(coop_id).version
    refused: list[int] = []
    recorder = recorder_of(world)
    original = recorder.save

    def counting(line: Any, stored_events: Any, links: Any, guard: int | None = None) -> list[int]:
        try:
            return original(line, stored_events, links, guard)
        except IntegrityError:
            refused.append(0 if guard is None else 1)
            raise

    recorder.save = counting  # type: ignore[method-assign]
    done: list[float] = []
    with psycopg.connect(StoreConfig.from_url(postgres_url).conninfo, autocommit=True) as starving:
        # What a queued writer with priority holds: its turn in the queue and the priority.
        starving.execute("SELECT pg_advisory_lock(%s)", (queue_key(coop_id),))
        starving.execute("SELECT pg_advisory_lock(%s)", (priority_key(coop_id),))
        started = time.monotonic()
        racer = threading.Thread(
            target=lambda: done.append(
                world.ledger.log_hours(coop_id, work_id, minutes=15, actor=member).version
            )
        )
        racer.start()
        time.sleep(0.3)
        assert not done, "the racer waits behind the queued writer"
        starving.execute("SELECT pg_advisory_unlock_all()")
        racer.join(5)
    assert done == [before + 1], "then it goes on, and its hours are stored once"
    assert time.monotonic() - started >= 0.3
    assert refused == [1], "its racing save inserted nothing; its queued one went through"
    events = world.ledger.recorder.select_events(coop_id)
    with world.ledger.db.read() as cur:
        cur.execute(
            f"SELECT count(*) FROM {world.ledger.events_table}"
            " WHERE originator_id = ? AND hash IS NOT NULL",
            (str(coop_id),),
        )
        assert cur.fetchone()[0] == len(events) == before + 1, "no chain link without its event"


def test_a_queue_connection_stays_usable_after_many_waits_that_ran_out(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait that runs out fails its pipeline; the connection still serves the next turn."""
    monkeypatch.setattr(pg_queue, "QUEUE_WAIT_S", 0.05)
    config = StoreConfig.from_url(postgres_url)
    ledger, recorder, nothing_yet = queue_ledger(config)
    try:
        with psycopg.connect(config.conninfo, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(46)")
            for _ in range(8):
                with recorder.queue(46) as place:
                    assert place.wait(nothing_yet) is None
        with recorder.queue(46) as place:
            assert place.wait(nothing_yet) == CaughtUp([], None)
        assert len(recorder.turn_lines._idle) == 1, "one connection served every turn"
    finally:
        ledger.close()
