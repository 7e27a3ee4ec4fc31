"""The SQLite event store: the library's recorder plus the hash-chain links and ``read_log``.

SQLite lets one writer in at a time, so notification ids commit in order and a
reader tailing them never passes an event that appears later: the log position's
transaction id is always 0.

Saves go through ``ledger.sqlite_writer`` (a connection of the recorder's own, one
``BEGIN IMMEDIATE``, the event inserts, the link inserts, ``COMMIT``); reads stay on the
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

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteDatastore,
    SQLiteFactory,
)

from ledger.chain import Link
from ledger.log import LogPosition
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


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self.writer = writer_for(datastore)
        self.insert_link_statement = (
            f"INSERT INTO {self.chain_table}"
            " (originator_id, originator_version, prev_hash, hash) VALUES (?, ?, ?, ?)"
        )

    @property
    def chain_table(self) -> str:
        return self.events_table_name + "_chain"

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.chain_table} ("
            " originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL,"
            " prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
            " PRIMARY KEY (originator_id, originator_version))",
        ]

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
        # mode. The events first: a version already taken fails here (IntegrityError) before
        # any link is written, and the whole transaction is rolled back.
        ids: list[int] = []
        for s in stored_events:
            c.execute(self.insert_events_statement, _event_row(s))
            ids.append(c.lastrowid)
        links: Sequence[Link] = kwargs.get("chain_links") or ()
        for k in links:
            c.execute(self.insert_link_statement, (str(k.originator_id), k.version, k.prev, k.hash))
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
