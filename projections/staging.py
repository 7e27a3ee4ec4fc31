"""A rebuild's staging: the handlers fill a scratch SQLite file, then each table is COPYed.

On PostgreSQL every handler statement costs ~25 us even pipelined; on a local SQLite
file the same statement costs a few. The projections' SQL already runs on both stores,
so a rebuild folds the whole history into staged tables there (their handlers' reads
see the staged rows) and bulk-loads each staged table into its fresh PostgreSQL table
with ``COPY ... FROM STDIN``.

The staging is a file, not ``:memory:``, with a bounded page cache: memory stays flat
however long the history is. It has no journal and is never synced, because it is
thrown away whole, never reused, if anything fails.

COPY's text format lets PostgreSQL parse each value as its column's type: SQLite's
integers for a BOOLEAN column arrive as 1 and 0, which PostgreSQL reads as true and
false, and ISO text parses as TIMESTAMPTZ, so no projection needs a conversion of its
own. The fresh tables keep their keys while they load: PostgreSQL maintains them on its
own core while this process is still sending rows, which measured no slower than dropping
them and building them after the COPY (the build then waits for the last row). The
folded build, where the server's CPU is the scarcer, builds them after
(``projections.fresh_keys``).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from ledger.storage import Database
from projections.framework import Projection

# Bounded so RSS does not grow with the history; the OS keeps the rest of the file cached.
CACHE_KIB = 8 * 1024

Targets = Sequence[tuple[Projection, Mapping[str, str]]]


def staged_names(projection: Projection) -> dict[str, str]:
    """Table names in the staging file: the logical names (no schema, no suffix)."""
    return {t: t for t in projection.tables}


@contextmanager
def staging(projections: Sequence[Projection]) -> Iterator[sqlite3.Connection]:
    """A scratch SQLite file holding empty staged tables of ``projections``, deleted after."""
    fd, path = tempfile.mkstemp(prefix="coop-ledger-staging-", suffix=".sqlite3")
    os.close(fd)
    # Room for every projection's statements: sqlite3 re-prepares what falls out of its cache.
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=1024)
    try:
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            f"cache_size=-{CACHE_KIB}",
            "locking_mode=EXCLUSIVE",
        ):
            conn.execute(f"PRAGMA {pragma}")
        cur = conn.cursor()
        for projection in projections:
            projection.create_tables(cur, staged_names(projection))
        yield conn
    finally:
        conn.close()
        with suppress(FileNotFoundError):
            os.unlink(path)


def load(db: Database, staged: sqlite3.Connection, targets: Targets) -> None:
    """Replace the fresh tables of ``targets`` with the staged rows, in one transaction."""
    with psycopg.connect(db.config.conninfo) as conn, conn.transaction(), conn.cursor() as cur:
        for projection, fresh in targets:
            projection.drop(cur, fresh)
            projection.create_tables(cur, fresh)
            for logical, table in fresh.items():
                _copy(cur, staged, logical, table)


def _copy(cur: psycopg.Cursor[Any], staged: sqlite3.Connection, logical: str, table: str) -> None:
    columns = ", ".join(str(row[1]) for row in staged.execute(f"PRAGMA table_info({logical})"))
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in staged.execute(f"SELECT {columns} FROM {logical}"):
            copy.write_row(row)
