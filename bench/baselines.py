"""Raw baselines: what the hardware and the drivers allow, measured in the same run.

- PostgreSQL: a single-row INSERT of an event-sized row (about 300 bytes of state) in
  one round trip, autocommit, into a table shaped like the library's events table; one
  client, and 16 client processes (group commit).
- PostgreSQL keyset read of the ledger's own events table, with and without a SHA-256
  of every row's state.
- SQLite: a single-row INSERT and COMMIT, WAL, ``synchronous=FULL``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from bench.config import plain
from bench.procs import Ready, run_parallel, throughput, timed_loop

STATE_BYTES = 300
PAGE = 5000


def events_table(schema: str, name: str = "raw_events") -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def create_raw_table(url: str, schema: str) -> None:
    """A table shaped like the library's events table (primary key, notification index)."""
    table = events_table(schema)
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (originator_id uuid NOT NULL,"
                " originator_version bigint NOT NULL, topic text, state bytea,"
                " notification_id bigserial,"
                " PRIMARY KEY (originator_id, originator_version))"
            ).format(table)
        )
        conn.execute(
            sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (notification_id)").format(
                sql.Identifier(f"{schema}_raw_events_nid"), table
            )
        )


@dataclass(frozen=True)
class InsertJob:
    url: str
    schema: str
    seconds: float
    warmup: float


def _pg_insert_worker(ready: Ready, job: InsertJob) -> tuple[int, float]:
    statement = sql.SQL(
        "INSERT INTO {} (originator_id, originator_version, topic, state)"
        " VALUES (%s, %s, %s, %s) RETURNING notification_id"
    ).format(events_table(job.schema))
    originator, state = uuid4(), os.urandom(STATE_BYTES)
    version = 0
    with psycopg.connect(plain(job.url), autocommit=True) as conn:

        def insert() -> int:
            nonlocal version
            version += 1
            conn.execute(statement, (originator, version, "bench:Event", state)).fetchone()
            return 1

        timed_loop(insert, job.warmup)
        ready()
        return timed_loop(insert, job.seconds)


def pg_insert_rate(url: str, schema: str, clients: int, seconds: float, warmup: float) -> float:
    """Rows/s of raw single-row autocommit INSERTs from ``clients`` processes."""
    job = InsertJob(url, schema, seconds, warmup)
    return throughput(run_parallel(_pg_insert_worker, [job] * clients))


def _sqlite_insert_worker(ready: Ready, job: InsertJob) -> tuple[int, float]:
    conn = sqlite3.connect(job.url, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS raw_events (originator_id TEXT, originator_version INTEGER,"
        " topic TEXT, state BLOB, notification_id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " UNIQUE (originator_id, originator_version))"
    )
    originator, state = str(uuid4()), os.urandom(STATE_BYTES)
    version = 0

    def insert() -> int:
        nonlocal version
        version += 1
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO raw_events (originator_id, originator_version, topic, state)"
            " VALUES (?, ?, ?, ?)",
            (originator, version, "bench:Event", state),
        )
        conn.execute("COMMIT")
        return 1

    timed_loop(insert, job.warmup)
    ready()
    try:
        return timed_loop(insert, job.seconds)
    finally:
        conn.close()


def sqlite_insert_rate(path: str, seconds: float, warmup: float) -> float:
    """Rows/s of raw single-row INSERT + COMMIT into a SQLite file (WAL, synchronous=FULL)."""
    return throughput(run_parallel(_sqlite_insert_worker, [InsertJob(path, "", seconds, warmup)]))


def keyset_read(url: str, table: str, *, digest: bool = False) -> tuple[int, float]:
    """Read every row of ``table`` in pages by notification id; (rows, seconds).

    ``digest`` also takes the SHA-256 of each row's state, the floor of a chain check.
    """
    query = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
        " WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
    ).format(sql.SQL(table))
    rows, position = 0, 0
    with psycopg.connect(plain(url), autocommit=True) as conn:
        started = time.perf_counter()  # connected: a pool would hold the connection
        while True:
            page: list[Any] = conn.execute(query, (position, PAGE)).fetchall()
            if not page:
                break
            if digest:
                for row in page:
                    hashlib.sha256(row[4]).hexdigest()
            rows += len(page)
            position = page[-1][0]
    return rows, time.perf_counter() - started
