"""The SQLite event store: the library's recorder, each event row with its hash-chain link.

SQLite lets one writer in at a time, so notification ids commit in order and a
reader tailing them never passes an event that appears later: the log position's
transaction id is always 0.

Each row holds its event's link (``prev_hash``, ``hash``; see ledger.chain), so a save
is one INSERT per event. Saves go through ``ledger.sqlite_writer`` (a connection of the
recorder's own, one ``BEGIN IMMEDIATE``, the inserts, ``COMMIT``); reads stay on the
library's pooled connections. An in-memory database is private to its connection, so
there the library's own save path is kept.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, ProgrammingError, StoredEvent
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteDatastore,
    SQLiteFactory,
)

from ledger.chain import Link
from ledger.log import LogPosition
from ledger.migration import MigrationCheck
from ledger.sqlite_writer import SQLiteWriter

# One writer per datastore, so the events and the snapshots of one application queue on
# one lock instead of meeting in SQLite's busy handler (which sleeps a millisecond or more).
_writers: weakref.WeakKeyDictionary[SQLiteDatastore, SQLiteWriter] = weakref.WeakKeyDictionary()
_writers_guard = threading.Lock()


def writer_for(datastore: SQLiteDatastore) -> SQLiteWriter | None:
    """The datastore's lean writer, shared by the recorders on it (None in memory mode)."""
    pool = datastore.pool
    if pool.is_sqlite_memory_mode:
        return None
    with _writers_guard:
        writer = _writers.get(datastore)
        if writer is None:
            timeout = pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT
            writer = _writers[datastore] = SQLiteWriter(pool.db_name, timeout)
        return writer


def _event_row(s: StoredEvent) -> tuple[Any, ...]:
    # The library's own encoding of the row (UUIDs as hex), so its readers read it back.
    oid = s.originator_id
    return (oid.hex if isinstance(oid, UUID) else oid, s.originator_version, s.topic, s.state)


class ChainedSQLiteRecorder(MigrationCheck, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self.writer = writer_for(datastore)
        table = self.events_table_name
        self.insert_events_statement = (
            f"INSERT INTO {table} (originator_id, originator_version, topic, state,"
            " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)"
        )
        # The library selects *: an aggregate's load has no use for the chain links.
        self.select_events_statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {table}"
            " WHERE originator_id=? "
        )

    def construct_create_table_statements(self) -> list[str]:
        # The library's table (its rowid is the notification id) with the links' columns.
        return [
            f"CREATE TABLE IF NOT EXISTS {self.events_table_name} ("
            "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "prev_hash TEXT, hash TEXT, "
            "PRIMARY KEY (originator_id, originator_version))"
        ]

    def create_table(self) -> None:
        # CREATE TABLE IF NOT EXISTS would keep an old table without the links' columns.
        self.check_migrated()
        super().create_table()

    def missing_columns(self) -> list[str]:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT name FROM pragma_table_info(?)", (self.events_table_name,))
            columns = {row["name"] for row in c.fetchall()}
        return ["hash"] if columns and "hash" not in columns else []

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.writer is None:
            return super().insert_events(stored_events, **kwargs)

        def save(cursor: sqlite3.Cursor) -> list[int]:
            return self._insert_events(cursor, stored_events, **kwargs)

        return self.writer.write(save)

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[int]:
        # ``c`` is a sqlite3 cursor on the lean path, the library's wrapper of one in memory
        # mode. A version already taken fails (IntegrityError) and the whole transaction is
        # rolled back.
        links: Sequence[Link] = kwargs.get("chain_links") or ()
        if len(links) != len(stored_events):
            raise ProgrammingError("every event is stored with its chain link")
        ids: list[int] = []
        for s, k in zip(stored_events, links, strict=True):
            c.execute(self.insert_events_statement, (*_event_row(s), k.prev, k.hash))
            ids.append(c.lastrowid)
        return ids

    def close(self) -> None:
        """Close the write connection (the library's pool closes with the application)."""
        if self.writer is not None:
            self.writer.close()

    def read_log(self, after: LogPosition, limit: int) -> list[tuple[LogPosition, Notification]]:
        notifications = self.select_notifications(start=after[1] + 1, limit=limit)
        return [((0, n.id), n) for n in notifications]

    def covers(self, after: LogPosition, notification_id: int) -> bool:
        if after[1] >= notification_id:
            return True
        return not self.select_notifications(start=after[1] + 1, stop=notification_id, limit=1)


def snapshot_recorder(factory: SQLiteFactory) -> LeanSQLiteSnapshotRecorder:
    """The recorder the library's factory would make for snapshots, on the lean writer."""
    recorder = LeanSQLiteSnapshotRecorder(factory.datastore, events_table_name="stored_snapshots")
    if factory.env_create_table():
        recorder.create_table()
    return recorder


class LeanSQLiteSnapshotRecorder(SQLiteAggregateRecorder):
    """The library's snapshot table, written through the same writer as the events."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_snapshots"):
        super().__init__(datastore, events_table_name)
        self.writer = writer_for(datastore)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.writer is None:
            return super().insert_events(stored_events, **kwargs)
        rows = [_event_row(s) for s in stored_events]

        def save(cursor: sqlite3.Cursor) -> None:
            cursor.executemany(self.insert_events_statement, rows)

        return self.writer.write(save)
