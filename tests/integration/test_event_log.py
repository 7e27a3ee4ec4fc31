"""The event log as readers see it: every committed event exactly once, never overtaken.

On PostgreSQL the writers take no lock, so commits land out of notification-id order;
the writers here hold their transactions open for random moments to make sure of it.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from ledger import Ledger
from ledger.log import START, LogPosition
from ledger.pg_recorder import LockFreePostgresRecorder
from tests.integration.support import MakeLedger, World, hold_saves_open

WRITERS = 6
COMMANDS = 25


def read_through(ledger: Ledger, position: LogPosition, last: int) -> list[Any]:
    """Everything after ``position`` up to notification id ``last``, waiting for it to pass.

    Transactions anywhere in the cluster (other tests, other databases) can hold the
    snapshot's xmin back for a moment; the reader waits for them, never past them.
    """
    found: list[Any] = []
    deadline = time.monotonic() + 10
    while not ledger.event_log.covers(position, last):
        assert time.monotonic() < deadline, f"events up to {last} never became passable"
        batch = ledger.event_log.read_log(position, 1000)
        if batch:
            found.extend(batch)
            position = batch[-1][0]
        else:
            time.sleep(0.002)
    return found


def hold_commits_open(ledger: Ledger, chance: random.Random) -> None:
    """Make this ledger's saves keep their transaction open a random moment before COMMIT."""
    if isinstance(ledger.recorder, LockFreePostgresRecorder):  # SQLite: one writer at a time
        hold_saves_open(ledger, lambda: time.sleep(chance.uniform(0, 0.02)))


def test_a_reader_tailing_concurrent_writers_sees_every_committed_event_once_in_commit_order(
    world: World, make_ledger: MakeLedger
) -> None:
    coops = [world.found(size=3) for _ in range(WRITERS)]
    start = world.ledger.recorder.max_notification_id() or 0
    chance = random.Random(20261127)
    done = threading.Event()
    seen: list[tuple[LogPosition, Notification]] = []

    def read() -> None:
        position = START
        while not done.is_set():
            batch = world.ledger.event_log.read_log(position, 50)
            seen.extend(batch)
            if batch:
                position = batch[-1][0]
            else:
                time.sleep(0.001)
        seen.extend(read_through(world.ledger, position, head()))

    def head() -> int:
        return world.ledger.recorder.max_notification_id() or 0

    def write(coop_id: UUID, seed: int) -> None:
        ledger = make_ledger(clock=world.clock)
        hold_commits_open(ledger, random.Random(seed))
        actor = world.people[0]
        for n in range(COMMANDS):
            ledger.take_work(coop_id, client_ref=f"client-{n}", actor=actor)

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(coop_id, chance.random())) for coop_id in coops]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    done.set()
    reader.join(60)

    stored = world.ledger.recorder.select_notifications(start=1, limit=10**6)
    ids = [n.id for _, n in seen]
    assert len(ids) == len(set(ids)), "no event is passed twice"
    assert sorted(ids) == [n.id for n in stored], "every committed event is passed"
    assert [p for p, _ in seen] == sorted(p for p, _ in seen), "positions only move forward"
    versions: dict[UUID, list[int]] = defaultdict(list)
    for _, n in seen:
        versions[UUID(str(n.originator_id))].append(n.originator_version)
    for coop_id in coops:
        assert versions[coop_id] == list(range(1, len(versions[coop_id]) + 1))
        assert len(versions[coop_id]) > COMMANDS
    assert len([i for i in ids if i > start]) == WRITERS * COMMANDS


def test_a_transaction_held_open_holds_the_reader_back_until_it_commits(
    world: World, make_ledger: MakeLedger
) -> None:
    coop_a, coop_b = world.found(size=3), world.found(size=3)
    position = read_through(world.ledger, START, world.ledger.recorder.max_notification_id() or 0)[
        -1
    ][0]
    held, other = make_ledger(clock=world.clock), make_ledger(clock=world.clock)
    inside, release = threading.Event(), threading.Event()
    if isinstance(held.recorder, LockFreePostgresRecorder):
        hold_saves_open(held, lambda: (inside.set(), release.wait(10)))
    else:
        inside.set()  # SQLite: the second writer simply waits its turn
        release.set()
    first = threading.Thread(
        target=held.take_work, args=(coop_a,), kwargs={"client_ref": "x", "actor": world.people[0]}
    )
    first.start()
    assert inside.wait(10)
    if release.is_set():
        first.join(10)
    later = other.take_work(coop_b, client_ref="y", actor=world.people[0])
    if not release.is_set():
        # The later commit is held back behind the open transaction, not passed.
        assert world.ledger.event_log.read_log(position, 100) == []
        assert not world.ledger.event_log.covers(position, later.position)
        release.set()
    first.join(10)
    batch = read_through(world.ledger, position, later.position)
    originators = [UUID(str(n.originator_id)) for _, n in batch]
    assert originators == [coop_a, coop_b]
    assert world.ledger.event_log.covers(batch[-1][0], later.position)
