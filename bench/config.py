"""Run sizes and where the bench writes: a throwaway PostgreSQL database and a temp dir."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

Figure = dict[str, Any]


def figure(value: float, unit: str, baseline: float | None = None, **extras: Any) -> Figure:
    """``{"value", "unit", "baseline"?, "ratio"?, ...extras}``; ratio = value / baseline."""
    out: Figure = {"value": value, "unit": unit}
    if baseline is not None:
        out["baseline"] = baseline
        out["ratio"] = value / baseline if baseline else 0.0
    out.update(extras)
    return out


@dataclass(frozen=True)
class Sizes:
    """How long and how much each measurement runs."""

    mode: str
    seconds: float  # one throughput measurement
    warmup: float
    load_history: int  # events on the big cooperative of aggregate_load_growth
    load_repeats: int
    rebuild_sizes: tuple[int, ...]  # the largest is the figure's; RSS growth from the smallest
    lag_samples: int
    http_seconds: float
    rounds: int = 1  # interleaved rounds of the write paths; each figure takes the best

    @classmethod
    def named(cls, mode: str) -> Sizes:
        if mode == "quick":
            return cls("quick", 1.0, 0.2, 1_000, 5, (2_000, 4_000), 30, 2.0)
        if mode == "tiny":  # the test suite: seconds, shapes only
            return cls("tiny", 0.4, 0.05, 200, 2, (300, 600), 5, 0.5)
        if mode == "full":
            return cls("full", 5.0, 1.0, 10_000, 20, (100_000, 1_000_000), 200, 10.0, 2)
        return cls("default", 5.0, 1.0, 10_000, 20, (25_000, 100_000), 200, 8.0, 2)


def with_schema(url: str, dbname: str | None = None, schema: str | None = None) -> str:
    """``url`` with another database name and/or a ``schema`` query parameter."""
    parts = urlsplit(url)
    path = parts.path if dbname is None else "/" + quote(dbname, safe="")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    if schema is not None:
        query.append(("schema", schema))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def plain(url: str) -> str:
    """A URL psycopg accepts: without our ``schema`` parameter."""
    return with_schema(url)


@dataclass
class Workspace:
    """A throwaway PostgreSQL database (or COOP_LEDGER_DATABASE_URL's) and a temp dir.

    Each figure writes in its own schema, so its counts are its own. Everything the
    bench made is dropped on exit: the database it created, or the schemas it made
    in a database it was given.
    """

    server_url: str = field(
        default_factory=lambda: os.environ.get("COOP_LEDGER_TEST_DATABASE_URL") or SERVER_URL
    )
    given_url: str | None = field(
        default_factory=lambda: os.environ.get("COOP_LEDGER_DATABASE_URL") or None
    )
    database_url: str = ""
    prefix: str = field(default_factory=lambda: f"b{secrets.token_hex(3)}_")
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="coop-bench-")))
    created_db: str | None = None
    schemas: list[str] = field(default_factory=list)

    def __enter__(self) -> Workspace:
        if self.given_url and self.given_url.startswith(("postgresql:", "postgres:")):
            self.database_url = plain(self.given_url)
        else:
            name = f"coop_bench_{os.getpid()}_{secrets.token_hex(3)}"
            with psycopg.connect(plain(self.server_url), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            self.created_db = name
            self.database_url = with_schema(self.server_url, dbname=name)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.created_db is not None:
            with psycopg.connect(plain(self.server_url), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.created_db)
                    )
                )
            self.created_db = None
        elif self.schemas:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                for schema in self.schemas:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )
        self.schemas.clear()

    def schema(self, name: str) -> str:
        """Create a fresh schema for one figure; its qualified name."""
        schema = self.prefix + name
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        self.schemas.append(schema)
        return schema

    def pg_url(self, name: str) -> str:
        """A ledger URL (``?schema=``) in a fresh schema of its own."""
        return with_schema(self.database_url, schema=self.schema(name))

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{(self.tmp / f'{name}.sqlite3').resolve()}"

    def server_version(self) -> str:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
        if row is None or fsync is None or sync is None:
            return "?"
        return f"{row[0]} (fsync={fsync[0]}, synchronous_commit={sync[0]})"
