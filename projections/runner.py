"""Runs projections over the ledger's events: catch-up, live, exactly once.

Each batch of a projection is one transaction that writes its view rows and its
new tracking position together, after locking that projection's tracking row.
A crash at any point leaves either the whole batch or none of it, so a restarted
runner resumes exactly where the last commit left off.

On PostgreSQL the ledger's recorder serialises writers with a table lock held
until commit, so notification ids become visible in order; on SQLite the single
writer lock does the same. Reading the next ids after the tracked position is
therefore gap-free on both stores (a held writer transaction blocks the writers
behind it, and the reader sees neither until they commit).

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

import psycopg
from eventsourcing.persistence import InterfaceError as PersistenceInterfaceError
from eventsourcing.persistence import OperationalError as PersistenceOperationalError

from ledger.application import Ledger
from ledger.storage import Cursor, Database
from projections.framework import Context, Projection

log = logging.getLogger("coop_ledger.projections")

RUNNING = "running"
FAILED = "failed"


class PoisonEvent(Exception):
    """A projection's handler failed on the event at ``position``."""

    def __init__(self, position: int, cause: Exception) -> None:
        super().__init__(f"event {position}: {cause}")
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
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {tracking_table(db)} ("
            " name TEXT PRIMARY KEY,"
            " position BIGINT NOT NULL,"
            " state TEXT NOT NULL,"
            " error TEXT,"
            " error_position BIGINT,"
            " updated_at TEXT NOT NULL)"
        )


def is_transient(error: BaseException) -> bool:
    """A store that is unreachable or busy, as opposed to a handler that is wrong."""
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return "locked" in text or "busy" in text or "disk i/o" in text
    return isinstance(error, PersistenceOperationalError | PersistenceInterfaceError)


def read_tracking(db: Database, name: str) -> tuple[int, str]:
    with db.read() as cur:
        cur.execute(f"SELECT position, state FROM {tracking_table(db)} WHERE name = ?", (name,))
        row = cur.fetchone()
    return (int(row[0]), str(row[1])) if row else (0, RUNNING)


def lock_tracking(db: Database, cur: Cursor, name: str) -> tuple[int, str]:
    """This projection's (position, state), its row locked until the transaction ends."""
    lock = " FOR UPDATE" if db.kind == "postgresql" else ""
    cur.execute(f"SELECT position, state FROM {tracking_table(db)} WHERE name = ?{lock}", (name,))
    row = cur.fetchone()
    return (int(row[0]), str(row[1])) if row else (0, RUNNING)


def set_tracking(
    db: Database,
    cur: Cursor,
    name: str,
    position: int,
    state: str = RUNNING,
    error: str | None = None,
) -> None:
    cur.execute(
        f"INSERT INTO {tracking_table(db)} (name, position, state, error, error_position,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
        " position = excluded.position, state = excluded.state, error = excluded.error,"
        " error_position = excluded.error_position, updated_at = excluded.updated_at",
        (
            name,
            position,
            state,
            error,
            position + 1 if error else None,
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

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def process_batch(
        self, projection: Projection, limit: int | None = None, *, pipeline: bool = True
    ) -> int:
        """Apply the next events to one projection in one transaction; how many were applied."""
        tables = projection.table_names(self.db)
        # Read the events before taking the write lock: on SQLite a writer waiting for that
        # lock can hold the library's only connection, which this read would need.
        position, state = read_tracking(self.db, projection.name)
        if state == FAILED:
            return 0
        notifications = self.ledger.recorder.select_notifications(
            start=position + 1, limit=limit or self.batch_size
        )
        if not notifications:
            return 0
        try:
            with self.db.transaction(pipeline=pipeline) as cur:
                position, state = lock_tracking(self.db, cur, projection.name)
                if state == FAILED:
                    return 0
                # Another runner may have moved on meanwhile: apply only what is still new.
                fresh = [n for n in notifications if n.id > position]
                for notification in fresh:
                    try:
                        event = self.ledger.mapper.to_domain_event(notification)
                        projection.apply(Context(cur, tables, notification.id), event)
                    except Exception as error:
                        if is_transient(error):
                            raise
                        raise PoisonEvent(notification.id, error) from error
                if fresh:
                    set_tracking(self.db, cur, projection.name, fresh[-1].id)
                return len(fresh)
        except PoisonEvent as poison:
            # The batch was rolled back: apply the good events before the poison, then stop.
            good = sum(1 for n in notifications if position < n.id < poison.position)
            applied = self.process_batch(projection, limit=good) if good > 0 else 0
            self._record_failure(projection, poison)
            return applied
        except Exception as error:
            if is_transient(error) or not pipeline:
                raise  # the store is unreachable or busy: the caller tries again later
            # A pipelined statement failed at commit, after its handler had returned:
            # run the batch again statement by statement so the poison names itself.
            return self.process_batch(projection, limit, pipeline=False)

    def _record_failure(self, projection: Projection, poison: PoisonEvent) -> None:
        message = f"{type(poison.cause).__name__}: {poison.cause}"
        with self.db.transaction() as cur:
            position, _ = lock_tracking(self.db, cur, projection.name)
            set_tracking(self.db, cur, projection.name, position, FAILED, message)
        log.error(
            "projection %s stopped at event %d: %s (the event is not skipped; "
            "fix the cause, then rebuild the projection)",
            projection.name,
            poison.position,
            message,
        )

    def run_once(self) -> int:
        """One batch for every projection; the number of events applied in all."""
        return sum(self.process_batch(p) for p in self.projections)

    def catch_up(self) -> int:
        total = 0
        while n := self.run_once():
            total += n
        return total

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
        wait_until(self.db, [p.name for p in self.projections], position, timeout, self.wakeup)


def read_status(db: Database, names: Iterable[str], head: int) -> list[ProjectionStatus]:
    wanted = list(names)
    with db.read() as cur:
        cur.execute(
            f"SELECT name, position, state, error, error_position FROM {tracking_table(db)}"
        )
        rows = {r[0]: r for r in cur.fetchall()}
    result = []
    for name in wanted:
        row = rows.get(name)
        if row is None:
            result.append(ProjectionStatus(name, 0, RUNNING, None, None, head))
        else:
            result.append(ProjectionStatus(name, int(row[1]), row[2], row[3], row[4], head))
    return result


def wait_until(
    db: Database,
    names: Sequence[str],
    position: int,
    timeout: float,
    wakeup: threading.Event | None = None,
) -> None:
    """Block until every named projection has applied ``position``; else ProjectionTimeout."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = read_status(db, names, 0)
        behind = [s for s in statuses if s.position < position]
        if not behind:
            return
        failed = [s for s in behind if s.state == FAILED]
        if failed or time.monotonic() >= deadline:
            detail = ", ".join(f"{s.name} at {s.position} ({s.state})" for s in behind)
            raise ProjectionTimeout(
                f"projections did not reach position {position} within {timeout:g}s: {detail}"
            )
        if wakeup is not None:
            wakeup.set()
        time.sleep(0.005)
