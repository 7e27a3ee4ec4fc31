"""Commands of several threads on one cooperative, run by whichever thread gets it first and
saved together (ledger.combine); on both stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest

from ledger import Ledger
from ledger.application import CommandResult, Receipt
from ledger.cooperative import Cooperative
from ledger.errors import NotYourWork
from ledger.verify import verify
from tests.integration.support import World

Outcome = CommandResult | BaseException


def counted_saves(ledger: Ledger) -> list[int]:
    """The number of events of each save the ledger makes from now on."""
    saves: list[int] = []
    save = ledger._save

    def counting(*objs: Any, **kwargs: Any) -> Any:
        recordings, links = save(*objs, **kwargs)
        saves.append(len(recordings))
        return recordings, links

    ledger._save = counting  # type: ignore[method-assign]
    return saves


@contextmanager
def commands_held_back(
    ledger: Ledger, coop_id: UUID, commands: list[Callable[[], CommandResult]]
) -> Iterator[list[Outcome | None]]:
    """Start ``commands`` in threads while another command on the cooperative is saving;
    let that save finish once every one of them waits. Their outcomes, in order."""
    outcomes: list[Outcome | None] = [None] * len(commands)
    saving, go_on = threading.Event(), threading.Event()
    save = ledger._save

    def held_save(*objs: Any, **kwargs: Any) -> Any:
        ledger._save = save  # type: ignore[method-assign]
        saving.set()
        assert go_on.wait(timeout=10)
        return save(*objs, **kwargs)

    def run(n: int) -> None:
        try:
            outcomes[n] = commands[n]()
        except BaseException as error:
            outcomes[n] = error

    coop = ledger.get_cooperative(coop_id)
    holder, work = next((w.holder, w.id) for w in coop.work.values() if w.holder)
    ledger._save = held_save  # type: ignore[method-assign]
    first = threading.Thread(
        target=lambda: ledger.log_hours(coop_id, work, minutes=1, actor=holder)
    )
    first.start()
    assert saving.wait(timeout=10)
    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(commands))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while ledger._combiner.waiting(coop_id) < len(commands):
        assert time.monotonic() < deadline, "the commands never queued"
        time.sleep(0.001)
    go_on.set()
    for thread in [first, *threads]:
        thread.join(timeout=30)
    yield outcomes


def taken_work(world: World, coop_id: UUID, holders: list[UUID]) -> dict[UUID, UUID]:
    return {
        holder: world.ledger.take_work(coop_id, client_ref=f"c-{n}", actor=holder).value
        for n, holder in enumerate(holders)
    }


def cooperative_at_work(
    world: World, size: int, holders: int
) -> tuple[UUID, dict[UUID, UUID], int]:
    """A cooperative whose first ``holders`` members hold work; the version the first of
    the commands let go by ``commands_held_back`` will get (after the held-back one)."""
    coop_id = world.found(size=size)
    works = taken_work(world, coop_id, world.people[:holders])
    return coop_id, works, world.ledger.get_cooperative(coop_id).version + 2


def results(outcomes: list[Outcome | None]) -> list[CommandResult]:
    return [o for o in outcomes if isinstance(o, CommandResult)]


def test_waiting_commands_are_saved_in_one_transaction_each_with_its_own_result(
    world: World,
) -> None:
    coop_id, works, first = cooperative_at_work(world, 5, 5)
    holders = list(works)
    saves = counted_saves(world.ledger)

    def log(holder: UUID) -> Callable[[], CommandResult]:
        return lambda: world.ledger.log_hours(coop_id, works[holder], minutes=30, actor=holder)

    with commands_held_back(world.ledger, coop_id, [log(h) for h in holders]) as outcomes:
        done = results(outcomes)

    assert saves == [1, 5], "five commands, one save"
    assert sorted(r.version for r in done) == list(range(first, first + 5))
    for result in done:
        assert [e.version for e in result.events] == [result.version]
        assert [e.name for e in result.events] == ["HoursLogged"]
        stored = world.ledger.receipt(coop_id, result.version)  # read back from the store
        assert result.receipt == stored
    hours = world.ledger.get_cooperative(coop_id).hours
    assert {str(r.value) for r in done} <= {str(entry) for entry in hours}
    report = verify(world.ledger, coop_id, [r.receipt for r in done])
    assert report.breaks == []
    assert report.receipt_failures == []


def test_a_refused_command_among_waiting_ones_records_nothing_and_the_rest_are_saved(
    world: World,
) -> None:
    coop_id, works, version = cooperative_at_work(world, 3, 3)
    holder, other, third = world.people[:3]
    saves = counted_saves(world.ledger)
    ledger = world.ledger
    commands = [
        lambda: ledger.log_hours(coop_id, works[holder], minutes=15, actor=holder),
        lambda: ledger.log_hours(coop_id, works[holder], minutes=15, actor=other),
        lambda: ledger.log_hours(coop_id, works[third], minutes=15, actor=third),
    ]

    with commands_held_back(ledger, coop_id, commands) as outcomes:
        first, refused, last = outcomes

    assert isinstance(refused, NotYourWork)
    assert isinstance(first, CommandResult)
    assert isinstance(last, CommandResult)
    assert (first.version, last.version) == (version, version + 1)
    assert saves == [1, 2]
    assert ledger.get_cooperative(coop_id).version == version + 1


def test_a_command_that_breaks_among_waiting_ones_fails_alone_and_the_rest_are_saved(
    world: World,
) -> None:
    coop_id, works, version = cooperative_at_work(world, 3, 2)
    holders = list(works)
    ledger = world.ledger

    def half_done_then_broken(coop: Cooperative, at: Any) -> Any:
        coop.log_hours(works[holders[0]], 5, at.date(), actor=holders[0], at=at)
        raise RuntimeError("a bug in a command, after it recorded an event")

    commands = [
        lambda: ledger.log_hours(coop_id, works[holders[0]], minutes=15, actor=holders[0]),
        lambda: ledger._command(coop_id, half_done_then_broken),
        lambda: ledger.log_hours(coop_id, works[holders[1]], minutes=15, actor=holders[1]),
    ]

    with commands_held_back(ledger, coop_id, commands) as outcomes:
        first, broken, last = outcomes

    assert isinstance(broken, RuntimeError)
    assert isinstance(first, CommandResult)
    assert isinstance(last, CommandResult)
    assert sorted([first.version, last.version]) == [version, version + 1]
    stored = ledger.get_cooperative(coop_id)
    assert stored.version == version + 1, "the broken command's event was never saved"


def test_a_command_pinned_to_a_version_is_never_saved_with_others(world: World) -> None:
    coop_id = world.found(size=3)
    holder = world.people[0]
    work = taken_work(world, coop_id, [holder])[holder]
    version = world.ledger.get_cooperative(coop_id).version
    saves = counted_saves(world.ledger)

    result = world.ledger.log_hours(
        coop_id, work, minutes=10, actor=holder, expected_version=version
    )

    assert result.version == version + 1
    assert result.receipt == Receipt(coop_id, version + 1, result.receipt.chain_head)
    assert saves == [1]


@pytest.mark.parametrize("threads", [8])
def test_many_threads_on_one_cooperative_lose_nothing_and_chain_every_event(
    world: World, threads: int
) -> None:
    coop_id = world.found(size=threads)
    holders = world.people[:threads]
    works = taken_work(world, coop_id, holders)
    before = world.ledger.get_cooperative(coop_id).version
    done: list[CommandResult] = []
    lock = threading.Lock()

    def writer(holder: UUID) -> None:
        for _ in range(25):
            result = world.ledger.log_hours(coop_id, works[holder], minutes=1, actor=holder)
            with lock:
                done.append(result)

    pool = [threading.Thread(target=writer, args=(h,)) for h in holders]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)

    assert sorted(r.version for r in done) == list(range(before + 1, before + 1 + 25 * threads))
    report = verify(world.ledger, coop_id, [r.receipt for r in done])
    assert report.breaks == []
    assert report.receipt_failures == []
