"""Runs projections over the ledger's events: catch-up, live, exactly once.

Each batch of a projection is one transaction that writes its view rows and its
new tracking position together, after locking that projection's tracking row.
A crash at any point leaves either the whole batch or none of it, so a restarted
runner resumes exactly where the last commit left off.

Events are read with the ledger's ``read_log`` (see ``ledger.log``): in an order no
later commit can precede, so a runner never passes over an event that a slower
writer commits afterwards. The tracking row keeps that ``LogPosition`` (``xid``,
``position``) and, for display, the highest notification id applied (``high``).

A handler that raises (a poison event) stops only its projection: the status row
records the position and the error, the log says so, and nothing is skipped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError as PersistenceInterfaceError
from eventsourcing.persistence import Notification
from eventsourcing.persistence import OperationalError as PersistenceOperationalError

from ledger.application import Ledger
from ledger.errors import StoreNeedsMigration
from ledger.log import START, EventLog, LogPosition
from ledger.storage import Cursor, Database
from projections.framework import Context, Projection

log = logging.getLogger("coop_ledger.projections")

RUNNING = "running"
FAILED = "failed"


class PoisonEvent(Exception):
    """A projection's handler failed on the event at ``position``."""

    def __init__(self, position: LogPosition, cause: Exception) -> None:
        super().__init__(f"event {position[1]}: {cause}")
        self.position = position
        self.cause = cause


class ProjectionTimeout(TimeoutError):
    """The projections did not reach a position within the wait allowed."""

    code = "projection_timeout"


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    state: str
    error: str | None
    error_position: int | None
    head: int

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)


def tracking_table(db: Database) -> str:
    return db.table("projection_tracking")


def ensure_tracking(db: Database) -> None:
    with db.transaction() as cur:
        columns = db.columns(cur, tracking_table(db))
        if columns and "xid" not in columns:
            raise StoreNeedsMigration(
                f"{tracking_table(db)} tracks bare notification ids: it was made by an earlier"
                " coop-ledger; run `coop-ledger migrate` once (service stopped)"
            )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {tracking_table(db)} ("
            " name TEXT PRIMARY KEY,"
            " position BIGINT NOT NULL,"
            " state TEXT NOT NULL,"
            " error TEXT,"
            " error_position BIGINT,"
            " updated_at TEXT NOT NULL,"
            " xid BIGINT NOT NULL DEFAULT 0,"
            " high BIGINT NOT NULL DEFAULT 0)"
        )


def migrate_tracking(db: Database) -> bool:
    """Add the log position columns to a tracking table made before them; True if it changed.

    Old positions were notification ids, and the events before the migration all carry
    transaction id 0: (0, position) is the same place in the new order.
    """
    with db.transaction() as cur:
        if not db.table_exists(cur, tracking_table(db)):
            return False
        if "xid" in db.columns(cur, tracking_table(db)):
            return False
        cur.execute(f"ALTER TABLE {tracking_table(db)} ADD COLUMN xid BIGINT NOT NULL DEFAULT 0")
        cur.execute(f"ALTER TABLE {tracking_table(db)} ADD COLUMN high BIGINT NOT NULL DEFAULT 0")
        cur.execute(f"UPDATE {tracking_table(db)} SET high = position")
    return True


def is_transient(error: BaseException) -> bool:
    """A store that is unreachable or busy, as opposed to a handler that is wrong."""
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return "locked" in text or "busy" in text or "disk i/o" in text
    return isinstance(error, PersistenceOperationalError | PersistenceInterfaceError)


@dataclass(frozen=True)
class Tracked:
    position: LogPosition
    state: str
    high: int


_TRACKED = "SELECT xid, position, state, high FROM {table} WHERE name = ?"


def _tracked(row: Any) -> Tracked:
    if row is None:
        return Tracked(START, RUNNING, 0)
    return Tracked((int(row[0]), int(row[1])), str(row[2]), int(row[3]))


def read_all_tracking(db: Database, names: Iterable[str]) -> dict[str, Tracked]:
    with db.read() as cur:
        cur.execute(f"SELECT xid, position, state, high, name FROM {tracking_table(db)}")
        rows = {str(row[4]): _tracked(row) for row in cur.fetchall()}
    return {name: rows.get(name, _tracked(None)) for name in names}


def read_tracking(db: Database, name: str) -> Tracked:
    with db.read() as cur:
        cur.execute(_TRACKED.format(table=tracking_table(db)), (name,))
        return _tracked(cur.fetchone())


def lock_tracking(db: Database, cur: Cursor, name: str) -> Tracked:
    """This projection's tracking, its row locked until the transaction ends."""
    lock = " FOR UPDATE" if db.kind == "postgresql" else ""
    cur.execute(_TRACKED.format(table=tracking_table(db)) + lock, (name,))
    return _tracked(cur.fetchone())


def set_tracking(
    db: Database,
    cur: Cursor,
    name: str,
    position: LogPosition,
    high: int,
    state: str = RUNNING,
    error: tuple[int, str] | None = None,
) -> None:
    """Record the log position reached; ``error`` is (notification id, message) of a poison."""
    cur.execute(
        f"INSERT INTO {tracking_table(db)} (name, xid, position, high, state, error,"
        " error_position, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET xid = excluded.xid, position = excluded.position,"
        " high = excluded.high, state = excluded.state, error = excluded.error,"
        " error_position = excluded.error_position, updated_at = excluded.updated_at",
        (
            name,
            position[0],
            position[1],
            high,
            state,
            error[1] if error else None,
            error[0] if error else None,
            datetime.now(UTC).isoformat(),
        ),
    )


class ProjectionRunner:
    def __init__(
        self,
        ledger: Ledger,
        projections: Sequence[Projection],
        *,
        db: Database | None = None,
        batch_size: int = 500,
    ) -> None:
        self.ledger = ledger
        self.db = db or ledger.db
        self.projections = list(projections)
        self.batch_size = batch_size
        self.wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.setup()

    def setup(self) -> None:
        ensure_tracking(self.db)
        with self.db.transaction() as cur:
            for projection in self.projections:
                projection.create(self.db, cur, projection.table_names(self.db))
                # A row to lock from the start: the rebuild's switch and the runner meet on it.
                cur.execute(
                    f"INSERT INTO {tracking_table(self.db)} (name, position, state, updated_at)"
                    " VALUES (?, 0, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (projection.name, RUNNING, datetime.now(UTC).isoformat()),
                )

    # ---- processing -----------------------------------------------------------------

    @property
    def event_log(self) -> EventLog:
        return self.ledger.event_log

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def process_batch(
        self, projection: Projection, limit: int | None = None, *, pipeline: bool = True
    ) -> int:
        """Apply the next events to one projection in one transaction; how many were applied."""
        # Read the events before taking the write lock: on SQLite a writer waiting for that
        # lock can hold the library's only connection, which this read would need.
        tracked = read_tracking(self.db, projection.name)
        if tracked.state == FAILED:
            return 0
        batch = self.event_log.read_log(tracked.position, limit or self.batch_size)
        return self.apply_batch(projection, batch, pipeline=pipeline) if batch else 0

    def apply_batch(
        self,
        projection: Projection,
        batch: Sequence[tuple[LogPosition, Notification]],
        *,
        events: Sequence[Any] | None = None,
        pipeline: bool = True,
    ) -> int:
        """Apply the events of ``batch`` the projection has not applied yet, in one transaction.

        ``events`` are the batch's domain events when the caller has already decoded them.
        """
        tables = projection.table_names(self.db)
        start = START
        try:
            with self.db.transaction(pipeline=pipeline) as cur:
                tracked = lock_tracking(self.db, cur, projection.name)
                if tracked.state == FAILED:
                    return 0
                start, high, applied = tracked.position, tracked.high, 0
                # Another runner may have moved on meanwhile: apply only what is still new.
                for i, (position, notification) in enumerate(batch):
                    if position <= start:
                        continue
                    try:
                        event = (
                            events[i]
                            if events is not None
                            else self.ledger.mapper.to_domain_event(notification)
                        )
                        projection.apply(Context(cur, tables, notification.id), event)
                    except Exception as error:
                        if is_transient(error):
                            raise
                        raise PoisonEvent(position, error) from error
                    high = max(high, notification.id)
                    applied += 1
                if applied:
                    set_tracking(self.db, cur, projection.name, batch[-1][0], high)
                return applied
        except PoisonEvent as poison:
            # The batch was rolled back: apply the good events before the poison, then stop.
            good = [b for b in batch if start < b[0] < poison.position]
            applied = self.apply_batch(projection, good) if good else 0
            self._record_failure(projection, poison)
            return applied
        except Exception as error:
            if is_transient(error) or not pipeline:
                raise  # the store is unreachable or busy: the caller tries again later
            # A pipelined statement failed at commit, after its handler had returned:
            # run the batch again statement by statement so the poison names itself.
            return self.apply_batch(projection, batch, pipeline=False)

    def _record_failure(self, projection: Projection, poison: PoisonEvent) -> None:
        message = f"{type(poison.cause).__name__}: {poison.cause}"
        with self.db.transaction() as cur:
            tracked = lock_tracking(self.db, cur, projection.name)
            set_tracking(
                self.db,
                cur,
                projection.name,
                tracked.position,
                tracked.high,
                FAILED,
                (poison.position[1], message),
            )
        log.error(
            "projection %s stopped at event %d: %s (the event is not skipped; "
            "fix the cause, then rebuild the projection)",
            projection.name,
            poison.position[1],
            message,
        )

    def run_once(self) -> int:
        """One batch for every projection; the number of events applied in all.

        Projections at the same position (the usual case) share one read and one decoding.
        """
        tracked = read_all_tracking(self.db, [p.name for p in self.projections])
        groups: dict[LogPosition, list[Projection]] = {}
        for projection in self.projections:
            t = tracked[projection.name]
            if t.state != FAILED:
                groups.setdefault(t.position, []).append(projection)
        total = 0
        for position, projections in groups.items():
            batch = self.event_log.read_log(position, self.batch_size)
            if not batch:
                continue
            events = self._decode(batch) if len(projections) > 1 else None
            for projection in projections:
                total += self.apply_batch(projection, batch, events=events)
        return total

    def _decode(self, batch: Sequence[tuple[LogPosition, Notification]]) -> list[Any] | None:
        try:
            return [self.ledger.mapper.to_domain_event(n) for _, n in batch]
        except Exception:
            return None  # each projection decodes for itself and names the poison

    def catch_up(self, timeout: float = 10.0) -> int:
        """Apply every event stored before the call; how many were applied.

        A transaction still open elsewhere holds the log back (ledger.log): rather than
        stop short of events already stored, wait for it, up to ``timeout`` seconds.
        Failed projections are not waited for.
        """
        head, names = self.head(), [p.name for p in self.projections]
        deadline = time.monotonic() + timeout
        total = 0
        while True:
            applied = self.run_once()
            total += applied
            if applied:
                continue
            behind = projections_behind(self.db, self.event_log, names, head)
            waiting = {n: t for n, t in behind.items() if t.state != FAILED}
            if not waiting:
                return total
            if time.monotonic() >= deadline:
                detail = ", ".join(f"{n} at {t.high}" for n, t in waiting.items())
                raise ProjectionTimeout(
                    f"projections did not reach position {head} within {timeout:g}s: {detail}"
                )
            time.sleep(0.005)

    # ---- live -----------------------------------------------------------------------

    def run_forever(self, poll_interval: float = 0.05) -> None:
        """Follow new events until ``stop()``: woken by this process's saves, else by polling."""
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
            except Exception:
                # The store may be briefly unreachable; the next poll tries again.
                log.exception("projection runner could not reach the store")
            self.wakeup.wait(poll_interval)
            self.wakeup.clear()

    def start(self, poll_interval: float = 0.05) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, args=(poll_interval,), name="projections", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    # ---- status and read-your-writes ------------------------------------------------

    def status(self, names: Iterable[str] | None = None) -> list[ProjectionStatus]:
        return read_status(self.db, names or [p.name for p in self.projections], self.head())

    def wait_until(self, position: int, timeout: float = 5.0) -> None:
        wait_until(
            self.db,
            self.event_log,
            [p.name for p in self.projections],
            position,
            timeout,
            self.wakeup,
        )


def read_status(db: Database, names: Iterable[str], head: int) -> list[ProjectionStatus]:
    wanted = list(names)
    with db.read() as cur:
        cur.execute(f"SELECT name, high, state, error, error_position FROM {tracking_table(db)}")
        rows = {r[0]: r for r in cur.fetchall()}
    result = []
    for name in wanted:
        row = rows.get(name)
        if row is None:
            result.append(ProjectionStatus(name, 0, RUNNING, None, None, head))
        else:
            result.append(ProjectionStatus(name, int(row[1]), row[2], row[3], row[4], head))
    return result


def projections_behind(
    db: Database, log: EventLog, names: Sequence[str], position: int
) -> dict[str, Tracked]:
    """The named projections that have not applied every stored event up to ``position``."""
    tracked = read_all_tracking(db, names)
    return {name: t for name, t in tracked.items() if not log.covers(t.position, position)}


def wait_until(
    db: Database,
    log: EventLog,
    names: Sequence[str],
    position: int,
    timeout: float,
    wakeup: threading.Event | None = None,
) -> None:
    """Block until every named projection has applied every stored event up to notification id
    ``position``; else ProjectionTimeout."""
    deadline = time.monotonic() + timeout
    while True:
        behind = projections_behind(db, log, names, position)
        if not behind:
            return
        failed = [t for t in behind.values() if t.state == FAILED]
        if failed or time.monotonic() >= deadline:
            detail = ", ".join(f"{n} at {t.high} ({t.state})" for n, t in behind.items())
            raise ProjectionTimeout(
                f"projections did not reach position {position} within {timeout:g}s: {detail}"
            )
        if wakeup is not None:
            wakeup.set()
        time.sleep(0.005)
