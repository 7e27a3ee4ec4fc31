"""Rebuild projections from the first event into fresh tables, then switch at once.

The live tables keep answering while the fresh ones fill. Several projections are
rebuilt in one pass: each event is read and decoded once and applied to all of them.

On PostgreSQL the pass folds the events in memory (``projections.fold``: each
projection's handlers as a fold that keeps only the open business and hands out every
row nothing can change any more) and streams the rows into the fresh tables with COPY
from a thread (``projections.copy_sink``), reading the log through one binary cursor
(``projections.log_stream``); the fresh tables load without their keys, which are built
once every row is in (``projections.fresh_keys``). Hours and votes skip the domain event
(``projections.hot_events``). A history the folds cannot reproduce exactly (an event
that the aggregate would not have recorded, ``CannotFold``), and projections without a
fold, take the previous way: the handlers' SQL into a staging SQLite file, then COPY
(``projections.staging``). On SQLite the pass writes to the fresh tables directly.

The switch is one transaction: it locks the projections' tracking rows (the live
runner waits on them), applies the events that arrived meanwhile straight to the
fresh tables, drops the live tables, renames the fresh ones into their place and
moves the tracking positions, so a reader sees either the old tables or the new
ones, never a mix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.application import Ledger
from ledger.log import START, LogPosition
from ledger.storage import Cursor, Database
from projections.fold import CannotFold
from projections.fold_pass import build_folded
from projections.fold_workers import WORKERS, build_shared, can_share
from projections.framework import REBUILD_SUFFIX, Context, Projection, event_name
from projections.registry import fold_of
from projections.runner import RUNNING, lock_tracking, set_tracking
from projections.staging import Targets, load, staged_names, staging

log = logging.getLogger("coop_ledger.projections")


@dataclass(frozen=True)
class Progress:
    names: tuple[str, ...]
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{', '.join(self.names)}: {self.done}/{self.total} events, {self.rate:,.0f} events/s"
        )


@dataclass(frozen=True)
class Reached:
    """Where a pass over the log stopped: the log position and the highest notification id."""

    position: LogPosition
    high: int


def _read(ledger: Ledger, reached: Reached, limit: int) -> tuple[Reached, list[tuple[int, Any]]]:
    """The next ``limit`` events after ``reached``, decoded once: where they end, and them."""
    batch = ledger.event_log.read_log(reached.position, limit)
    if not batch:
        return reached, []
    to_domain_event = ledger.mapper.to_domain_event
    events = [(n.id, to_domain_event(n)) for _, n in batch]
    return Reached(batch[-1][0], max(reached.high, max(i for i, _ in events))), events


def _apply(cur: Cursor, projection: Projection, tables: Mapping[str, str], events: Any) -> None:
    # Most events concern one or two projections: the others skip them before a Context is
    # made. A projection with its own apply (an audit of every event) sees them all.
    every = type(projection).apply is not Projection.apply
    handled = projection.handlers.keys()
    for notification_id, event in events:
        if every or event_name(event) in handled:
            projection.apply(Context(cur, tables, notification_id), event)


@dataclass
class _Meter:
    """Counts the events applied and reports each step to ``progress``."""

    names: tuple[str, ...]
    total: int
    progress: Callable[[Progress], Any] | None
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    def add(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            elapsed = time.monotonic() - self.started
            self.progress(Progress(self.names, self.done, max(self.total, self.done), elapsed))


def _pass(
    ledger: Ledger, batch_size: int, meter: _Meter, apply: Callable[[list[Any]], None]
) -> Reached:
    """Every event from the first, a batch at a time, through ``apply``; where it stopped."""
    reached = Reached(START, 0)
    while True:
        reached, events = _read(ledger, reached, batch_size)
        if not events:
            return reached
        apply(events)
        meter.add(len(events))


def build_fresh(
    ledger: Ledger,
    db: Database,
    projections: Projection | Sequence[Projection],
    *,
    suffix: str = REBUILD_SUFFIX,
    batch_size: int = 2000,
    progress: Callable[[Progress], Any] | None = None,
    staged: bool | None = None,
    folded: bool | None = None,
    workers: int = WORKERS,
) -> Reached:
    """Fill fresh sets of the projections' tables in one pass from the first event.

    On PostgreSQL the default folds the events in memory and COPYs the rows as they
    come (``folded``), in ``workers`` processes (``projections.fold_workers``). When a
    projection has no fold, or the history cannot be folded exactly, ``staged`` folds
    them into a staging SQLite file with the handlers' SQL and COPYs its tables
    (``projections.staging``). Otherwise (``staged=False``, and on SQLite) the handlers
    write to the store itself, a transaction per batch and projection.
    """
    chosen = [projections] if isinstance(projections, Projection) else list(projections)
    targets = [(p, p.table_names(db, suffix)) for p in chosen]
    meter = _Meter(
        tuple(p.name for p in chosen), ledger.recorder.max_notification_id() or 0, progress
    )
    if (staged or folded) and db.kind != "postgresql":
        raise ValueError("a staged or folded rebuild loads its tables with PostgreSQL's COPY")
    if staged is None:
        staged = db.kind == "postgresql"
    if folded is None:
        folded = staged and all(fold_of(p) is not None for p in chosen)
    if folded:
        try:
            if workers > 1 and can_share():
                position, high = build_shared(ledger, db, targets, batch_size, meter.add, workers)
            else:
                position, high = build_folded(ledger, db, targets, batch_size, meter.add)
            meter.add(0)  # the rate so far did not count the last COPY
            return Reached(position, high)
        except CannotFold as reason:
            log.warning("rebuild of %s: %s; applying the handlers instead", meter.names, reason)
            meter = _Meter(meter.names, meter.total, progress)
            staged = True
    if not staged:
        return _build_direct(ledger, db, targets, batch_size, meter)
    with staging(chosen) as conn:
        cur = conn.cursor()
        local = [(p, staged_names(p)) for p in chosen]

        def apply(events: list[Any]) -> None:
            for projection, tables in local:
                _apply(cur, projection, tables, events)

        # One transaction for the whole pass: the staging has nothing to keep safe.
        cur.execute("BEGIN")
        reached = _pass(ledger, batch_size, meter, apply)
        cur.execute("COMMIT")
        load(db, conn, targets)
    meter.add(0)  # the rate so far did not count the COPY
    return reached


def _build_direct(
    ledger: Ledger, db: Database, targets: Targets, batch_size: int, meter: _Meter
) -> Reached:
    with db.transaction() as cur:
        for projection, fresh in targets:
            projection.drop(cur, fresh)
            projection.create(db, cur, fresh)

    def apply(events: list[Any]) -> None:
        # A transaction per projection: a pipeline's results are per cursor and connection.
        for projection, tables in targets:
            with db.transaction(pipeline=True) as cur:
                _apply(cur, projection, tables, events)

    return _pass(ledger, batch_size, meter, apply)


def rebuild(
    ledger: Ledger,
    db: Database,
    projections: Projection | Sequence[Projection],
    *,
    batch_size: int = 2000,
    progress: Callable[[Progress], Any] | None = None,
) -> Reached:
    """Rebuild projections while the live tables keep answering; where they switched."""
    chosen = [projections] if isinstance(projections, Projection) else list(projections)
    reached = build_fresh(ledger, db, chosen, batch_size=batch_size, progress=progress)
    targets = [(p, p.table_names(db, REBUILD_SUFFIX)) for p in chosen]
    with db.transaction() as cur:
        for projection in chosen:
            lock_tracking(db, cur, projection.name)
        while True:
            reached, events = _read(ledger, reached, batch_size)
            if not events:
                break
            for projection, tables in targets:
                _apply(cur, projection, tables, events)
        for projection, fresh in targets:
            projection.drop(cur, projection.table_names(db))
            for logical in projection.tables:
                cur.execute(f"ALTER TABLE {fresh[logical]} RENAME TO {logical}")
            set_tracking(db, cur, projection.name, reached.position, reached.high, RUNNING)
    return reached
