"""What a projection is: plain SQL tables, the DDL that makes them, and a handler per event.

A projection never re-derives a rule; it records what the events say. Its DDL and
SQL name tables by placeholder (``{roster_members}``), so the same projection can
build a second, fresh set of tables during a rebuild and switch to them at once.
``{ix}`` in DDL becomes a token unique to one creation, so index names never clash
between a live table and its rebuild.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from ledger.storage import Cursor, Database

Handler = Callable[["Context", Any], None]
REBUILD_SUFFIX = "__rebuild"


@dataclass(frozen=True)
class Context:
    """What a handler needs: where to write, under which table names, and the event's position."""

    cur: Cursor
    tables: Mapping[str, str]
    position: int

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.cur.execute(sql.format_map(self.tables), params)

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.cur.execute(sql.format_map(self.tables), params)
        return self.cur.fetchone()


def uid(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def iso(value: datetime | None) -> str | None:
    """Timestamps as ISO 8601 text in UTC: sorts correctly and reads the same on both stores."""
    return None if value is None else value.isoformat()


def event_name(event: Any) -> str:
    return type(event).__name__


class Projection:
    """Base class: subclasses list their tables, their DDL and their handlers by event name."""

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    ddl: ClassVar[tuple[str, ...]]
    handlers: ClassVar[dict[str, Handler]]

    def table_names(self, db: Database, suffix: str = "") -> dict[str, str]:
        return {t: db.table(t + suffix) for t in self.tables}

    def create(self, db: Database, cur: Cursor, tables: Mapping[str, str]) -> None:
        """Create the tables unless they all exist (index names differ per creation)."""
        if all(db.table_exists(cur, t) for t in tables.values()):
            return
        self.create_tables(cur, tables)

    def create_tables(self, cur: Cursor, tables: Mapping[str, str]) -> None:
        """Run the DDL as it is: also on a cursor of another store (a rebuild's staging)."""
        names = {**tables, "ix": secrets.token_hex(4)}
        for statement in self.ddl:
            cur.execute(statement.format_map(names))

    def drop(self, cur: Cursor, tables: Mapping[str, str]) -> None:
        for table in tables.values():
            cur.execute(f"DROP TABLE IF EXISTS {table}")

    def fetch(self, db: Database, coop_id: UUID, *queries: str) -> list[list[Any]]:
        """The rows of each query about one cooperative, all read in one transaction.

        Queries name this projection's tables and ``{people}`` by placeholder and take the
        cooperative's id as their only parameter.
        """
        names = {**self.table_names(db), "people": db.table("people")}
        found = []
        with db.read() as cur:
            for sql in queries:
                cur.execute(sql.format_map(names), (str(coop_id),))
                found.append(cur.fetchall())
        return found

    def apply(self, ctx: Context, event: Any) -> None:
        handler = self.handlers.get(event_name(event))
        if handler is not None:
            handler(ctx, event)


def handles(*names: str) -> Callable[[Handler], Handler]:
    """Mark a function as the handler of the named events (collected by ``collect_handlers``)."""

    def mark(func: Handler) -> Handler:
        func.__dict__["handles"] = names
        return func

    return mark


def collect_handlers(namespace: Mapping[str, Any]) -> dict[str, Handler]:
    found: dict[str, Handler] = {}
    for value in namespace.values():
        for name in getattr(value, "handles", ()):
            if name in found:
                raise TypeError(f"two handlers for {name}")
            found[name] = value
    return found
