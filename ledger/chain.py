"""The tamper-evident hash chain: every stored event linked to the one before it.

Each cooperative's events form a SHA-256 chain over a canonical text of the stored
event, the same on SQLite and PostgreSQL:

    hash = sha256("coop-ledger-chain/1\\n" prev "\\n" originator_id "\\n" version "\\n"
                  topic "\\n" sha256(state))

``prev`` is the previous event's hash; the first event of a founded cooperative
starts from GENESIS, and the first event of a split-off starts from its parent's
head at the split, so the family's histories are bound together. The links are
written by the recorder in the same transaction as the events they cover
(``ledger.pg_recorder``, ``ledger.sqlite_recorder``).

This module is also the reference for outside verifiers: ``link_hash`` uses only
the standard library, and ``scripts/verify_export.py`` repeats it on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import StoredEvent

GENESIS = "0" * 64
DOMAIN = "coop-ledger-chain/1"


def link_hash(prev: str, originator_id: UUID | str, version: int, topic: str, state: bytes) -> str:
    canonical = "\n".join(
        (
            DOMAIN,
            prev,
            canonical_id(originator_id),
            str(version),
            topic,
            hashlib.sha256(state).hexdigest(),
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def canonical_id(originator_id: UUID | str) -> str:
    """The id's hyphenated lower-case form, however it was given."""
    return str(originator_id if type(originator_id) is UUID else UUID(str(originator_id)))


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
        given = event.originator_id
        originator_id = given if type(given) is UUID else UUID(str(given))
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
