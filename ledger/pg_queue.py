"""A cooperative's queue of writers on PostgreSQL: an advisory lock held by a save connection.

After a lost race a writer stops racing and queues (``Ledger._command``). Its turn is a
session advisory lock on the cooperative's key, taken on a connection it then also saves
on, so that a turn costs two round trips:

1. the lock and, once it is granted, the read of the events stored since the writer's
   cached copy (one pipeline: the read starts the moment the lock is granted);
2. the save and the unlock (one pipeline with a Sync between them: the unlock runs only
   after the save has committed, so the next writer's read sees it).

The next writer starts as soon as the server has committed, without waiting for this
writer to hear back. A lock wait runs out after ``QUEUE_WAIT_S`` (the
connection's ``lock_timeout``); the writer then races as before, and the version check
still decides. The queue only spares wasted work; it never decides who wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import PersistenceError, ProgrammingError, StoredEvent
from psycopg import pq

from ledger.pg_wire import INT8, INT8_OID, Call, Line, failure

# The longest a writer waits in a cooperative's queue before it races instead.
QUEUE_WAIT_S = 2.0
# Named, so each is prepared once per connection: the unlock runs between one writer's
# commit and the next writer's turn, where a parse on every turn would be waited for.
UNLOCK = Call("SELECT pg_advisory_unlock_all()", (), (), b"coop_unlock")


def lock(key: int) -> Call:
    return Call("SELECT pg_advisory_lock(%s)", (INT8_OID,), (INT8.pack(key),), b"coop_lock")


class Turn:
    """A writer's place in one queue; it waits only when asked to (``wait``)."""

    def __init__(self, line: Line | None, key: int) -> None:
        self.line, self.key, self.locked = line, key, False

    def wait(self, read: Call, *, also: int | None = None) -> CaughtUp | None:
        """Wait for this writer's turn, then run ``read`` (stored events) at once.

        ``also`` is one more key to hold (a priority over writers that do not queue).
        None when there is no turn to wait for (no connection, the wait ran out, the
        connection failed): the caller reads for itself and races.
        """
        if self.line is None:
            return None
        keys = [self.key] if also is None else [self.key, also]
        try:
            *locks, rows = self.line.each([*(lock(k) for k in keys), read])
        except PersistenceError:
            return None  # the connection is closed, and its locks went with it
        self.locked = True  # perhaps only some: release() lets go of all of them
        if any(failure(r) for r in (*locks, rows)):
            self.release()
            return None
        return caught_up(rows)

    def save(self, save: Call) -> pq.abc.PGresult:
        """Run ``save``, then give the turn up, in one round trip; the save's result."""
        if self.line is None or not self.locked:
            raise ProgrammingError("a save in a turn needs the turn")
        try:
            result, _ = self.line.each([save, UNLOCK])
        finally:
            # Unlocked, or the connection failed and closed, which also lets go.
            self.locked = False
        return result

    def release(self) -> None:
        """Let the next writer in now (also done when the place is given up). Never raises:
        the caller's events may be stored already."""
        if self.line is None or not self.locked:
            return
        self.locked = False
        try:
            (result,) = self.line.each([UNLOCK])
        except PersistenceError:
            return  # closed, and its locks with it
        if failure(result) is not None:
            self.line.close()  # never lend a connection that may still hold a lock


@dataclass(frozen=True)
class CaughtUp:
    """What a turn's read found: the events, and the hash of the last one's chain link."""

    events: list[StoredEvent]
    head: str | None


def caught_up(result: pq.abc.PGresult) -> CaughtUp:
    """Rows of the events table, read in binary, as the library's StoredEvent (and the
    ``hash`` column of the last row, when the read has one)."""
    named = {result.fname(n): n for n in range(result.nfields)}
    names = (b"originator_id", b"originator_version", b"topic", b"state")
    columns = [named[name] for name in names]
    events = []
    for row in range(result.ntuples):
        originator_id, version, topic, state = (result.get_value(row, c) for c in columns)
        events.append(
            StoredEvent(
                originator_id=UUID(bytes=bytes(originator_id or b"")),
                originator_version=INT8.unpack(version or b"")[0],
                topic=bytes(topic or b"").decode(),
                state=bytes(state or b""),
            )
        )
    head = None
    if events and b"hash" in named:
        found = result.get_value(result.ntuples - 1, named[b"hash"])
        head = None if found is None else bytes(found).decode()
    return CaughtUp(events, head)
