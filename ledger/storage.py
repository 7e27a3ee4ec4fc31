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
from psycopg_pool import ConnectionPool

DEFAULT_URL = "sqlite:///var/ledger.sqlite3"
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


class Database:
    """Transactions on our own tables in the ledger's database."""

    def __init__(self, config: StoreConfig, *, pool_size: int = 4) -> None:
        self.config = config
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._local = threading.local()
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
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
