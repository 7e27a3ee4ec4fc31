"""The SQLite write path of the Ledger's recorders: one connection, one lock, one transaction.

The library saves through a connection pool (a semaphore, a writer lock and a condition
per save), a transaction context manager and a cursor wrapper, on connections that cache
one prepared statement (``cached_statements=True`` is a cache of size 1, so BEGIN and the
two inserts push one another out and are prepared again on every save). Saving is all
an application recorder writes, so it gets a connection of its own:

- ``BEGIN IMMEDIATE`` takes SQLite's write lock before anything is read or written, so
  two writers never deadlock upgrading a read lock; another process (or another
  connection of this one) holding it is waited for by SQLite's busy handler for the
  same ``timeout`` as the library's connections.
- Threads of this process queue on one ``threading.Lock`` (no busy-handler sleeps
  between them), as they did on the library's writer lock.
- ``synchronous=FULL`` is set, not left to the build's default: in WAL mode that syncs
  the log at every commit, so a save that returned survives a power cut (``NORMAL``
  would not). It is what the bench's raw baseline uses too.
- Any error rolls the whole transaction back: nothing of a save that raised is stored.
  A COMMIT that fails on an I/O error may still have reached the disk: that raises
  ``SaveOutcomeUnknown``, so a caller holding an idempotency key keeps it claimed.
- A forked child never touches the parent's connection or lock: it opens its own.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import PersistenceError

from ledger import dbapi
from ledger.errors import SaveOutcomeUnknown

T = TypeVar("T")

# Prepared statements kept per connection: a save uses four, the snapshot insert a fifth.
STATEMENT_CACHE = 32
SQLITE_IOERR = 10  # the primary result code of every SQLITE_IOERR_* extended code


def persistence_error(error: sqlite3.Error) -> PersistenceError:
    """The library's exception for a ``sqlite3`` one, as its own transactions map them."""
    return dbapi.persistence_error(error, sqlite3)


class SQLiteWriter:
    """Runs writes in transactions of their own on a connection only they use."""

    # The class of the connection opened (tests substitute one that fails on cue).
    connection_class: type[sqlite3.Connection] = sqlite3.Connection

    def __init__(self, database: str, timeout: float) -> None:
        self.database = database
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # Connections inherited through fork(): never used or closed in the child (closing
        # one there could checkpoint or delete the parent's log), only kept from the GC.
        self._inherited: list[sqlite3.Connection] = []
        _live.add(self)

    def _after_fork_in_child(self) -> None:
        # The parent's connection is the parent's, and a thread of the parent may have
        # held the lock at the fork: the child starts with a fresh lock and no connection.
        self._lock = threading.Lock()
        if self._conn is not None:
            self._inherited.append(self._conn)
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.database,
            uri=True,  # as the library opens it, so a file: URI means the same file
            timeout=self.timeout,
            isolation_level=None,  # no implicit transactions: BEGIN and COMMIT are ours
            check_same_thread=False,  # used by one thread at a time, under self._lock
            cached_statements=STATEMENT_CACHE,
            factory=self.connection_class,
        )
        try:
            # WAL is a property of the file, normally set already by the library's first
            # connection; a store created by this connection first must be WAL as well.
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        elif self._conn.in_transaction:
            # Only if a save was interrupted where nothing could clean up (a signal inside
            # COMMIT, say): what it left open is not committed by the next save.
            self._conn.execute("ROLLBACK")
        return self._conn

    def write(self, work: Callable[[sqlite3.Cursor], T]) -> T:
        """``work`` in one transaction, committed when it returns, rolled back if it raises."""
        with self._lock:
            try:
                conn = self._connection()
                cursor = conn.cursor()
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise persistence_error(error) from error
            try:
                result = work(cursor)
            except BaseException as error:
                self._roll_back(conn)
                if isinstance(error, sqlite3.Error):
                    raise persistence_error(error) from error
                raise
            try:
                cursor.execute("COMMIT")
            except sqlite3.Error as error:
                self._roll_back(conn)
                if getattr(error, "sqlite_errorcode", 0) & 0xFF == SQLITE_IOERR:
                    # Frames written but not known to be synced: they may have landed.
                    raise SaveOutcomeUnknown(f"the save's outcome is unknown: {error}") from error
                raise persistence_error(error) from error
            return result

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:
            return  # SQLite already rolled it back (it does on some errors)
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            # A connection that cannot roll back is not trusted again: the next write opens
            # a new one, and closing this one abandons its transaction (SQLite rolls back).
            self._conn = None
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


# Every writer of this process, so a forked child can drop what it inherited.
_live: weakref.WeakSet[SQLiteWriter] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for writer in list(_live):
        writer._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_after_fork)
