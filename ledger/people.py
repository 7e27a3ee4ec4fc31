"""The people registry: personal data kept outside the immutable events.

Events name people by a pseudonymous id only. Names and contact details live in
one mutable table keyed by that id, so a person can be forgotten on request
(rule 12) while every event, and the history built on them, stays whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from ledger.errors import InvalidInput, PersonNotFound
from ledger.storage import Database

ERASED = "(erased)"


@dataclass(frozen=True)
class Person:
    id: UUID
    name: str
    contact: str
    registered_at: datetime
    erased: bool


KNOWN_KEPT = 100_000


class PeopleRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = db.table("people")
        # Ids found registered. A person's row is never deleted (erasure keeps the id), so
        # an id once known stays known: an admission need not ask the store again.
        self._known: set[str] = set()
        with db.transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " id TEXT PRIMARY KEY,"
                " name TEXT,"
                " contact TEXT,"
                " registered_at TEXT NOT NULL,"
                " erased_at TEXT,"
                " token_hash TEXT)"
            )

    def register(self, name: str, contact: str = "", *, person_id: UUID | None = None) -> Person:
        """Register a person: a name and how to reach them, under a new pseudonymous id."""
        for field, value in (("name", name), ("contact", contact)):
            if any(c < " " for c in value):
                raise InvalidInput(f"{field} contains a control character", field=field)
        name, contact = name.strip(), contact.strip()
        if not name:
            raise InvalidInput("name must not be empty", field="name")
        if len(name) > 200 or len(contact) > 500:
            raise InvalidInput("name or contact is too long", field="name")
        person = Person(person_id or uuid4(), name, contact, datetime.now(UTC), erased=False)
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO {self.table} (id, name, contact, registered_at) VALUES (?, ?, ?, ?)",
                (str(person.id), name, contact, person.registered_at.isoformat()),
            )
        return person

    def get(self, person_id: UUID) -> Person:
        with self.db.read() as cur:
            cur.execute(
                "SELECT id, name, contact, registered_at, erased_at"
                f" FROM {self.table} WHERE id = ?",
                (str(person_id),),
            )
            row = cur.fetchone()
        if row is None:
            raise PersonNotFound(f"no person {person_id}", field="person_id")
        return Person(
            id=UUID(row[0]),
            name=row[1] if row[4] is None else ERASED,
            contact=row[2] if row[4] is None else "",
            registered_at=datetime.fromisoformat(row[3]),
            erased=row[4] is not None,
        )

    def check_known(self, person_ids: Iterable[UUID], field: str = "person_id") -> None:
        """Refuse ids nobody registered (a typo would otherwise become a member forever)."""
        wanted = {str(p) for p in person_ids} - self._known
        if not wanted:
            return
        known: set[str] = set()
        ordered = sorted(wanted)
        with self.db.read() as cur:
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                cur.execute(f"SELECT id FROM {self.table} WHERE id IN ({marks})", chunk)
                known.update(r[0] for r in cur.fetchall())
        if len(self._known) > KNOWN_KEPT:
            self._known.clear()
        self._known |= known
        missing = wanted - known
        if missing:
            raise PersonNotFound(f"not registered: {', '.join(sorted(missing))}", field=field)

    def erase(self, person_id: UUID) -> None:
        """Forget a person's name and contact details; the pseudonymous id stays in the events."""
        self.get(person_id)
        with self.db.transaction() as cur:
            cur.execute(
                f"UPDATE {self.table} SET name = NULL, contact = NULL, erased_at = ? WHERE id = ?",
                (datetime.now(UTC).isoformat(), str(person_id)),
            )
        if self.db.kind == "sqlite":
            # The write-ahead log still holds the old page until a truncating checkpoint.
            self.db.checkpoint()
