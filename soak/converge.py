"""Projections, afterwards: caught up with the ledger, and equal to a fresh rebuild.

The same comparison as the tests' ``assert_live_equals_fresh_rebuild``, written here so
the soak package does not import the tests: every live table holds exactly the rows a
build from the first event into fresh tables holds.
"""

from __future__ import annotations

import time
from typing import Any

from ledger.application import Ledger
from ledger.storage import Database
from projections.rebuild import build_fresh
from projections.registry import all_projections
from projections.runner import FAILED, projections_behind

SUFFIX = "__soak_check"


def rows(db: Database, table: str) -> list[tuple[Any, ...]]:
    with db.read() as cur:
        cur.execute(f"SELECT * FROM {table}")
        found = [tuple(r) for r in cur.fetchall()]
    return sorted(found, key=repr)


def wait_caught_up(ledger: Ledger, timeout_s: float) -> tuple[bool, float]:
    """Wait until every projection applied the ledger's last event: (caught up, seconds)."""
    names = [p.name for p in all_projections()]
    started = time.monotonic()
    while True:
        head = ledger.recorder.max_notification_id() or 0
        behind = projections_behind(ledger.db, ledger.event_log, names, head)
        if not behind:
            return True, time.monotonic() - started
        if any(t.state == FAILED for t in behind.values()):
            return False, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            return False, time.monotonic() - started
        time.sleep(0.1)


def mismatches(ledger: Ledger) -> list[str]:
    """The live tables (``projection.table``) that differ from a fresh rebuild."""
    differing = []
    build_fresh(ledger, ledger.db, all_projections(), suffix=SUFFIX)
    for projection in all_projections():
        live = projection.table_names(ledger.db)
        fresh = projection.table_names(ledger.db, SUFFIX)
        for logical in projection.tables:
            if rows(ledger.db, live[logical]) != rows(ledger.db, fresh[logical]):
                differing.append(f"{projection.name}.{logical}")
        with ledger.db.transaction() as cur:
            projection.drop(cur, fresh)
    return differing
