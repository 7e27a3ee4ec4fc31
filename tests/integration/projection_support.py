"""Helpers for projection tests: table comparisons against a fresh rebuild."""

from __future__ import annotations

from typing import Any

from ledger import Ledger
from ledger.loadgen import long_history
from ledger.storage import Database
from projections.framework import Projection
from projections.rebuild import build_fresh

CHECK_SUFFIX = "__check"


def rows(db: Database, table: str) -> list[tuple[Any, ...]]:
    with db.read() as cur:
        cur.execute(f"SELECT * FROM {table}")
        found = [tuple(r) for r in cur.fetchall()]
    return sorted(found, key=repr)


def assert_live_equals_fresh_rebuild(ledger: Ledger, projections: list[Projection]) -> None:
    """Every live table holds exactly the rows a fresh build from the first event holds."""
    build_fresh(ledger, ledger.db, projections, suffix=CHECK_SUFFIX)
    for projection in projections:
        live = projection.table_names(ledger.db)
        fresh = projection.table_names(ledger.db, CHECK_SUFFIX)
        for logical in projection.tables:
            assert rows(ledger.db, live[logical]) == rows(ledger.db, fresh[logical]), (
                f"{projection.name}.{logical} differs from a fresh rebuild"
            )
        with ledger.db.transaction() as cur:
            projection.drop(cur, fresh)


__all__ = ["assert_live_equals_fresh_rebuild", "long_history", "rows"]
