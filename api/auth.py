"""Bearer tokens: one for the facilitator, one per registered person.

Tokens are random, shown once, and stored only as their SHA-256 digest; a
presented token is looked up by its digest and compared in constant time. Failed
attempts are limited per client address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from uuid import UUID

from ledger.application import Ledger
from ledger.storage import Database


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person, and whether they are the facilitator."""

    person_id: UUID
    is_facilitator: bool


class TokenStore:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.db: Database = ledger.db
        self.secrets = self.db.table("service_secrets")
        self.people = self.db.table("people")
        with self.db.transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.secrets} (name TEXT PRIMARY KEY, value TEXT)"
            )
            cur.execute(
                f"CREATE INDEX IF NOT EXISTS people_token_hash ON {self.people} (token_hash)"
            )

    def bootstrap_facilitator(self, configured: str | None) -> tuple[UUID, str | None]:
        """The facilitator's person id, and a token to print when one was just generated."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT value FROM {self.secrets} WHERE name = 'facilitator_id'")
            row = cur.fetchone()
        if row is None:
            person = self.ledger.register_person("Facilitator")
            with self.db.transaction() as cur:
                cur.execute(
                    f"INSERT INTO {self.secrets} (name, value) VALUES ('facilitator_id', ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (str(person.id),),
                )
                cur.execute(f"SELECT value FROM {self.secrets} WHERE name = 'facilitator_id'")
                row = cur.fetchone()
        facilitator = UUID(row[0])
        generated = None
        if configured:
            self.set_token(facilitator, configured)
        else:
            with self.db.read() as cur:
                cur.execute(
                    f"SELECT token_hash FROM {self.people} WHERE id = ?", (str(facilitator),)
                )
                has_token = (cur.fetchone() or (None,))[0] is not None
            if not has_token:
                generated = new_token()
                self.set_token(facilitator, generated)
        return facilitator, generated

    def set_token(self, person_id: UUID, token: str | None) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {self.people} SET token_hash = ? WHERE id = ?",
                (digest(token) if token else None, str(person_id)),
            )

    def issue(self, person_id: UUID) -> str:
        token = new_token()
        self.set_token(person_id, token)
        return token

    def authenticate(self, token: str) -> UUID | None:
        presented = digest(token)
        with self.db.read() as cur:
            cur.execute(
                f"SELECT id, token_hash FROM {self.people}"
                " WHERE token_hash = ? AND erased_at IS NULL",
                (presented,),
            )
            row = cur.fetchone()
        if row is None or not hmac.compare_digest(row[1], presented):
            return None
        return UUID(row[0])


class FailedAuthLimiter:
    """At most ``per_minute`` failed authentications per client address."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.failures: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until this client may try again (0: now)."""
        now = time.monotonic()
        with self.lock:
            window = self.failures.get(client)
            if not window:
                return 0
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) < self.per_minute:
                return 0
            return int(60 - (now - window[0])) + 1

    def failed(self, client: str) -> None:
        with self.lock:
            if len(self.failures) > 10_000:
                self.failures.clear()
            self.failures.setdefault(client, deque()).append(time.monotonic())
