"""One pass of stored events through the folds, their rows streamed with COPY.

``fold_batches`` is the loop every folding process runs: hours, votes and invoices go
by ``projections.hot_events``, every other event is decoded once and offered to each
fold. Given each cooperative's last version in the stream's snapshot, it finishes a
cooperative in every fold soon after its last event is folded (``Fold.finish_cooperatives``),
so a pass holds the open business of the cooperatives the stream is in, not of all it
has passed. ``build_folded`` is the whole build in this process
(``projections.fold_workers`` shares it out between processes).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification

from ledger.application import Ledger
from ledger.log import START, LogPosition
from ledger.storage import Database
from projections.copy_sink import CopySink
from projections.fold import CannotFold, Fold
from projections.framework import Projection
from projections.fresh_keys import Key, restore, strip
from projections.hot_events import Hot
from projections.log_stream import LogRow, stream_log
from projections.registry import fold_of

Targets = Sequence[tuple[Projection, Mapping[str, str]]]
Count = Callable[[int], None]
# A finished cooperative's last version: every event of it that comes later is above.
FINISHED = 0
OPEN = sys.maxsize  # a cooperative whose last version is not known: finished at the end
# Finished cooperatives are let go once they are this share (1/N) of those still held.
FINISH_SHARE = 8


def fold_classes(targets: Targets) -> list[type[Fold]]:
    found = [fold_of(p) for p, _ in targets]
    if any(cls is None for cls in found):
        raise ValueError("every projection of a folded build needs a fold")
    return [cls for cls in found if cls is not None]


def columns_of(classes: Iterable[type[Fold]]) -> dict[str, tuple[str, ...]]:
    return {table: c for cls in classes for table, c in cls.columns.items()}


def finish_cooperatives(folds: list[Fold], coops: set[str]) -> int:
    """Let ``coops`` go in every fold; how many."""
    for fold in folds:
        fold.finish_cooperatives(coops)
    return len(coops)


def fold_batches(
    ledger: Ledger,
    folds: list[Fold],
    batches: Iterable[list[LogRow]],
    sink: CopySink,
    count: Count,
    last: Mapping[str, int] | None = None,
) -> tuple[LogPosition, int]:
    """Fold every row of ``batches`` and finish the folds; the last position and highest id.

    ``last`` is each cooperative's last version in the snapshot ``batches`` read, read
    before the first batch is taken (``stream_log`` fills it then). A cooperative is
    finished once its last version is folded; one missing is finished at the end.
    """
    hot = Hot(ledger, folds).apply
    to_domain_event = ledger.mapper.to_domain_event
    position, high = START, 0
    coops: dict[str, str] = {}  # one string per cooperative id: the folds hold many
    ends: dict[str, int] = {}  # the last versions, FINISHED once folded
    done: set[str] = set()  # finished, not yet let go
    let_go = 0
    for batch in batches:
        if not ends and last:
            ends = dict(last)
        for _xid, notification_id, text, version, topic, state in batch:
            coop = coops.setdefault(text, text)
            end = ends.get(coop, OPEN)
            if version > end:
                # Its rows are out already: a snapshot that disagrees with the stream's
                # would make wrong rows, so the handlers' SQL builds the tables instead.
                raise CannotFold(f"event {version} of cooperative {coop}, finished at {end}")
            if not hot(topic, coop, version, notification_id, state):
                event = to_domain_event(
                    Notification(
                        id=notification_id,
                        originator_id=UUID(coop),
                        originator_version=version,
                        topic=topic,
                        state=state,
                    )
                )
                for fold in folds:
                    fold.apply(event, notification_id)
            if version == end:
                ends[coop] = FINISHED
                done.add(coop)
                # Letting go scans what the folds hold, so cooperatives are let go together
                # once they are a share of those still held: in all, a few scans' worth.
                if len(done) * FINISH_SHARE >= len(coops) - let_go:
                    let_go += finish_cooperatives(folds, done)
                    done = set()
            if notification_id > high:
                high = notification_id
        position = (batch[-1][0], batch[-1][1])
        sink.ship()
        count(len(batch))
    for fold in folds:
        fold.finish()
    return position, high


def make_tables(db: Database, targets: Targets) -> list[Key]:
    """Drop and create the fresh tables of ``targets`` without their keys, and commit;
    the keys, for ``restore`` once the rows are in (``projections.fresh_keys``)."""
    with psycopg.connect(db.config.conninfo) as conn, conn.cursor() as cur:
        for projection, fresh in targets:
            projection.drop(cur, fresh)
            projection.create_tables(cur, fresh)
        return strip(cur, [table for _, fresh in targets for table in fresh.values()])


def drop_tables(db: Database, targets: Targets) -> None:
    """Drop the fresh tables of a build that failed: nothing half-filled stays behind."""
    with psycopg.connect(db.config.conninfo) as conn, conn.cursor() as cur:
        for projection, fresh in targets:
            projection.drop(cur, fresh)


def fold_into(
    sink: CopySink,
    ledger: Ledger,
    classes: list[type[Fold]],
    rows: Iterable[list[LogRow]],
    count: Count,
    last: Mapping[str, int] | None = None,
) -> tuple[LogPosition, int]:
    """Fold ``rows`` into ``sink``, and send everything: the last position, highest id."""
    completed = False
    try:
        folds = [cls(sink.buffers, sink.ship) for cls in classes]
        reached = fold_batches(ledger, folds, rows, sink, count, last)
        sink.close(complete=True)
        completed = True
    finally:
        if not completed:
            sink.close(complete=False)
    return reached


def build_folded(
    ledger: Ledger, db: Database, targets: Targets, batch_size: int, count: Count
) -> tuple[LogPosition, int]:
    """The fresh tables of ``targets`` folded in this process."""
    classes = fold_classes(targets)
    keys = make_tables(db, targets)
    try:
        sink = CopySink(db, targets, columns_of(classes))
        last: dict[str, int] = {}
        rows = stream_log(ledger, batch_size, last)
        reached = fold_into(sink, ledger, classes, rows, count, last)
        restore(db, keys)
        return reached
    except BaseException:
        drop_tables(db, targets)
        raise
