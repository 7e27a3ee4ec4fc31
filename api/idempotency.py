"""Idempotency keys: a repeated command returns its first response and writes nothing new.

A key is claimed (a row inserted) before the command runs, so two identical
requests racing each other cannot both run it: the second gets 409 until the
first has finished, then the stored response. A key reused for a different
request is refused. A command that failed releases its key, so it can be retried.

A command whose save may have reached the store without an answer keeps its key,
marked as of unknown outcome: running it again could record it twice. So does a claim
whose worker went away mid-command (killed, crashed) once it is older than any command
can run (``LEASE``): neither is reported as still running for ever, and the client is
told to look at the cooperative's events before it sends the command again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from ledger.storage import Database

MAX_KEY_LENGTH = 200
# Longer than any command runs: the Ledger gives up after 16 attempts, each waiting at
# most 2 s in a cooperative's queue of writers.
LEASE = timedelta(minutes=2)
OUTCOME_UNKNOWN = 0  # the status of a kept key whose command may or may not be recorded


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    status: int | None
    body: bytes | None
    claimed_at: datetime

    def outcome_unknown(self, now: datetime) -> bool:
        """Whether the command of this key may or may not have been recorded."""
        if self.status is None:
            return now - self.claimed_at > LEASE  # its worker went away
        return self.status == OUTCOME_UNKNOWN


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class IdempotencyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = db.table("idempotency_keys")
        with db.transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " person_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
                " status INTEGER, body TEXT, created_at TEXT NOT NULL,"
                " PRIMARY KEY (person_id, key))"
            )

    def claim(self, person_id: UUID, key: str, print_: str) -> Stored | None:
        """Claim ``key`` for this request: None when newly claimed, else what holds it.

        A returned ``Stored`` with another fingerprint is a reuse for a different request;
        with no status, the first request is still running (or went away: see LEASE).
        """
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {self.table} (person_id, key, fingerprint, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (person_id, key) DO NOTHING RETURNING key",
                (str(person_id), key, print_, datetime.now(UTC).isoformat()),
            )
            if cur.fetchone() is not None:
                return None
            cur.execute(
                f"SELECT fingerprint, status, body, created_at FROM {self.table}"
                " WHERE person_id = ? AND key = ?",
                (str(person_id), key),
            )
            row = cur.fetchone()
        body = row[2].encode() if row[2] is not None else None
        return Stored(row[0], row[1], body, datetime.fromisoformat(row[3]))

    def complete(self, person_id: UUID, key: str, status: int, body: bytes) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {self.table} SET status = ?, body = ? WHERE person_id = ? AND key = ?",
                (status, body.decode(), str(person_id), key),
            )

    def keep_unknown(self, person_id: UUID, key: str) -> None:
        """Keep the key of a command whose save may have been recorded, as such."""
        self.complete(person_id, key, OUTCOME_UNKNOWN, b"")

    def release(self, person_id: UUID, key: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                f"DELETE FROM {self.table} WHERE person_id = ? AND key = ? AND status IS NULL",
                (str(person_id), key),
            )
