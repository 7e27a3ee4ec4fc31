"""Idempotency keys: a repeated command returns its first response and writes nothing new.

A key is claimed (a row inserted) before the command runs, so two identical
requests racing each other cannot both run it: the second gets 409 until the
first has finished, then the stored response. A key reused for a different
request is refused. A command that failed releases its key, so it can be retried.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from ledger.storage import Database

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    status: int | None
    body: bytes | None


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
        with no status, the first request is still running.
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
                f"SELECT fingerprint, status, body FROM {self.table}"
                " WHERE person_id = ? AND key = ?",
                (str(person_id), key),
            )
            row = cur.fetchone()
        return Stored(row[0], row[1], row[2].encode() if row[2] is not None else None)

    def complete(self, person_id: UUID, key: str, status: int, body: bytes) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {self.table} SET status = ?, body = ? WHERE person_id = ? AND key = ?",
                (status, body.decode(), str(person_id), key),
            )

    def release(self, person_id: UUID, key: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                f"DELETE FROM {self.table} WHERE person_id = ? AND key = ? AND status IS NULL",
                (str(person_id), key),
            )
