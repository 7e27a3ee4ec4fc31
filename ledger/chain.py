"""The tamper-evident hash chain: every stored event linked to the one before it.

Each cooperative's events form a SHA-256 chain over a canonical text of the stored
event, the same on SQLite and PostgreSQL:

    hash = sha256("coop-ledger-chain/1\\n" prev "\\n" originator_id "\\n" version "\\n"
                  topic "\\n" sha256(state))

``prev`` is the previous event's hash; the first event of a founded cooperative
starts from GENESIS, and the first event of a split-off starts from its parent's
head at the split, so the family's histories are bound together. The links are
written by the recorder in the same transaction as the events they cover.

This module is also the reference for outside verifiers: ``link_hash`` uses only
the standard library, and ``scripts/verify_export.py`` repeats it on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

GENESIS = "0" * 64
DOMAIN = "coop-ledger-chain/1"


def link_hash(prev: str, originator_id: UUID | str, version: int, topic: str, state: bytes) -> str:
    canonical = "\n".join(
        (
            DOMAIN,
            prev,
            str(UUID(str(originator_id))),
            str(version),
            topic,
            hashlib.sha256(state).hexdigest(),
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    originator_id: UUID
    version: int
    prev: str
    hash: str


def chain_links(
    stored_events: Sequence[StoredEvent], heads: dict[UUID, str], parents: dict[UUID, UUID]
) -> list[Link]:
    """Links for ``stored_events`` in order.

    ``heads`` gives each continuing chain's hash before them and is advanced as links
    are made; a new chain starts at its parent's head (a split) or at GENESIS.
    """
    links = []
    for event in stored_events:
        originator_id = UUID(str(event.originator_id))
        if originator_id not in heads:
            parent = parents.get(originator_id)
            heads[originator_id] = heads[parent] if parent is not None else GENESIS
        prev = heads[originator_id]
        link = Link(
            originator_id,
            event.originator_version,
            prev,
            link_hash(prev, originator_id, event.originator_version, event.topic, event.state),
        )
        heads[originator_id] = link.hash
        links.append(link)
    return links


class _Chained:
    """Writes the links passed as ``chain_links=`` in the events' own transaction."""

    chain_table: str

    def _insert_chain(self, cursor: Any, links: Sequence[Link], placeholder: str) -> None:
        if not links:
            return
        marks = ", ".join([placeholder] * 4)
        cursor.executemany(
            f"INSERT INTO {self.chain_table} (originator_id, originator_version, prev_hash, hash)"
            f" VALUES ({marks})",
            [(str(k.originator_id), k.version, k.prev, k.hash) for k in links],
        )


class ChainedSQLiteRecorder(_Chained, SQLiteApplicationRecorder):
    @property
    def chain_table(self) -> str:  # type: ignore[override]
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
        ids = super()._insert_events(c, stored_events, **kwargs)
        self._insert_chain(c, kwargs.get("chain_links") or (), "?")
        return ids


class ChainedPostgresRecorder(_Chained, PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name = self.events_table_name + "_chain"
        self.chain_table = f"{self.datastore.schema}.{name}"
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                " originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
                " prev_hash text NOT NULL, hash text NOT NULL,"
                " PRIMARY KEY (originator_id, originator_version))"
            ).format(schema=Identifier(self.datastore.schema), table=Identifier(name))
        )

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # After the events, so that a version conflict fails on the events' own key (which
        # the library raises as IntegrityError and the Ledger retries), never first on a
        # link's key, which would abort the pipeline with another error. Its own cursor:
        # the library then reads the new notification ids from ``curs``.
        super()._insert_stored_events(curs, stored_events, **kwargs)
        with curs.connection.cursor() as links:
            self._insert_chain(links, kwargs.get("chain_links") or (), "%s")
