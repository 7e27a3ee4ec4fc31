"""A rebuild on PostgreSQL folds the events in memory and COPYs the rows (the default: in
worker processes that share the cooperatives out, or in one), or applies the handlers'
SQL to a staging SQLite file and COPYs its tables.

Both must hold exactly what applying each event's SQL to PostgreSQL holds, table for
table and row for row, with the same columns and keys, over a history with a split, an
erasure and every kind of event a long history brings.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest

from ledger import Ledger, SplitPlan, StoreConfig
from ledger.loadgen import long_history
from ledger.log import START
from ledger.storage import Database
from projections import rebuild as projections_rebuild
from projections.copy_sink import CHUNK, CopySink
from projections.fold import CannotFold
from projections.framework import Context, Handler, Projection
from projections.governance_fold import GovernanceFold
from projections.rebuild import build_fresh, rebuild
from projections.registry import all_projections
from projections.roster import Roster
from projections.runner import ProjectionRunner
from projections.staging import load
from projections.work_fold import WorkFold
from tests.integration.projection_support import rows
from tests.integration.support import Clock, World


@pytest.fixture
def pg_world(postgres_url: str) -> Iterator[World]:
    clock = Clock()
    with Ledger(StoreConfig.from_url(postgres_url), clock=clock, snapshot_interval=10) as ledger:
        yield World.create(ledger, clock)


def history(world: World) -> tuple[UUID, UUID]:
    """Roles, admissions, work handed over, invoices paid and credited, a leave, a split and
    an erasure on one cooperative, then a long history of hours, votes and invoices on
    another. Returns the first cooperative and a member of it with no role (free to leave).
    """
    ledger, people, mentor = world.ledger, world.people, world.mentor
    coop = world.found(size=6)
    world.decide(coop, "appoint_coordinator", subject=people[2])
    world.decide(coop, "admit_member", subject=people[6])
    work = {m: ledger.take_work(coop, client_ref=f"c-{m}", actor=m).value for m in people[:3]}
    for member, work_id in work.items():
        ledger.log_hours(coop, work_id, minutes=95, actor=member)
    ledger.hand_over_work(coop, work[people[0]], to_member=people[1], actor=people[0])
    ledger.accept_work(coop, work[people[0]], actor=people[1])
    paid = ledger.issue_invoice(
        coop, client_ref=f"c-{people[1]}", hourly_rate_cents=4200, actor=mentor
    )
    ledger.register_payment(coop, paid.value, amount_cents=1500, actor=mentor)
    credited = ledger.issue_invoice(
        coop, client_ref=f"c-{people[2]}", hourly_rate_cents=3900, actor=mentor
    )
    ledger.credit_invoice(coop, credited.value, actor=mentor)
    ledger.leave(coop, actor=people[5])
    world.clock.advance(days=1)
    world.decide(coop, "split", split=SplitPlan("De Schoonmakers Noord", (people[3], people[4])))
    (child,) = ledger.get_cooperative(coop).children
    child_work = ledger.take_work(child, client_ref="c-noord", actor=people[3]).value
    ledger.log_hours(child, child_work, minutes=30, actor=people[3])
    ledger.erase_person(people[3])
    long_history(ledger, 1_500, mentor, people[10:30])
    return coop, people[6]


def tables(db: Database, projections: list[Projection], suffix: str) -> dict[str, str]:
    return {
        f"{p.name}.{logical}": name
        for p in projections
        for logical, name in p.table_names(db, suffix).items()
    }


def shape(db: Database, table: str) -> tuple[list[Any], list[Any]]:
    """A table's columns (name, type, nullable, default) and its constraints' definitions."""
    schema, _, name = table.rpartition(".")
    with db.read() as cur:
        cur.execute(
            "SELECT column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"
            " ORDER BY ordinal_position",
            (schema, name),
        )
        columns = cur.fetchall()
        cur.execute(
            "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = to_regclass(?) ORDER BY 1, 2",
            (table,),
        )
        return columns, cur.fetchall()


def test_folded_and_staged_builds_hold_the_same_rows_columns_and_keys_as_applying_each_event(
    pg_world: World,
) -> None:
    history(pg_world)
    ledger, db, projections = pg_world.ledger, pg_world.ledger.db, all_projections()
    assert (ledger.recorder.max_notification_id() or 0) > 1_500
    all_readable(ledger)  # the builds then read the same events
    direct = build_fresh(ledger, db, projections, suffix="__direct", staged=False)
    staged = build_fresh(ledger, db, projections, suffix="__staged", folded=False)
    folded = build_fresh(ledger, db, projections, suffix="__folded")  # the default here
    alone = build_fresh(ledger, db, projections, suffix="__alone", workers=1)
    assert staged == direct
    assert folded == direct
    assert alone == direct
    expected = tables(db, projections, "__direct")
    for suffix in ("__staged", "__folded", "__alone"):
        empty = []
        for name, table in tables(db, projections, suffix).items():
            assert rows(db, table) == rows(db, expected[name]), f"{name}{suffix} differs"
            made = shape(db, table) == shape(db, expected[name])
            assert made, f"{name}{suffix} is made differently"
            if not rows(db, table):
                empty.append(name)
        # Nobody acted without a mandate: the only table a lawful history leaves empty.
        assert empty == ["governance.governance_unauthorised"]


@pytest.mark.parametrize("folded", [True, False], ids=["folded", "staged"])
def test_a_live_rebuild_switches_to_fresh_tables_and_the_runner_carries_on_from_there(
    pg_world: World, monkeypatch: pytest.MonkeyPatch, folded: bool
) -> None:
    coop, leaver = history(pg_world)
    ledger, db, projections = pg_world.ledger, pg_world.ledger.db, all_projections()
    runner = ProjectionRunner(ledger, projections)
    runner.catch_up()
    build = projections_rebuild.build_fresh

    def build_then_leave(*args: Any, **kwargs: Any) -> Any:
        reached = build(*args, **kwargs, folded=folded)
        # After the COPY: the switch's own pass, under the tracking locks, applies it.
        ledger.leave(coop, actor=leaver)
        return reached

    monkeypatch.setattr(projections_rebuild, "build_fresh", build_then_leave)
    seen: list[str] = []
    reached = rebuild(ledger, db, projections, progress=lambda p: seen.append(str(p)))
    assert seen
    assert "events/s" in seen[-1]
    assert {s.position for s in runner.status()} == {reached.high}, "moved with the switch"
    ledger.take_work(coop, client_ref="after the switch", actor=pg_world.people[1])
    caught_up(runner, ledger)
    build(ledger, db, projections, suffix="__direct", staged=False)
    expected, live = tables(db, projections, "__direct"), tables(db, projections, "")
    for name, table in live.items():
        assert rows(db, table) == rows(db, expected[name]), f"{name} differs after the switch"


def test_a_history_the_folds_cannot_reproduce_is_rebuilt_by_the_handlers(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    history(pg_world)
    ledger, db, projections = pg_world.ledger, pg_world.ledger.db, all_projections()
    all_readable(ledger)

    def cannot(self: WorkFold, e: Any, position: int) -> None:
        raise CannotFold("as if a paid invoice were paid again")

    monkeypatch.setitem(WorkFold.methods, "InvoicePaid", cannot)
    staged: list[Any] = []

    def counted_load(*args: Any) -> None:
        staged.append(args)
        load(*args)

    monkeypatch.setattr(projections_rebuild, "load", counted_load)
    build_fresh(ledger, db, projections, suffix="__direct", staged=False)
    build_fresh(ledger, db, projections, suffix="__fallback")
    assert staged, "the staged build ran"
    expected = tables(db, projections, "__direct")
    for name, table in tables(db, projections, "__fallback").items():
        assert rows(db, table) == rows(db, expected[name]), f"{name} differs"


def all_readable(ledger: Ledger) -> None:
    """Wait until a reader sees every event. The log is read below the oldest transaction
    running anywhere on the server, and another test run may share the server."""
    head = ledger.recorder.max_notification_id() or 0
    deadline = time.monotonic() + 30
    while True:
        batch = ledger.event_log.read_log(START, head + 1)
        if batch and ledger.event_log.covers(batch[-1][0], head):
            return
        assert time.monotonic() < deadline, "a transaction elsewhere holds the log back"
        time.sleep(0.05)


def caught_up(runner: ProjectionRunner, ledger: Ledger) -> None:
    all_readable(ledger)
    head = ledger.recorder.max_notification_id()
    runner.catch_up()
    assert {s.position for s in runner.status()} == {head}


class Failing(Projection):
    """Fails on the second event, after reading the staged row of the first."""

    name = "failing"
    tables = ("failing",)
    ddl = ("CREATE TABLE IF NOT EXISTS {failing} (position BIGINT PRIMARY KEY)",)
    handlers: ClassVar[dict[str, Handler]] = {}

    def apply(self, ctx: Context, event: Any) -> None:
        if ctx.one("SELECT count(*) FROM {failing}")[0]:
            raise RuntimeError("poison")
        ctx.execute("INSERT INTO {failing} (position) VALUES (?)", (ctx.position,))


def test_a_failed_staged_build_leaves_no_staging_file_and_no_fresh_tables(
    pg_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_world.found(size=3)
    pg_world.found(size=3)
    all_readable(pg_world.ledger)
    db = pg_world.ledger.db
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError, match="poison"):
        build_fresh(pg_world.ledger, db, Failing(), suffix="__staged")
    assert list(tmp_path.iterdir()) == []
    with db.read() as cur:
        assert not db.table_exists(cur, db.table("failing__staged"))


@pytest.mark.parametrize("workers", [2, 1])
def test_a_failed_folded_build_leaves_no_fresh_tables(
    pg_world: World, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    pg_world.found(size=3)
    pg_world.found(size=3)
    all_readable(pg_world.ledger)
    db = pg_world.ledger.db

    def poison(self: GovernanceFold, e: Any, position: int) -> None:
        raise RuntimeError("poison")  # in whichever process folds the cooperative

    monkeypatch.setitem(GovernanceFold.methods, "Founded", poison)
    with pytest.raises(RuntimeError, match="poison"):
        build_fresh(pg_world.ledger, db, all_projections(), suffix="__folded", workers=workers)
    with db.read() as cur:
        for projection in all_projections():
            for table in projection.table_names(db, "__folded").values():
                assert not db.table_exists(cur, table)


def test_a_folded_build_holds_no_transaction_that_would_hold_the_live_log_back(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop, leaver = history(pg_world)
    ledger = pg_world.ledger
    all_readable(ledger)
    ship = CopySink.ship
    calls: list[int] = []

    def ship_then_leave(self: CopySink, chunk: int = CHUNK) -> None:
        ship(self, 50)  # small chunks, so that many COPYs are done by the 20th batch
        calls.append(1)
        if len(calls) == 20:
            # The queue holds 2 chunks, so at least 17 COPYs ended before this one was
            # queued. A command elsewhere commits, and readers of the log see it, as they
            # would without a rebuild running (all_readable fails after 30 s otherwise).
            ledger.leave(coop, actor=leaver)
            all_readable(ledger)

    monkeypatch.setattr(CopySink, "ship", ship_then_leave)
    build_fresh(ledger, ledger.db, all_projections(), suffix="__folded", batch_size=50, workers=1)
    assert len(calls) > 20


def test_fresh_tables_that_cannot_be_made_fail_the_folded_build_with_their_error(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_world.found(size=3)
    all_readable(pg_world.ledger)

    def refused(self: Projection, cur: Any, tables: Any) -> None:
        raise PermissionError("no CREATE here")

    monkeypatch.setattr(Roster, "create_tables", refused)
    with pytest.raises(PermissionError, match="no CREATE"):
        build_fresh(pg_world.ledger, pg_world.ledger.db, all_projections(), suffix="__folded")


def test_on_sqlite_a_rebuild_stays_direct_and_a_staged_one_is_refused(sqlite_url: str) -> None:
    with Ledger(StoreConfig.from_url(sqlite_url), clock=Clock()) as ledger:
        world = World.create(ledger, Clock())
        world.found(size=3)
        build_fresh(ledger, ledger.db, all_projections(), suffix="__direct")
        with pytest.raises(ValueError, match="COPY"):
            build_fresh(ledger, ledger.db, all_projections(), suffix="__x", staged=True)
        with pytest.raises(ValueError, match="COPY"):
            build_fresh(ledger, ledger.db, all_projections(), suffix="__x", folded=True)
