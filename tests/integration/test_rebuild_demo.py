"""A rebuild of the demo story holds exactly what the live handlers wrote, on both stores.

The demo has every kind of event a cooperative meets (admissions by decision,
coordinators, a split, a conversion, credit notes, hand-overs): on PostgreSQL the
rebuild folds them in memory (``projections.fold``) and must still equal, row for row,
the tables the runner filled one event at a time with the handlers' SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import Ledger, StoreConfig
from ledger.demo import load_demo
from projections import rebuild as projections_rebuild
from projections.registry import all_projections
from projections.runner import ProjectionRunner
from tests.integration.projection_support import assert_live_equals_fresh_rebuild

TODAY = datetime(2026, 3, 2, 12, tzinfo=UTC)
SCALE = 0.1  # the whole story, a tenth of its hours


def test_a_rebuild_of_the_demo_equals_the_live_projections(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_demo(StoreConfig.from_url(database_url), today=TODAY, scale=SCALE)

    def no_staging(*args: Any) -> None:
        raise AssertionError("the demo is folded, not staged")

    # The folds must take the whole story themselves, without falling back to the SQL.
    monkeypatch.setattr(projections_rebuild, "load", no_staging)
    with Ledger(StoreConfig.from_url(database_url)) as ledger:
        ProjectionRunner(ledger, all_projections()).catch_up(timeout=120)
        assert_live_equals_fresh_rebuild(ledger, all_projections())
