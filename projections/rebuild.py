"""Rebuild a projection from the first event into fresh tables, then switch at once.

The live tables keep answering while the fresh ones fill. The switch is one
transaction: it locks the projection's tracking row (the live runner waits on
it), applies the events that arrived meanwhile, drops the live tables, renames
the fresh ones into their place and moves the tracking position, so a reader
sees either the old tables or the new ones, never a mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.application import Ledger
from ledger.storage import Cursor, Database
from projections.framework import REBUILD_SUFFIX, Context, Projection
from projections.runner import RUNNING, lock_tracking, set_tracking


@dataclass(frozen=True)
class Progress:
    name: str
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def __str__(self) -> str:
        return f"{self.name}: {self.done}/{self.total} events, {self.rate:,.0f} events/s"


def _apply_from(
    ledger: Ledger,
    cur: Cursor,
    projection: Projection,
    tables: dict[str, str],
    position: int,
    limit: int,
) -> tuple[int, int]:
    """Apply up to ``limit`` events after ``position``; the new position and how many."""
    notifications = ledger.recorder.select_notifications(start=position + 1, limit=limit)
    for notification in notifications:
        event = ledger.mapper.to_domain_event(notification)
        projection.apply(Context(cur, tables, notification.id), event)
        position = notification.id
    return position, len(notifications)


def build_fresh(
    ledger: Ledger,
    db: Database,
    projection: Projection,
    *,
    suffix: str = REBUILD_SUFFIX,
    batch_size: int = 2000,
    progress: Callable[[Progress], Any] | None = None,
) -> int:
    """Fill a fresh set of the projection's tables from the first event; the position reached."""
    fresh = projection.table_names(db, suffix)
    with db.transaction() as cur:
        projection.drop(cur, fresh)
        projection.create(db, cur, fresh)
    total = ledger.recorder.max_notification_id() or 0
    started, done, position = time.monotonic(), 0, 0
    while True:
        with db.transaction(pipeline=True) as cur:
            position, applied = _apply_from(ledger, cur, projection, fresh, position, batch_size)
        if not applied:
            break
        done += applied
        if progress is not None:
            progress(Progress(projection.name, done, max(total, done), time.monotonic() - started))
    return position


def rebuild(
    ledger: Ledger,
    db: Database,
    projection: Projection,
    *,
    batch_size: int = 2000,
    progress: Callable[[Progress], Any] | None = None,
) -> int:
    """Rebuild one projection while the live tables keep answering; the position it switched at."""
    position = build_fresh(ledger, db, projection, batch_size=batch_size, progress=progress)
    fresh = projection.table_names(db, REBUILD_SUFFIX)
    live = projection.table_names(db)
    with db.transaction() as cur:
        lock_tracking(db, cur, projection.name)
        applied = 1
        while applied:
            position, applied = _apply_from(ledger, cur, projection, fresh, position, batch_size)
        projection.drop(cur, live)
        for logical in projection.tables:
            cur.execute(f"ALTER TABLE {fresh[logical]} RENAME TO {logical}")
        set_tracking(db, cur, projection.name, position, RUNNING)
    return position
