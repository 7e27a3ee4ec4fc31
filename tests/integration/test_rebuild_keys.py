"""A folded rebuild loads its fresh tables without keys and builds the keys after the load.

The keys must come back exactly as the projections' DDL makes them, a duplicate row must
still fail the rebuild before anything is switched, and the live tables must keep their
keys through any number of rebuilds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ledger import Ledger, StoreConfig
from ledger.storage import Database
from projections import rebuild as projections_rebuild
from projections.copy_sink import CHUNK, CopySink
from projections.fresh_keys import restore, strip
from projections.rebuild import build_fresh, rebuild
from projections.registry import all_projections
from projections.runner import ProjectionRunner
from tests.integration.projection_support import rows
from tests.integration.support import Clock, World
from tests.integration.test_projection_rebuild_staged import all_readable, history


@pytest.fixture
def pg_world(postgres_url: str) -> Iterator[World]:
    clock = Clock()
    with Ledger(StoreConfig.from_url(postgres_url), clock=clock, snapshot_interval=10) as ledger:
        yield World.create(ledger, clock)


def indexes(db: Database, table: str) -> list[tuple[str, str]]:
    """Each index of ``table``: what it is (its definition, names left out) and what it backs."""
    with db.read() as cur:
        cur.execute(
            "SELECT pg_get_indexdef(i.indexrelid), coalesce(k.contype::text, '')"
            " FROM pg_index i LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid"
            " WHERE i.indrelid = to_regclass(?)",
            (table,),
        )
        found = cur.fetchall()
    plain = table.rpartition(".")[2]
    return sorted(
        (definition.split(" ON ", 1)[1].replace(plain, "T"), kind) for definition, kind in found
    )


def every_table(db: Database, suffix: str) -> list[str]:
    return [t for p in all_projections() for t in p.table_names(db, suffix).values()]


def test_a_folded_build_leaves_every_fresh_table_with_the_keys_and_indexes_its_ddl_makes(
    pg_world: World,
) -> None:
    history(pg_world)
    ledger, db = pg_world.ledger, pg_world.ledger.db
    all_readable(ledger)
    build_fresh(ledger, db, all_projections(), suffix="__direct", staged=False)
    for workers in (2, 1):
        build_fresh(ledger, db, all_projections(), suffix="__folded", workers=workers)
        for made, expected in zip(
            every_table(db, "__folded"), every_table(db, "__direct"), strict=True
        ):
            assert indexes(db, made), f"{made} has no key"
            assert indexes(db, made) == indexes(db, expected), f"{made} is keyed differently"


def test_keys_stripped_from_a_table_come_back_under_their_names_and_refuse_a_duplicate(
    pg_world: World,
) -> None:
    db = pg_world.ledger.db
    table = db.table("keyed")
    with psycopg.connect(db.config.conninfo) as conn, conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {table} (a TEXT NOT NULL, b BIGINT NOT NULL, c TEXT,"
            " PRIMARY KEY (a, b), UNIQUE (c, a))"
        )
        cur.execute(f"CREATE INDEX keyed_by_b ON {table} (b DESC)")
        before = names(cur, table)
        keys = strip(cur, [table])
        assert names(cur, table) == []
        cur.execute(f"INSERT INTO {table} VALUES ('x', 1, 'p'), ('x', 2, 'q')")
    restore(db, keys)
    with psycopg.connect(db.config.conninfo) as conn, conn.cursor() as cur:
        assert names(cur, table) == before
        with pytest.raises(psycopg.errors.UniqueViolation):
            cur.execute(f"INSERT INTO {table} VALUES ('x', 1, 'r')")
        conn.rollback()
        keys = strip(cur, [table])
        cur.execute(f"INSERT INTO {table} VALUES ('x', 1, 'r')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        restore(db, keys)


def names(cur: psycopg.Cursor[Any], table: str) -> list[tuple[str, str]]:
    cur.execute(
        "SELECT c.relname, coalesce(k.contype::text, '') FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass ORDER BY 1",
        (table,),
    )
    return [(str(n), str(k)) for n, k in cur.fetchall()]


@pytest.mark.parametrize("workers", [2, 1])
def test_a_duplicate_row_fails_the_rebuild_and_leaves_the_live_tables_as_they_were(
    pg_world: World, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    history(pg_world)
    ledger, db, projections = pg_world.ledger, pg_world.ledger.db, all_projections()
    ProjectionRunner(ledger, projections).catch_up()
    live = every_table(db, "")
    before = {table: (rows(db, table), indexes(db, table)) for table in live}
    ship, doubled = CopySink.ship, set()

    def ship_twice(self: CopySink, chunk: int = CHUNK) -> None:
        audit = self.buffers.get("governance_audit")
        if audit and id(self) not in doubled:
            audit.append(audit[0])  # in whichever process folds it: one row sent twice
            doubled.add(id(self))
        ship(self, chunk)

    build = projections_rebuild.build_fresh

    def build_in(*args: Any, **kwargs: Any) -> Any:
        return build(*args, **kwargs, workers=workers)

    monkeypatch.setattr(CopySink, "ship", ship_twice)
    monkeypatch.setattr(projections_rebuild, "build_fresh", build_in)
    with pytest.raises(psycopg.errors.UniqueViolation, match="governance_audit"):
        rebuild(ledger, db, projections)
    assert {table: (rows(db, table), indexes(db, table)) for table in live} == before
    with db.read() as cur:
        for table in every_table(db, "__rebuild"):
            assert not db.table_exists(cur, table), f"{table} stayed behind"


def test_the_live_tables_keep_their_keys_through_one_rebuild_after_another(
    database_url: str,
) -> None:
    with Ledger(StoreConfig.from_url(database_url), clock=Clock()) as ledger:
        world = World.create(ledger, Clock())
        world.found(size=4)
        db, projections = ledger.db, all_projections()
        ProjectionRunner(ledger, projections).catch_up()
        made = {table: key_count(db, table) for table in every_table(db, "")}
        assert all(made.values()), "every projection table has a key"
        for _ in range(2):
            if db.kind == "postgresql":
                all_readable(ledger)
            rebuild(ledger, db, projections)
            assert {table: key_count(db, table) for table in every_table(db, "")} == made


def key_count(db: Database, table: str) -> int:
    """How many indexes ``table`` has, on either store."""
    with db.read() as cur:
        if db.kind == "postgresql":
            cur.execute("SELECT count(*) FROM pg_index WHERE indrelid = to_regclass(?)", (table,))
        else:
            cur.execute(f"SELECT count(*) FROM pragma_index_list('{table}')")
        return int(cur.fetchone()[0])
