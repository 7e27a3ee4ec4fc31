"""Rebuild projections from the first event into fresh tables, then switch at once.

The live tables keep answering while the fresh ones fill. Several projections are
rebuilt in one pass: each batch of events is read and decoded once and applied to
all of them. The switch is one transaction: it locks the projections' tracking
rows (the live runner waits on them), applies the events that arrived meanwhile,
drops the live tables, renames the fresh ones into their place and moves the
tracking positions, so a reader sees either the old tables or the new ones, never
a mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.application import Ledger
from ledger.log import START, LogPosition
from ledger.storage import Cursor, Database
from projections.framework import REBUILD_SUFFIX, Context, Projection
from projections.runner import RUNNING, lock_tracking, set_tracking


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


def _apply(cur: Cursor, projection: Projection, tables: dict[str, str], events: Any) -> None:
    for notification_id, event in events:
        projection.apply(Context(cur, tables, notification_id), event)


def build_fresh(
    ledger: Ledger,
    db: Database,
    projections: Projection | Sequence[Projection],
    *,
    suffix: str = REBUILD_SUFFIX,
    batch_size: int = 2000,
    progress: Callable[[Progress], Any] | None = None,
) -> Reached:
    """Fill fresh sets of the projections' tables in one pass from the first event."""
    chosen = [projections] if isinstance(projections, Projection) else list(projections)
    targets = [(p, p.table_names(db, suffix)) for p in chosen]
    with db.transaction() as cur:
        for projection, fresh in targets:
            projection.drop(cur, fresh)
            projection.create(db, cur, fresh)
    total = ledger.recorder.max_notification_id() or 0
    names = tuple(p.name for p in chosen)
    started, done, reached = time.monotonic(), 0, Reached(START, 0)
    while True:
        reached, events = _read(ledger, reached, batch_size)
        if not events:
            break
        # A transaction per projection: a pipeline's results are per cursor and connection.
        for projection, tables in targets:
            with db.transaction(pipeline=True) as cur:
                _apply(cur, projection, tables, events)
        done += len(events)
        if progress is not None:
            progress(Progress(names, done, max(total, done), time.monotonic() - started))
    return reached


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
