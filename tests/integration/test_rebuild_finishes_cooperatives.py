"""A folded rebuild lets a cooperative go once the stream has passed its last event.

The rows must be the ones the handlers' SQL makes, whether a cooperative is finished
early or at the end of the pass; a fold must hold nothing of a finished cooperative;
and an event of a cooperative already finished must send the rebuild to the handlers.
(The folded rebuild runs on PostgreSQL only: on SQLite a rebuild applies the handlers.)
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
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

    order = coops

    def watch(fold: Fold) -> None:
        finish = fold.finish_cooperatives

        def finish_and_look(coops: AbstractSet[str]) -> None:
            for coop in coops:
                held_before.setdefault(coop, []).extend(held_for(fold, coop))
            finish(coops)
            for coop in sorted(coops, key=order.index):
                held_then.setdefault(coop, []).extend(held_for(fold, coop))
                if coop not in finished:
                    finished.append(coop)

        fold.finish_cooperatives = finish_and_look  # type: ignore[method-assign]

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


def test_many_cooperatives_open_at_once_are_let_go_together_and_rebuild_the_same(
    pg_world: World,
) -> None:
    """Letting go scans what the folds hold: with many cooperatives open it is done for
    several at once, and the rows are still those the handlers make."""
    world = pg_world
    coops = [world.found(size=3) for _ in range(24)]
    works = {}
    for coop in coops:  # round after round across all of them, so all stay open
        works[coop] = world.ledger.take_work(coop, client_ref="c", actor=world.people[0]).value
    for _ in range(2):
        for coop in coops:
            world.ledger.log_hours(coop, works[coop], minutes=30, actor=world.people[0])
    ledger, db, projections = world.ledger, world.ledger.db, all_projections()
    all_readable(ledger)
    folds = folds_of_every_projection()
    let_go: list[int] = []
    finish = folds[0].finish_cooperatives

    def count(together: AbstractSet[str]) -> None:
        let_go.append(len(together))
        finish(together)

    folds[0].finish_cooperatives = count  # type: ignore[method-assign]
    last: dict[str, int] = {}
    sink = cast(CopySink, Discard([type(f) for f in folds]))
    fold_batches(ledger, folds, stream_log(ledger, 500, last), sink, lambda n: None, last)
    build_fresh(ledger, db, projections, suffix="__direct", staged=False)
    build_fresh(ledger, db, projections, suffix="__folded")

    assert let_go, "none let go before the end"
    assert max(let_go) > 1, "let go one at a time"
    assert sum(let_go) <= len(coops)
    expected = tables(db, projections, "__direct")
    for name, table in tables(db, projections, "__folded").items():
        assert rows(db, table) == rows(db, expected[name]), f"{name} differs"
