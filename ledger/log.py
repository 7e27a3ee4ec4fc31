"""Reading the event log in an order that never passes an event that commits later.

Both recorders offer ``read_log``: PostgreSQL orders by (transaction id,
notification id) below the snapshot's xmin (``ledger.pg_recorder``); SQLite has one
writer at a time, so notification ids already commit in order and the transaction
id is always 0. Projections track a ``LogPosition``, not a bare notification id.
"""

from __future__ import annotations

from typing import Protocol

from eventsourcing.persistence import Notification

LogPosition = tuple[int, int]
"""(transaction id, notification id) of the last event a reader passed."""

START: LogPosition = (0, 0)


class EventLog(Protocol):
    def read_log(self, after: LogPosition, limit: int) -> list[tuple[LogPosition, Notification]]:
        """The next events after ``after``, in an order no later commit can precede."""
        ...

    def covers(self, after: LogPosition, notification_id: int) -> bool:
        """Whether every stored event up to ``notification_id`` lies at or before ``after``."""
        ...
