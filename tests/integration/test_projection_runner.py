"""How projections run: exactly once, never skipping, stopping on poison, rebuilt atomically."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest

from ledger import Ledger
from projections.framework import Context, Handler, Projection
from projections.rebuild import rebuild
from projections.roster import Roster, roster
from projections.runner import FAILED, ProjectionRunner, ProjectionTimeout
from tests.integration.projection_support import assert_live_equals_fresh_rebuild, rows
from tests.integration.support import MakeLedger, World, hold_saves_open


def count_events(ctx: Context, _: Any) -> None:
    ctx.execute("INSERT INTO {seen} (position) VALUES (?)", (ctx.position,))


def fail_on_leaving(ctx: Context, event: Any) -> None:
    raise ValueError(f"cannot handle a member leaving ({event.person_id})")


class Seen(Projection):
    """Records every position it is given: duplicates would violate the primary key."""

    name = "seen"
    tables = ("seen",)
    ddl = ("CREATE TABLE IF NOT EXISTS {seen} (position BIGINT PRIMARY KEY)",)
    handlers: ClassVar[dict[str, Handler]] = {}

    def apply(self, ctx: Context, event: Any) -> None:
        count_events(ctx, event)


class Poisoned(Seen):
    name = "poisoned"
    tables = ("poisoned",)
    ddl = ("CREATE TABLE IF NOT EXISTS {poisoned} (position BIGINT PRIMARY KEY)",)

    def apply(self, ctx: Context, event: Any) -> None:
        if type(event).__name__ == "MemberLeft":
            fail_on_leaving(ctx, event)
        ctx.execute("INSERT INTO {poisoned} (position) VALUES (?)", (ctx.position,))


def positions(ledger: Ledger, table: str) -> list[int]:
    return [int(r[0]) for r in rows(ledger.db, ledger.db.table(table))]


def test_catching_up_twice_applies_every_event_exactly_once(world: World) -> None:
    coop_id = world.found(size=5)
    world.ledger.take_work(coop_id, client_ref="c-1", actor=world.people[0])
    runner = ProjectionRunner(world.ledger, [Seen(), Roster()], batch_size=2)
    assert runner.catch_up() == 2 * 2
    world.ledger.leave(coop_id, actor=world.people[1])
    assert runner.catch_up() == 2 * 1
    assert runner.catch_up() == 0
    assert positions(world.ledger, "seen") == [1, 2, 3]
    assert roster(world.ledger.db, coop_id)["member_count"] == 4  # type: ignore[index]


def test_a_poison_event_stops_only_its_projection_and_is_never_skipped(world: World) -> None:
    coop_id = world.found(size=5)
    world.ledger.take_work(coop_id, client_ref="c-1", actor=world.people[0])
    world.ledger.leave(coop_id, actor=world.people[1])
    world.ledger.take_work(coop_id, client_ref="c-2", actor=world.people[2])
    runner = ProjectionRunner(world.ledger, [Poisoned(), Seen()])
    runner.catch_up()
    poisoned, seen = runner.status()
    assert (poisoned.state, poisoned.position, poisoned.error_position) == (FAILED, 2, 3)
    assert poisoned.error is not None
    assert "cannot handle a member leaving" in poisoned.error
    assert positions(world.ledger, "poisoned") == [1, 2]
    assert seen.position == 4
    assert runner.catch_up() == 0, "a failed projection stays where it stopped"
    with pytest.raises(ProjectionTimeout, match="poisoned at 2"):
        runner.wait_until(4, timeout=0.5)


def test_a_query_can_wait_for_the_projections_to_reach_its_write(world: World) -> None:
    coop_id = world.found(size=3)
    runner = ProjectionRunner(world.ledger, [Roster()])
    runner.start(poll_interval=0.02)
    try:
        result = world.ledger.admit_founding_member(coop_id, world.people[9], actor=world.mentor)
        runner.wait_until(result.position, timeout=5)
        assert roster(world.ledger.db, coop_id)["member_count"] == 4  # type: ignore[index]
    finally:
        runner.stop()
    later = world.ledger.leave(coop_id, actor=world.people[9])
    started = time.monotonic()
    with pytest.raises(ProjectionTimeout, match=f"position {later.position}"):
        runner.wait_until(later.position, timeout=0.3)
    assert time.monotonic() - started < 2, "the wait is bounded"


def test_a_writer_held_open_delays_the_projection_and_nothing_is_skipped(
    world: World, make_ledger: MakeLedger
) -> None:
    """One writer's transaction stays open while another writer commits after it."""
    coop_a, coop_b = world.found(size=3), world.found(size=3)
    runner = ProjectionRunner(world.ledger, [Seen()])
    runner.catch_up()
    held, other = make_ledger(clock=world.clock), make_ledger(clock=world.clock)
    inside, release = threading.Event(), threading.Event()
    # Pause the held writer right after its INSERT, before its COMMIT.
    hold_saves_open(held, lambda: (inside.set(), release.wait(10)))
    first = threading.Thread(
        target=held.take_work, args=(coop_a,), kwargs={"client_ref": "c", "actor": world.people[0]}
    )
    second = threading.Thread(
        target=other.take_work, args=(coop_b,), kwargs={"client_ref": "c", "actor": world.people[1]}
    )
    first.start()
    assert inside.wait(10)
    second.start()
    # On SQLite the projection's own write waits for the writers; on PostgreSQL it reads past.
    catching_up = threading.Thread(target=runner.catch_up)
    catching_up.start()
    time.sleep(0.5)
    assert positions(world.ledger, "seen") == [1, 2], "nothing uncommitted is seen"
    release.set()
    for thread in (first, second, catching_up):
        thread.join(10)
    runner.catch_up()
    assert positions(world.ledger, "seen") == [1, 2, 3, 4], "both writers' events, each once"


def test_a_rebuild_switches_to_tables_equal_to_the_live_ones(world: World) -> None:
    coop_id = world.found(size=6)
    world.decide(coop_id, "appoint_coordinator", subject=world.people[2])
    world.ledger.leave(coop_id, actor=world.people[4])
    runner = ProjectionRunner(world.ledger, [Roster()])
    runner.catch_up()
    before = roster(world.ledger.db, coop_id)
    seen: list[str] = []
    position = rebuild(
        world.ledger, world.ledger.db, Roster(), progress=lambda p: seen.append(str(p))
    ).high
    assert position == world.ledger.recorder.max_notification_id()
    assert roster(world.ledger.db, coop_id) == before
    assert seen
    assert "events/s" in seen[-1]
    assert runner.status()[0].position == position
    assert_live_equals_fresh_rebuild(world.ledger, [Roster()])
    # The live runner carries on from the switched position.
    world.ledger.leave(coop_id, actor=world.people[5])
    assert runner.catch_up() == 1


class DuplicateRow(Seen):
    """Fails in SQL, not in Python: on PostgreSQL the error surfaces only at commit."""

    name = "duplicate"
    tables = ("duplicate",)
    ddl = ("CREATE TABLE IF NOT EXISTS {duplicate} (coop_id TEXT PRIMARY KEY)",)

    def apply(self, ctx: Context, event: Any) -> None:
        if type(event).__name__ in ("Founded", "WorkTaken"):
            ctx.execute("INSERT INTO {duplicate} (coop_id) VALUES (?)", (str(event.originator_id),))


def test_a_handler_whose_sql_fails_is_stopped_at_that_event(world: World) -> None:
    coop_id = world.found(size=3)
    world.ledger.leave(coop_id, actor=world.people[2])
    world.ledger.take_work(coop_id, client_ref="c", actor=world.people[0])
    runner = ProjectionRunner(world.ledger, [DuplicateRow()])
    runner.catch_up()
    (status,) = runner.status()
    assert (status.state, status.position, status.error_position) == (FAILED, 2, 3)
    assert status.error is not None
    assert "duplicate" in status.error.lower() or "unique" in status.error.lower()
