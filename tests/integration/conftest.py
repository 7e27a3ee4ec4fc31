"""Fixtures for the Ledger on both stores; the helpers live in ``support``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import Ledger, StoreConfig
from tests.integration.support import Clock, MakeLedger, World


@pytest.fixture
def make_ledger(database_url: str) -> Iterator[MakeLedger]:
    opened: list[Ledger] = []

    def make(**kwargs: object) -> Ledger:
        ledger = Ledger(StoreConfig.from_url(database_url), **kwargs)  # type: ignore[arg-type]
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def world(make_ledger: MakeLedger) -> World:
    return World.create(make_ledger(clock=(clock := Clock()), snapshot_interval=10), clock)
