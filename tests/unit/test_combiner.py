"""The combiner on its own (ledger.combine): who runs which commands, and who waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from uuid import UUID, uuid4

import pytest

from ledger.combine import Combiner, Job

COOP = uuid4()


def named(name: str) -> Job[str]:
    return Job(lambda coop, at: name)


class Executor:
    """Runs batches by naming their jobs; a batch can be held until let go."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.hold = threading.Event()
        self.hold.set()

    def __call__(self, jobs: list[Job[str]]) -> None:
        names = [job.act(None, None) for job in jobs]  # type: ignore[arg-type]
        self.batches.append(names)
        self.started.set()
        assert self.hold.wait(timeout=10)
        for job, name in zip(jobs, names, strict=True):
            job.succeed(name)


def in_thread(run: Callable[[], str], results: dict[str, str], name: str) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.__setitem__(name, run()))
    thread.start()
    return thread


def start(
    combiner: Combiner[str], execute: Executor, name: str, results: dict[str, str]
) -> threading.Thread:
    return in_thread(lambda: combiner.run(COOP, named(name), execute), results, name)


def waits(combiner: Combiner[str], count: int) -> None:
    """Return once ``count`` commands wait for the cooperative."""
    pause = threading.Event()
    for _ in range(10_000):
        if combiner.waiting(COOP) == count:
            return
        pause.wait(0.001)
    raise AssertionError(f"{count} commands never waited")


def busy_with_a(combiner: Combiner[str], execute: Executor) -> threading.Thread:
    """Start command a and hold it inside its batch."""
    execute.hold.clear()
    results: dict[str, str] = {}
    first = in_thread(lambda: combiner.run(COOP, named("a"), execute), results, "a")
    assert execute.started.wait(timeout=10)
    execute.started.clear()
    return first


def test_a_caller_alone_runs_its_own_command() -> None:
    combiner: Combiner[str] = Combiner()
    execute = Executor()

    assert combiner.run(COOP, named("a"), execute) == "a"
    assert execute.batches == [["a"]]


def test_commands_that_wait_for_a_busy_cooperative_run_together_in_arrival_order() -> None:
    combiner: Combiner[str] = Combiner()
    execute = Executor()
    first = busy_with_a(combiner, execute)
    results: dict[str, str] = {}
    waiting = []
    for n, name in enumerate("bcd", start=1):
        waiting.append(start(combiner, execute, name, results))
        waits(combiner, n)

    execute.hold.set()
    for thread in [first, *waiting]:
        thread.join(timeout=10)

    assert execute.batches == [["a"], ["b", "c", "d"]]
    assert results == {"b": "b", "c": "c", "d": "d"}


def test_a_command_pinned_to_a_version_runs_in_a_batch_of_its_own() -> None:
    combiner: Combiner[str] = Combiner()
    execute = Executor()
    first = busy_with_a(combiner, execute)
    results: dict[str, str] = {}
    b = in_thread(lambda: combiner.run(COOP, named("b"), execute), results, "b")
    waits(combiner, 1)
    pinned = in_thread(lambda: combiner.run(COOP, named("p"), execute, alone=True), results, "p")
    c = in_thread(lambda: combiner.run(COOP, named("c"), execute), results, "c")
    waits(combiner, 2)

    execute.hold.set()
    for thread in (first, b, pinned, c):
        thread.join(timeout=10)

    assert ["p"] in execute.batches
    assert sorted(n for batch in execute.batches for n in batch) == ["a", "b", "c", "p"]
    assert all(len(batch) == 1 for batch in execute.batches if "p" in batch)


def test_each_caller_gets_its_own_error_and_other_cooperatives_do_not_wait() -> None:
    combiner: Combiner[str] = Combiner(stripes=1)  # every cooperative on one stripe
    execute = Executor()
    first = busy_with_a(combiner, execute)
    other: UUID = uuid4()

    def refuse(jobs: list[Job[str]]) -> None:
        for job in jobs:
            job.fail(ValueError(f"refused {job.act(None, None)}"))  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="refused x"):
        combiner.run(other, named("x"), refuse)
    execute.hold.set()
    first.join(timeout=10)
