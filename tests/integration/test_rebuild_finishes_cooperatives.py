"""A folded rebuild lets a cooperative go once the stream has passed its last event.

The rows must be the ones the handlers' SQL makes, whether a cooperative is finished
early or at the end of the pass; a fold must hold nothing of a finished cooperative;
and an event of a cooperative already finished must send the rebuild to the handlers.
(The folded rebuild runs on PostgreSQL only: on SQLite a rebuild applies the handlers.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast
from uuid import UUID

import pytest

from ledger import Ledger, StoreConfig
from ledger.loadgen import long_history
from projections.copy_sink import CopySink
from projections.fold import CannotFold, Fold, Row
from projections.fold_pass import columns_of, fold_batches
from projections.log_stream import stream_log
from projections.rebuild import build_fresh
from projections.registry import all_projections, fold_of
from tests.integration.projection_support import rows
from tests.integration.support import Clock, World
from tests.integration.test_projection_rebuild_staged import all_readable, tables


@pytest.fixture
def pg_world(postgres_url: str) -> Iterator[World]:
    clock = Clock()
    with Ledger(StoreConfig.from_url(postgres_url), clock=clock, snapshot_interval=10) as ledger:
        yield World.create(ledger, clock)


def one_after_another(world: World) -> list[UUID]:
    """Four cooperatives, each written whole before the next: hours, votes, invoices and
    handovers, with proposals and invoices still open when each one's history ends."""
    coops = []
    for n in range(4):
        coops.append(long_history(world.ledger, 300, world.mentor, world.people[n : n + 20]))
        world.clock.advance(days=1)
    return coops


class Discard:
    """A sink that drops what it is sent: the test looks at the folds, not the rows."""

    def __init__(self, classes: list[type[Fold]]) -> None:
        self.buffers: dict[str, list[Row]] = {t: [] for t in columns_of(classes)}

    def ship(self) -> None:
        for held in self.buffers.values():
            held.clear()


def held_for(fold: Fold, coop: str) -> list[str]:
    """The names of the fold's dicts that still hold something keyed by ``coop``."""
    found = []
    for name, value in vars(fold).items():
        if name in ("out", "roots") or not isinstance(value, dict):
            continue  # the directory keeps every root to the end, for split-off children
        if any(key == coop or (isinstance(key, tuple) and key[0] == coop) for key in value):
            found.append(name)
    return found


def folds_of_every_projection() -> list[Fold]:
    classes = [cls for p in all_projections() if (cls := fold_of(p)) is not None]
    sink = Discard(classes)
    return [cls(sink.buffers, sink.ship) for cls in classes]


def test_cooperatives_written_one_after_another_rebuild_to_the_rows_the_handlers_make(
    pg_world: World,
) -> None:
    one_after_another(pg_world)
    ledger, db, projections = pg_world.ledger, pg_world.ledger.db, all_projections()
    all_readable(ledger)
    build_fresh(ledger, db, projections, suffix="__direct", staged=False)
    build_fresh(ledger, db, projections, suffix="__folded")
    build_fresh(ledger, db, projections, suffix="__alone", workers=1)
    expected = tables(db, projections, "__direct")
    for suffix in ("__folded", "__alone"):
        for name, table in tables(db, projections, suffix).items():
            assert rows(db, table) == rows(db, expected[name]), f"{name}{suffix} differs"


def test_a_fold_holds_nothing_of_a_cooperative_once_its_last_event_is_folded(
    pg_world: World,
) -> None:
    coops = [str(c) for c in one_after_another(pg_world)]
    ledger = pg_world.ledger
    all_readable(ledger)
    folds = folds_of_every_projection()
    finished: list[str] = []
    held_then: dict[str, list[str]] = {}
    held_before: dict[str, list[str]] = {}

    def watch(fold: Fold) -> None:
        finish = fold.finish_cooperative

        def finish_and_look(coop: str) -> None:
            held_before.setdefault(coop, []).extend(held_for(fold, coop))
            finish(coop)
            held_then.setdefault(coop, []).extend(held_for(fold, coop))
            if coop not in finished:
                finished.append(coop)

        fold.finish_cooperative = finish_and_look  # type: ignore[method-assign]

    for fold in folds:
        watch(fold)
    last: dict[str, int] = {}
    sink = cast(CopySink, Discard([type(f) for f in folds]))
    fold_batches(ledger, folds, stream_log(ledger, 500, last), sink, lambda n: None, last)
    # Each was finished during the pass, in the order it was written, holding open
    # business until then and nothing after.
    assert finished == coops
    assert all(held_before[c] for c in coops), "nothing was held to let go"
    assert held_then == {c: [] for c in coops}


def test_an_event_of_a_cooperative_already_finished_cannot_be_folded(pg_world: World) -> None:
    coops = [str(c) for c in one_after_another(pg_world)]
    ledger = pg_world.ledger
    all_readable(ledger)
    folds = folds_of_every_projection()
    sink = cast(CopySink, Discard([type(f) for f in folds]))
    # As if the last versions came from an older snapshot than the stream's.
    last: dict[str, int] = {}
    batches = list(stream_log(ledger, 500, last))
    last[coops[1]] = 1
    with pytest.raises(CannotFold, match="finished"):
        fold_batches(ledger, folds, batches, sink, lambda n: None, last)
