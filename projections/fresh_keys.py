"""A folded rebuild's fresh tables load without their keys; the keys are built after.

COPY into a table with a primary key inserts every row into its index as it arrives:
~60 % of COPY's server CPU in a rebuild. One sort of the loaded table builds the same
index for a fraction of that. So the fresh tables are made by their projection's DDL as
it is (one source of what a table is), their keys and indexes are read back from the
catalog and dropped in the same transaction (``strip``), and once every row is in they
are built again under the names they had (``restore``), which leaves the tables exactly
as the DDL makes them.

A duplicate row, which the key would have refused during the COPY, now fails its
index's build: the build raises, the builder drops the fresh tables, and the live
tables were never touched.

The indexes are built two at a time on connections of their own (``LINES``, one a
core), the largest tables first. Each build is its own short transaction, for the same
reason each COPY is (``projections.copy_sink``): an xid held across all of them would
hold every live reader of the log back until the last one ended. ``CREATE UNIQUE
INDEX`` takes a lock that lets the other line build another index of the same table;
the constraints then take their indexes over in one transaction (``USING INDEX``: no
scan, the columns are NOT NULL already).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ledger.storage import Database

LINES = 2  # index builds at once: the machine's two cores
# Per session, for the builds only: a sort that fits in memory does not spill to disk;
# the two lines build their own indexes, so PostgreSQL's parallel workers would only
# compete with them for the same cores; and the commits do not wait for the disk, as
# the COPYs' do not (the switch's commit flushes the log up to itself, theirs included).
SESSION = (
    "SET maintenance_work_mem = '256MB'",
    "SET max_parallel_maintenance_workers = 0",
    "SET synchronous_commit = off",
)


@dataclass(frozen=True)
class Key:
    """One index of a fresh table, as the DDL made it, and the constraint it backs (if any)."""

    table: str
    index: str  # unqualified: an index lives in its table's schema
    definition: str  # pg_get_indexdef: CREATE [UNIQUE] INDEX ... ON schema.table ...
    constraint: str  # "" for an index alone; else "PRIMARY KEY" or "UNIQUE"


# Each table by the name it was given (schema-qualified or not), whatever the search path.
_KEYS = (
    "SELECT t.name, c.relname, pg_get_indexdef(i.indexrelid),"
    " CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' ELSE '' END"
    " FROM unnest(%s::text[]) AS t(name) JOIN pg_index i ON i.indrelid = t.name::regclass"
    " JOIN pg_class c ON c.oid = i.indexrelid"
    " LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid"
    # An exclusion or deferrable constraint keeps its index: USING INDEX would lose it.
    " WHERE k.contype IS NULL OR (k.contype IN ('p', 'u') AND NOT k.condeferrable)"
    " ORDER BY 1, 2"
)


def strip(cur: psycopg.Cursor[Any], tables: Iterable[str]) -> list[Key]:
    """Drop the keys and indexes of ``tables`` (in ``cur``'s transaction); what they were."""
    cur.execute(_KEYS, (list(tables),))
    keys = [Key(*row) for row in cur.fetchall()]
    for key in keys:
        if key.constraint:
            cur.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.SQL(key.table), sql.Identifier(key.index)
                )
            )
        else:
            schema, dot, _ = key.table.rpartition(".")
            cur.execute(
                sql.SQL("DROP INDEX {}{}").format(sql.SQL(schema + dot), sql.Identifier(key.index))
            )
    return keys


def restore(db: Database, keys: Sequence[Key]) -> None:
    """Build ``keys`` again over the loaded tables; a duplicate row raises UniqueViolation."""
    if not keys:
        return
    with psycopg.connect(db.config.conninfo, autocommit=True) as conn:
        sizes: dict[str, int] = dict(
            conn.execute(
                "SELECT t, pg_relation_size(t::regclass) FROM unnest(%s::text[]) AS t",
                ([k.table for k in keys],),
            ).fetchall()
        )
        _build_indexes(db, sorted(keys, key=lambda k: -int(sizes[k.table])))
        with conn.transaction():
            for key in keys:
                if key.constraint:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} USING INDEX {}").format(
                            sql.SQL(key.table),
                            sql.Identifier(key.index),
                            sql.SQL(key.constraint),
                            sql.Identifier(key.index),
                        )
                    )


def _build_indexes(db: Database, keys: list[Key]) -> None:
    """Every index of ``keys``, in that order, on ``LINES`` connections; the first error raised."""
    lock = threading.Lock()
    pending = list(reversed(keys))  # popped from the end: the largest first
    errors: list[BaseException] = []

    def line() -> None:
        try:
            with psycopg.connect(db.config.conninfo, autocommit=True) as conn:
                for statement in SESSION:
                    conn.execute(statement)
                while True:
                    with lock:
                        if errors or not pending:
                            return
                        key = pending.pop()
                    conn.execute(key.definition)
        except BaseException as error:
            with lock:
                errors.append(error)

    threads = [
        threading.Thread(target=line, name=f"rebuild-keys-{n}", daemon=True)
        for n in range(min(LINES, len(keys)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
