"""Writer processes: one Python process fills one core (the GIL), so many writers are processes.

Each worker sets itself up, waits at a barrier with the others, then runs for the
same number of seconds; its result comes back through a queue. Workers start from a
fork server that has the heavy imports preloaded and no open connections.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from multiprocessing.context import ForkServerContext
from multiprocessing.synchronize import Barrier
from typing import Any, TypeVar

A = TypeVar("A")
R = TypeVar("R")

PRELOAD = [
    "psycopg",
    "eventsourcing.application",
    "eventsourcing.postgres",
    "ledger.application",
    "bench.mix",
]

_context: ForkServerContext | None = None


def context() -> ForkServerContext:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _context = ctx
    return _context


class Ready:
    """What a worker calls once set up; returns when every worker is."""

    def __init__(self, barrier: Barrier) -> None:
        self._barrier = barrier

    def __call__(self) -> None:
        self._barrier.wait(timeout=300)


def _child(fn: Callable[[Ready, A], Any], ready: Ready, arg: A, index: int, queue: Any) -> None:
    try:
        queue.put((index, fn(ready, arg), None))
    except BaseException:
        queue.put((index, None, traceback.format_exc()))
        ready._barrier.abort()


def run_parallel(fn: Callable[[Ready, A], R], args: list[A], timeout: float = 600) -> list[R]:
    """Run ``fn(ready, arg)`` for every arg in its own process; the results in order."""
    ctx = context()
    barrier = ctx.Barrier(len(args))
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(fn, Ready(barrier), arg, n, queue), daemon=True)
        for n, arg in enumerate(args)
    ]
    for proc in procs:
        proc.start()
    results: dict[int, R] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < len(args):
            index, result, error = queue.get(timeout=max(1.0, deadline - time.monotonic()))
            if error is not None:
                raise RuntimeError(f"bench worker {index} failed:\n{error}")
            results[index] = result
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    return [results[n] for n in range(len(args))]


def throughput(results: list[tuple[int, float]]) -> float:
    """Operations per second of workers that ran side by side: (done, seconds) each."""
    return sum(done for done, _ in results) / max(seconds for _, seconds in results)


def timed_loop(step: Callable[[], int], seconds: float) -> tuple[int, float]:
    """Call ``step`` until ``seconds`` passed; (operations it reported, elapsed seconds)."""
    done = 0
    started = time.perf_counter()
    end = started + seconds
    while True:
        done += step()
        now = time.perf_counter()
        if now >= end:
            return done, now - started
