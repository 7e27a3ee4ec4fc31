"""A store of an earlier release: refused at open, and its links moved by ``coop-ledger migrate``.

Until this release each event's link lived in a table of its own, ``<events>_chain``,
written in the same transaction as the event. Now the events table holds it
(``prev_hash``, ``hash``): a save writes one row and one index. The links themselves do
not change, so exports, receipts and checkpoints read exactly as before.

On both stores the migration is one transaction: add the two columns, copy each link
into its event's row, drop the chain table. The columns may be NULL: an event stored
without a link (there is no such event unless someone removed its link by hand) keeps
showing as "link missing" to ``coop-ledger verify`` instead of stopping the migration.
SQLite adds the columns in place, so every row keeps its rowid (its position in the log).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import ChainBroken, StoreNeedsMigration
from ledger.storage import Cursor, Database

LINK_COLUMNS = ("prev_hash", "hash")


class MigrationCheck:
    """``check_migrated`` for a recorder: refuse an events table that lacks later columns."""

    events_table_name: str
    _checked = False

    def missing_columns(self) -> Sequence[str]:
        """The columns of this release an existing events table lacks (none if no table)."""
        raise NotImplementedError

    def check_migrated(self) -> None:
        """Raise StoreNeedsMigration if the events table predates this release (checked once)."""
        if self._checked:
            return
        missing = self.missing_columns()
        if missing:
            raise StoreNeedsMigration(
                f"the events table {self.events_table_name!r} has no {' or '.join(missing)}"
                " column: it was made by an earlier coop-ledger; run `coop-ledger migrate`"
                " once (service stopped)"
            )
        self._checked = True


def needs_migration(db: Database, cur: Cursor, events: str) -> bool:
    """Whether ``events`` (as our SQL spells it) exists without the links' columns."""
    columns = db.columns(cur, events)
    return bool(columns) and "hash" not in columns


def migrate_links(db: Database, events_table_name: str) -> int | None:
    """Move the chain table's links into the events' rows; how many (None: nothing to do).

    Refuses, changing nothing, when the chain table holds links of events that are not
    stored: that is evidence of tampering, which dropping the table would erase.
    """
    events = db.table(events_table_name)
    chain = events + "_chain"
    # SQLite stores event ids as bare hex, the chain table the hyphenated text.
    key = "replace(c.originator_id, '-', '')" if db.kind == "sqlite" else "c.originator_id"
    same_event = f"e.originator_id = {key} AND e.originator_version = c.originator_version"
    with db.transaction() as cur:
        if not needs_migration(db, cur, events):
            return None
        if db.kind == "postgresql":
            cur.execute(f"LOCK TABLE {events} IN ACCESS EXCLUSIVE MODE")
        for column in LINK_COLUMNS:
            cur.execute(f"ALTER TABLE {events} ADD COLUMN {column} TEXT")
        if not db.table_exists(cur, chain):
            return 0
        cur.execute(
            f"SELECT count(*) FROM {chain} c"
            f" WHERE NOT EXISTS (SELECT 1 FROM {events} e WHERE {same_event})"
        )
        orphans = int(cur.fetchone()[0])
        if orphans:
            raise ChainBroken(
                f"{chain} holds links of events that are not stored ({orphans}): the store"
                " was altered. Nothing was migrated; examine it with the release that made"
                " it (`coop-ledger verify`) first"
            )
        cur.execute(f"SELECT count(*) FROM {chain}")
        moved = int(cur.fetchone()[0])
        cur.execute(
            f"UPDATE {events} AS e SET prev_hash = c.prev_hash, hash = c.hash"
            f" FROM {chain} AS c WHERE {same_event}"
        )
        cur.execute(f"DROP TABLE {chain}")
    return moved
