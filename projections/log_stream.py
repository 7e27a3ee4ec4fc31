"""The whole event log as one stream, for a rebuild on PostgreSQL.

``read_log`` pages by (transaction id, notification id), one query a page: ~130,000
rows/s here, half of what one server-side cursor over the same rows gives. A rebuild
reads everything from the first event, so it declares one cursor, in binary (0.5 us of
client CPU a row, against 1.9 for a binary ``COPY ... TO STDOUT``, whose rows psycopg
parses in Python): one statement, so one snapshot, with the same order and the same
bound as ``read_log`` (only transactions below the snapshot's ``xmin``), so the
rebuild's last position is a position ``read_log`` carries on from. The cooperative's
id arrives as text, the form the projections write.

Before the cursor, the same transaction (REPEATABLE READ: one snapshot for both) reads
each cooperative's last version under the same bound, so the folds can let a
cooperative go once its last event has passed (``projections.fold_pass``).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any, cast

import psycopg

from ledger.application import Ledger
from ledger.pg_recorder import LockFreePostgresRecorder

# transaction id, notification id, cooperative id (text), version, topic, state
LogRow = tuple[int, int, str, int, str, bytes]


def events_table(ledger: Ledger) -> str:
    recorder: Any = ledger.recorder
    return f"{recorder.datastore.schema}.{recorder.events_table_name}"


def log_query(ledger: Ledger, where: str = "") -> str:
    """The log's rows in ``read_log``'s order and bound, ``where`` narrowing them further."""
    return cast(LockFreePostgresRecorder, ledger.recorder).stream_statement(where)


def last_versions_query(ledger: Ledger) -> str:
    """Each cooperative's id (text), event count and last version, under the log's bound."""
    return (
        "SELECT originator_id::text, count(*), max(originator_version)"
        f" FROM {events_table(ledger)}"
        " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) GROUP BY 1"
    )


def stream_rows(
    conn: psycopg.Connection[Any], query: str, params: Sequence[Any], batch_size: int
) -> Iterator[list[LogRow]]:
    """The rows of ``query`` through a cursor in ``conn``'s open transaction, in batches."""
    with conn.cursor("coop_ledger_rebuild", binary=True) as cur:
        cur.itersize = batch_size
        cur.execute(query, params)
        while batch := cur.fetchmany(batch_size):
            yield batch


def stream_log(
    ledger: Ledger, batch_size: int, last: MutableMapping[str, int]
) -> Iterator[list[LogRow]]:
    """Every event the log can pass now, in log order, ``batch_size`` rows at a time;
    ``last`` is filled with each cooperative's last version among them before the first
    batch comes."""
    # A named cursor lives in a transaction: it reads only, and closing ends it.
    with psycopg.connect(ledger.db.config.conninfo) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.cursor() as cur:
            cur.execute(last_versions_query(ledger))
            last.update((coop, int(version)) for coop, _, version in cur.fetchall())
        yield from stream_rows(conn, log_query(ledger), (), batch_size)
