"""Where the ledger lives: one URL turned into the library's settings and a small SQL gateway.

``COOP_LEDGER_DATABASE_URL`` is either ``sqlite:///path/to/file.sqlite3`` (the
default, ``./var/ledger.sqlite3``, created on first use) or
``postgresql://user[:password]@host[:port]/dbname[?schema=name]``. The events,
the people registry and the projections share that one database, so a view row
and its tracking position commit in one transaction.

``Database`` is the gateway our own tables use (the library keeps its own
connections): SQL is written once with ``?`` placeholders and runs on both stores.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

DEFAULT_URL = "sqlite:///var/ledger.sqlite3"
# The longest a writer waits in a cooperative's queue (see Database.queue) before racing.
QUEUE_WAIT_S = 2.0
URL_VARIABLE = "COOP_LEDGER_DATABASE_URL"


class StoreConfigError(ValueError):
    """The database URL cannot be used."""


@dataclass(frozen=True)
class StoreConfig:
    url: str
    kind: Literal["sqlite", "postgresql"]
    sqlite_path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""

    @classmethod
    def from_env(cls) -> StoreConfig:
        return cls.from_url(os.environ.get(URL_VARIABLE) or DEFAULT_URL)

    @classmethod
    def from_url(cls, url: str) -> StoreConfig:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
            path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
            if not path:
                raise StoreConfigError(f"{URL_VARIABLE}: a sqlite URL names a file: {url!r}")
            return cls(url=url, kind="sqlite", sqlite_path=path)
        if parts.scheme in ("postgresql", "postgres"):
            query = parse_qs(parts.query)
            schema = query.get("schema", [""])[0]
            if schema and not schema.replace("_", "").isalnum():
                raise StoreConfigError(f"{URL_VARIABLE}: schema must be a plain identifier")
            return cls(
                url=url,
                kind="postgresql",
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=(parts.path or "/").lstrip("/") or "postgres",
                schema=schema,
            )
        raise StoreConfigError(
            f"{URL_VARIABLE} must start with sqlite:/// or postgresql://, got {url!r}"
        )

    @property
    def conninfo(self) -> str:
        params = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "dbname": self.dbname,
            "password": self.password,
        }
        return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v})

    def table(self, name: str) -> str:
        """A table name as our SQL must spell it (schema-qualified on PostgreSQL)."""
        return f"{self.schema}.{name}" if self.schema else name

    def library_env(self) -> dict[str, str]:
        """The ``eventsourcing`` settings for this store."""
        # Cached aggregates are not fast-forwarded (a SELECT per command): a stale copy
        # fails its save on the version conflict, and the Ledger reloads it and retries.
        cache = {
            "AGGREGATE_CACHE_MAXSIZE": os.environ.get("COOP_LEDGER_AGGREGATE_CACHE", "1000"),
            "AGGREGATE_CACHE_FASTFORWARD": "n",
            # No deepcopy per command: the Ledger locks a cooperative while a command uses it.
            "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        }
        return cache | self._store_env()

    def _store_env(self) -> dict[str, str]:
        if self.kind == "sqlite":
            Path(self.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "APPLICATION_RECORDER_TOPIC": "ledger.sqlite_recorder:ChainedSQLiteRecorder",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "CREATE_TABLE": "y",
            }
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "ledger.pg_recorder:LockFreePostgresRecorder",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": os.environ.get("COOP_LEDGER_PG_POOL_SIZE", "5"),
            "POSTGRES_MAX_OVERFLOW": os.environ.get("COOP_LEDGER_PG_MAX_OVERFLOW", "10"),
            # No ping before each save (a round trip per command): the recorder replaces a
            # dead connection itself, and the library retries reads.
            "POSTGRES_PRE_PING": "n",
            # Several processes creating the tables at once can fail; `serve` creates them
            # once and starts its workers with COOP_LEDGER_CREATE_TABLES=n.
            "CREATE_TABLE": os.environ.get("COOP_LEDGER_CREATE_TABLES", "y"),
        }
        if self.schema:
            env["POSTGRES_SCHEMA"] = self.schema
        return env


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class _PgCursor:
    """A psycopg cursor that takes the ``?`` placeholders our SQL is written with."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        # A literal % (as in LIKE 'x%') must reach psycopg doubled; our SQL never quotes a ?.
        return self._cursor.execute(sql.replace("%", "%%").replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class Queue:
    """A writer's place in the line on one key; it waits only when asked to (``wait``)."""

    def __init__(self, lease: psycopg.Connection[Any] | None, key: int) -> None:
        self.lease, self.key, self.locked = lease, key, False

    def wait(
        self, sql: str, params: Sequence[Any], *, also: int | None = None
    ) -> list[dict[str, Any]] | None:
        """Wait for this writer's turn, then run the query ``sql`` at once; its rows.

        All go in one round trip (a pipeline): the query starts when the lock is granted,
        so it sees every write of the writers ahead. ``also`` is one more key to hold
        (a priority over writers that do not queue). None when there is no turn to wait
        for (no lock connection, the wait ran out, the connection failed): the caller
        reads for itself and races.
        """
        if self.lease is None:
            return None
        try:
            with self.lease.pipeline():
                for key in (self.key, also):
                    if key is not None:
                        self.lease.execute("SELECT pg_advisory_lock(%s)", (key,))
                cur = self.lease.cursor(row_factory=dict_row)
                cur.execute(sql, params, binary=True)
        except psycopg.Error:
            with contextlib.suppress(psycopg.Error):  # in case the lock came and the query failed
                self.lease.execute("SELECT pg_advisory_unlock_all()")
            return None
        self.locked = True
        return cur.fetchall()

    def release(self) -> None:
        """Let the next writer in now (also done when the place is given up)."""
        if self.lease is not None and self.locked:
            self.locked = False
            # Never raises: the caller's events may be stored already. A connection that
            # fails here is dead, and its session's locks died with it.
            with contextlib.suppress(psycopg.Error):
                self.lease.execute("SELECT pg_advisory_unlock_all()")


class Database:
    """Transactions on our own tables in the ledger's database."""

    def __init__(self, config: StoreConfig, *, pool_size: int = 4) -> None:
        self.config = config
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._local = threading.local()
        self._locks: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._lock_pool_guard = threading.Lock()
        if config.kind == "postgresql":
            self._pool = ConnectionPool(
                config.conninfo,
                min_size=1,
                max_size=pool_size,
                open=True,
                # A transaction left open holds every projection back (the readers wait
                # below the cluster's xmin): a crashed client's must not stay open for long.
                kwargs={
                    "autocommit": False,
                    "options": "-c idle_in_transaction_session_timeout=60000",
                },
                check=ConnectionPool.check_connection,
                timeout=3,
                # Back within seconds of the database, not after psycopg's doubling waits.
                reconnect_timeout=2,
            )
        else:
            Path(config.sqlite_path).parent.mkdir(parents=True, exist_ok=True)

    @property
    def kind(self) -> str:
        return self.config.kind

    def table(self, name: str) -> str:
        return self.config.table(name)

    def _sqlite(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.config.sqlite_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # Erased personal data must not linger in free pages of the file.
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, *, pipeline: bool = False) -> Iterator[Cursor]:
        """One transaction: committed when the block ends, rolled back when it raises.

        ``pipeline`` sends PostgreSQL statements without waiting for each result (a batch
        of projection writes costs one round trip, not one per row).
        """
        with self._transaction("BEGIN IMMEDIATE", pipeline) as cursor:
            yield cursor

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """A transaction for reading only: on SQLite it never waits for a writer."""
        with self._transaction("BEGIN") as cursor:
            yield cursor

    @contextmanager
    def _transaction(self, begin: str, pipeline: bool = False) -> Iterator[Cursor]:
        if self._pool is not None:
            with (
                self._pool.connection() as pg,
                pg.pipeline() if pipeline else nullcontext(),
                pg.transaction(),
                pg.cursor() as cursor,
            ):
                yield _PgCursor(cursor)
            return
        conn = self._sqlite()
        # IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading.
        conn.execute(begin)
        try:
            yield conn.cursor()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def queue(self, key: int) -> Iterator[Queue]:
        """A place in the line of writers on ``key`` (any 64-bit integer): see :class:`Queue`.

        Writers that lost a race on one aggregate line up on a PostgreSQL advisory lock
        instead of racing again; the lock is the session's, so a holder that dies releases
        it. It only saves wasted work: when no lock connection is free or the wait runs
        long, the caller goes on without it and the version check still decides. SQLite
        already lets one writer in at a time: nothing to do there.
        """
        lease = None
        if self._pool is not None:
            with contextlib.suppress(psycopg.Error):
                lease = self._lock_pool().getconn(timeout=QUEUE_WAIT_S)
        place = Queue(lease, key)
        try:
            yield place
        finally:
            if lease is not None:
                try:
                    place.release()
                finally:
                    self._lock_pool().putconn(lease)

    def _lock_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        # Its own connections: a writer waiting in the queue must never hold one the
        # writer it waits for needs (the chain head, the people registry).
        with self._lock_pool_guard:
            if self._locks is None:
                self._locks = ConnectionPool(
                    self.config.conninfo,
                    min_size=0,
                    max_size=16,
                    open=True,
                    kwargs={
                        "autocommit": True,
                        # Nothing prepared: a pipeline that fails (a lock wait that ran out)
                        # drops what it prepared, and psycopg would go on using the name.
                        "prepare_threshold": None,
                        "options": f"-c lock_timeout={int(QUEUE_WAIT_S * 1000)}",
                    },
                    timeout=QUEUE_WAIT_S,
                    reconnect_timeout=2,
                )
            return self._locks

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the file and empty it (waits for readers)."""
        conn = self._sqlite()
        for _ in range(50):
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return
            time.sleep(0.1)

    def table_exists(self, cur: Cursor, qualified_name: str) -> bool:
        if self.kind == "postgresql":
            cur.execute("SELECT to_regclass(?) IS NOT NULL", (qualified_name,))
        else:
            cur.execute(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (qualified_name,),
            )
        return bool(cur.fetchone()[0])

    def columns(self, cur: Cursor, qualified_name: str) -> set[str]:
        """The column names of a table (empty if there is no such table)."""
        if self.kind == "postgresql":
            schema, _, name = qualified_name.rpartition(".")
            cur.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = ?",
                (schema or "public", name),
            )
        else:
            cur.execute("SELECT name FROM pragma_table_info(?)", (qualified_name,))
        return {str(row[0]) for row in cur.fetchall()}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._locks is not None:
            self._locks.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
