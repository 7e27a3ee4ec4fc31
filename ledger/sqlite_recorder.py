"""The SQLite event store: the library's recorder plus the hash-chain links and ``read_log``.

SQLite lets one writer in at a time, so notification ids commit in order and a
reader tailing them never passes an event that appears later: the log position's
transaction id is always 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.chain import Link
from ledger.log import LogPosition


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
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

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        # The links go in the events' own transaction, after them.
        ids = super()._insert_events(c, stored_events, **kwargs)
        links: Sequence[Link] = kwargs.get("chain_links") or ()
        if links:
            c.executemany(
                f"INSERT INTO {self.chain_table}"
                " (originator_id, originator_version, prev_hash, hash) VALUES (?, ?, ?, ?)",
                [(str(k.originator_id), k.version, k.prev, k.hash) for k in links],
            )
        return ids

    def read_log(self, after: LogPosition, limit: int) -> list[tuple[LogPosition, Notification]]:
        notifications = self.select_notifications(start=after[1] + 1, limit=limit)
        return [((0, n.id), n) for n in notifications]

    def covers(self, after: LogPosition, notification_id: int) -> bool:
        if after[1] >= notification_id:
            return True
        return not self.select_notifications(start=after[1] + 1, stop=notification_id, limit=1)
