"""A folded rebuild shared out between processes, by cooperative.

A cooperative's rows in every projection but the directory depend on its own events
only (``Fold.per_cooperative``), so ``WORKERS`` forked processes each fold the events of
their share of the cooperatives and COPY the rows on connections of their own. The
directory's fold looks a split-off child's parent up, and the parent may be in another
share: it runs here, over only the events it folds (one in a hundred). Every stream
reads one snapshot, exported here and imported by each: together they read exactly
the events one stream would, each in log order, and the pass ends at the largest
position any of them reached.

The fresh tables are made by a thread while the parts start (``FreshTables``); every
process COPYs into them chunk by chunk (``projections.copy_sink``), and if any part
fails they are dropped again. A fold that
cannot reproduce its history (``CannotFold``) or fails is raised here as it was raised
there. Processes are forked: they start at once with everything imported and never
touch the parent's connections (each opens its own). Where fork is missing, or there
is one core, the build stays in one process (``projections.fold_pass``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ledger.application import Ledger
from ledger.log import START, LogPosition
from ledger.storage import Database
from projections.copy_sink import CopySink
from projections.fold import Fold
from projections.fold_pass import (
    Count,
    Targets,
    columns_of,
    drop_tables,
    fold_classes,
    fold_into,
    make_tables,
)
from projections.fresh_keys import Key, restore
from projections.log_stream import last_versions_query, log_query, stream_rows
from projections.registry import fold_of

WORKERS = 2
# A worker's share: the cooperatives dealt to it (``deal``).
SHARE = " AND originator_id = ANY(%s::uuid[])"
# The events a fold handles, by the end of their topic ("module:Class.Event"). A suffix
# match is cheap on the server (a regular expression cost 0.25 s over 100,000 rows) and
# may let more through, never less: the fold itself goes by the decoded class's name.
NAMED = " AND topic LIKE ANY(%s)"


def can_share() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1


@dataclass(frozen=True)
class Part:
    """What one process folds: its projections, which events, read in which snapshot."""

    targets: Targets
    where: str
    params: tuple[Any, ...]
    snapshot: str
    # Each cooperative's last version in ``snapshot``: a part that reads only some of its
    # events finishes it only if the last is among them, else at the end.
    last: Mapping[str, int]


Reached = tuple[LogPosition, int, int]  # last position, highest id, events folded


Ready = Callable[[], bool]


def _fold_part(ledger: Ledger, db: Database, part: Part, batch_size: int, ready: Ready) -> Reached:
    classes = fold_classes(part.targets)
    folded = [0]

    def count(n: int) -> None:
        folded[0] += n

    with psycopg.connect(db.config.conninfo) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(part.snapshot)))
        # A share is read by the cooperatives' key, then sorted into log order before the
        # first row comes: in memory (~50 ms for 50,000 rows) rather than on disk.
        conn.execute("SET LOCAL work_mem = '64MB'")
        sink = CopySink(db, part.targets, columns_of(classes), ready=ready)
        rows = stream_rows(conn, log_query(ledger, part.where), part.params, batch_size)
        position, high = fold_into(sink, ledger, classes, rows, count, part.last)
    return position, high, folded[0]


def _outcome(
    ledger: Ledger, db: Database, part: Part, batch_size: int, ready: Ready
) -> tuple[str, Any]:
    """Fold a part: ("done", where it ended) or ("raised", what it raised)."""
    try:
        return "done", _fold_part(ledger, db, part, batch_size, ready)
    except BaseException as error:
        try:
            pickle.dumps(error)
        except Exception:  # an error that cannot cross: its text does
            return "raised", RuntimeError(f"{type(error).__name__}: {error}")
        return "raised", error


def _fork(
    ledger: Ledger, db: Database, part: Part, batch_size: int, signal_fd: int, theirs: list[int]
) -> tuple[int, int]:
    """A child process folding ``part``: its pid, and the pipe its outcome comes through.

    ``os.fork`` itself, not ``multiprocessing``: a daemonic process (a bench worker, a
    server's) may not start multiprocessing children. The child leaves by ``os._exit``,
    so nothing of the parent's (its pools, its atexit handlers) runs there. It learns
    that the fresh tables exist by a byte on ``signal_fd``; it closes ``theirs`` (the
    pipes' writing ends), so that a signal never sent reads as the end of the pipe.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            # A writing end the thread closed already may have left its number to one
            # of this child's own pipes: those stay open.
            for fd in set(theirs) - {write, signal_fd}:
                with contextlib.suppress(OSError):
                    os.close(fd)

            def ready() -> bool:
                return os.read(signal_fd, 1) == b"1"

            with os.fdopen(write, "wb") as out:
                pickle.dump(_outcome(ledger, db, part, batch_size, ready), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def deal(sizes: dict[str, int], workers: int) -> list[list[str]]:
    """The cooperatives in ``workers`` shares of about as many events: the largest first,
    each to the share with the fewest events so far. (By a bit of the id, 50 cooperatives
    of 2,000 events each split 58,000 to 42,000, and the larger share sets the pace.)"""
    shares: list[list[str]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for coop, size in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        least = loads.index(min(loads))
        shares[least].append(coop)
        loads[least] += size
    return shares


def _sizes(ledger: Ledger, cur: psycopg.Cursor[Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Events per cooperative in the log as the snapshot sees it, and each one's last
    version (in the exported snapshot's own transaction: what every part will read)."""
    cur.execute(last_versions_query(ledger))
    sizes, last = {}, {}
    for coop, n, version in cur.fetchall():
        sizes[str(coop)], last[str(coop)] = int(n), int(version)
    return sizes, last


def _parts(
    targets: Targets, snapshot: str, shares: list[list[str]], last: Mapping[str, int]
) -> tuple[list[Part], Part | None]:
    """The parts for worker processes, and the part this process folds (if any)."""
    shared = [(p, t) for p, t in targets if _per_cooperative(p)]
    forked = [Part(shared, SHARE, (share,), snapshot, last) for share in shares if shared and share]
    alone = [(p, t) for p, t in targets if not _per_cooperative(p)]
    if not alone:
        return forked, None
    classes = fold_classes(alone)
    if any(cls.apply is not Fold.apply for cls in classes):  # sees every event
        return forked, Part(alone, "", (), snapshot, last)
    names = sorted({f"%{name}" for cls in classes for name in cls.methods})
    return forked, Part(alone, NAMED, (names,), snapshot, last)


def _per_cooperative(projection: Any) -> bool:
    cls = fold_of(projection)
    return cls is not None and cls.per_cooperative


def build_shared(
    ledger: Ledger,
    db: Database,
    targets: Targets,
    batch_size: int,
    count: Count,
    workers: int = WORKERS,
) -> tuple[LogPosition, int]:
    """The fresh tables of ``targets`` folded by ``workers`` processes (and this one)."""
    try:
        results = _fold_parts(ledger, db, targets, batch_size, workers)
    except BaseException:
        drop_tables(db, targets)
        raise
    # The shares together read every event; a part alone may read only some.
    count(sum(r[2] for r in results[:-1]) or results[-1][2])
    return max(r[0] for r in results), max(r[1] for r in results)


class FreshTables(threading.Thread):
    """Drops and creates the fresh tables, and commits, while the parts start reading.

    ~50-140 ms of DDL and a commit: the parts need the tables only for their first COPY.
    Each worker is told through its pipe: a byte once the tables exist, or the pipe
    closed without one if they could not be made. This process waits on ``ready``.
    """

    def __init__(self, db: Database, targets: Targets, signals: list[int]) -> None:
        super().__init__(name="rebuild-tables", daemon=True)
        self.db, self.targets, self.signals = db, targets, signals
        self.error: BaseException | None = None
        self.keys: list[Key] = []
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.keys = make_tables(self.db, self.targets)
        except BaseException as error:
            self.error = error
        finally:
            for fd in self.signals:
                with contextlib.suppress(OSError):
                    if self.error is None:
                        os.write(fd, b"1")
                    os.close(fd)
            self.done.set()

    def ready(self) -> bool:
        self.done.wait()
        return self.error is None


def _fold_parts(
    ledger: Ledger, db: Database, targets: Targets, batch_size: int, workers: int
) -> list[Reached]:
    """Each worker's result, then this process's (``START`` if it had no part)."""
    signals = [os.pipe() for _ in range(workers)]
    tables = FreshTables(db, targets, [write for _, write in signals])
    tables.start()
    running: list[tuple[int, int]] = []
    try:
        # The exporting transaction stays open until every part has read its snapshot.
        with psycopg.connect(db.config.conninfo) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot()")
                row = cur.fetchone()
                sizes, last = _sizes(ledger, cur)
            forked, here = _parts(targets, str(row[0] if row else ""), deal(sizes, workers), last)
            theirs = [write for _, write in signals]
            for part, (read, _) in zip(forked, signals, strict=False):
                running.append(_fork(ledger, db, part, batch_size, read, theirs))
            for read, _ in signals:
                os.close(read)
            signals = []
            try:
                mine = _fold_part(ledger, db, here, batch_size, tables.ready) if here else None
                results = [*_collect(running), mine or (START, 0, 0)]
            except Exception:
                tables.join()
                if tables.error is None:
                    raise
                # The parts failed for want of tables: say why there were none.
                raise tables.error from None
        tables.join()
        if tables.error is not None:
            raise tables.error
        restore(db, tables.keys)  # every part's rows are in
        return results
    finally:
        for read, _ in signals:  # not yet handed out: an error came first
            os.close(read)
        for pid, read in running:  # not collected: an error came first
            with contextlib.suppress(OSError):
                os.close(read)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        tables.join()  # before a caller drops the tables again


def _collect(running: list[tuple[int, int]]) -> list[Reached]:
    """Each worker's result, in turn; the first error any of them raised, raised here."""
    results = []
    while running:
        pid, read = running[0]
        with os.fdopen(read, "rb") as pipe:  # closes ``read``
            running.pop(0)
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            raise RuntimeError(f"a rebuild worker ended without a word (status {status})")
        kind, value = pickle.loads(data)  # noqa: S301 (our own child, through our own pipe)
        if kind == "raised":
            raise value
        results.append(value)
    return results
