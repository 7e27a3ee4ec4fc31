"""Storage fixtures shared by all tests.

Every test that takes ``database_url`` runs twice, against SQLite and against
PostgreSQL (ids ``[sqlite]`` and ``[postgresql]``). PostgreSQL tests are never
skipped: if the server from ``COOP_LEDGER_TEST_DATABASE_URL`` does not answer,
they fail. ``scripts/test`` makes sure a server is available.

Isolation: one fresh database per test run (per process, so pytest-xdist workers
do not collide), and one fresh schema per test inside it. The application reads
the schema from the ``schema`` query parameter of the URL.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_SECONDS = 3


def server_url() -> str:
    """URL of the PostgreSQL server (maintenance database) used for tests."""
    return os.environ.get("COOP_LEDGER_TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, hostport = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def build_postgres_url(base_url: str, dbname: str, schema: str | None = None) -> str:
    """``postgresql://user[:password]@host:port/<dbname>[?schema=<schema>]``.

    Credentials, host and port come from ``base_url``; its other query
    parameters (e.g. ``sslmode``) are kept, any ``schema`` parameter is replaced.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port or 5432}"
    if parts.username:
        userinfo = quote(unquote(parts.username), safe="")
        if parts.password is not None:
            userinfo += ":" + quote(unquote(parts.password), safe="")
        netloc = f"{userinfo}@{netloc}"
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "schema"]
    if schema is not None:
        query.append(("schema", schema))
    return urlunsplit(("postgresql", netloc, "/" + quote(dbname, safe=""), urlencode(query), ""))


def database_name(url: str) -> str:
    """The database name in a PostgreSQL URL."""
    return unquote(urlsplit(url).path.lstrip("/"))


def build_sqlite_url(path: Path) -> str:
    """``sqlite:///<absolute path>``."""
    return f"sqlite:///{path.resolve()}"


def connect(url: str) -> psycopg.Connection[TupleRow]:
    """Autocommit connection; fails the test (never skips) if nothing answers."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.OperationalError as exc:
        error = " ".join(str(exc).split())
    pytest.fail(  # outside the except block: no chained traceback noise
        f"PostgreSQL at {redact_url(url)} is not reachable: {error}\n"
        "PostgreSQL tests are never skipped. Run the suite via scripts/test (it starts a "
        "throwaway server when PostgreSQL is installed) or set "
        "COOP_LEDGER_TEST_DATABASE_URL to a server whose user may CREATE DATABASE.",
        pytrace=False,
    )


def drop_schema(admin_url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it; warn instead of hanging or failing."""
    # A connection left inside a transaction by the code under test would make
    # DROP SCHEMA wait forever, so give up after a while: the whole database is
    # dropped WITH (FORCE) at the end of the run anyway.
    try:
        with connect(admin_url) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.Error as exc:
        warnings.warn(f"could not drop test schema {schema}: {exc}", stacklevel=1)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A fresh database for this test run, dropped at the end; its URL (no schema)."""
    base = server_url()
    dbname = f"coop_ledger_test_{os.getpid()}_{secrets.token_hex(4)}"
    with connect(base) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield build_postgres_url(base, dbname)
    finally:
        with connect(base) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh schema in the per-run database, dropped after the test; URL with ``?schema=``."""
    schema = f"t_{secrets.token_hex(8)}"
    with connect(postgres_admin_url) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield build_postgres_url(postgres_admin_url, database_name(postgres_admin_url), schema)
    finally:
        drop_schema(postgres_admin_url, schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file in the test's temporary directory."""
    return build_sqlite_url(tmp_path / "ledger.sqlite3")


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once per store: ``test_x[sqlite]``, ``test_x[postgresql]``."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("postgres_url")
    return url
