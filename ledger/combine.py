"""Commands of one process's threads on one cooperative, saved together.

Threads that command the same cooperative at once wait for one another anyway: one
save at a time per cooperative, and on PostgreSQL one turn at a time across
processes, each turn a commit that waits for its flush to disk. So the thread that
gets the cooperative runs the commands waiting behind it too, in the order they came,
and saves all their events in one transaction: one turn, one catch-up and one commit
for all of them, which is what lets one cooperative take many writers at once.

Each command still stands on its own: it sees the state its predecessors in the batch
left, a refused one records nothing and is reported to its own caller, and each caller
gets the versions, positions and chain head of its own events. A command that fails in
a way that may have changed the cached state is taken out and run alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from ledger.cooperative import Cooperative

R = TypeVar("R")

Act = Callable[[Cooperative, datetime], Any]


class Job(Generic[R]):
    """One caller's command: what it does, and once run, its result or its error."""

    __slots__ = ("act", "done", "error", "result")

    def __init__(self, act: Act) -> None:
        self.act = act
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None

    def succeed(self, result: R) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True

    def outcome(self) -> R:
        """The result, or the error raised in the caller's thread."""
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise RuntimeError("a command was left without an outcome")
        return self.result


class Combiner(Generic[R]):
    """Who runs each cooperative's commands in this process, and what waits for it.

    A caller whose cooperative is free runs its own command and every one waiting for
    it; a caller whose cooperative is busy waits until its command is done or the
    cooperative is free again, so a caller whose command was run for it never waits
    behind the next batch.
    """

    def __init__(self, stripes: int = 64) -> None:
        # Entered directly, the plain locks cost less than their conditions' Python methods;
        # a condition is only waited on or notified when someone waits (_sleepers).
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._conditions = [threading.Condition(lock) for lock in self._locks]
        self._sleepers = [0] * stripes
        self._waiting: dict[int, list[Job[R]]] = {}  # by cooperative (its id as an int)
        self._busy: set[int] = set()

    def run(
        self,
        cooperative_id: UUID,
        job: Job[R],
        execute: Callable[[list[Job[R]]], None],
        *,
        alone: bool = False,
    ) -> R:
        """``job``'s outcome, run by ``execute`` in this thread or another. ``alone``: in a
        batch of its own (others still wait for it, and it for them)."""
        key = cooperative_id.int  # hashed in C, where a UUID's hash is Python code
        stripe = key % len(self._locks)
        with self._locks[stripe]:
            queued = False
            if key in self._busy:
                if not alone:
                    self._waiting.setdefault(key, []).append(job)
                    queued = True
                self._sleepers[stripe] += 1
                try:
                    while not job.done and key in self._busy:
                        self._conditions[stripe].wait()
                finally:
                    self._sleepers[stripe] -= 1
                if job.done:
                    return job.outcome()
            self._busy.add(key)
            if alone:
                jobs = [job]
            else:
                jobs = self._waiting.pop(key, [])  # they came first
                if not queued:
                    jobs.append(job)
        try:
            execute(jobs)
        finally:
            with self._locks[stripe]:
                self._busy.discard(key)
                if self._sleepers[stripe]:
                    self._conditions[stripe].notify_all()
        return job.outcome()

    def waiting(self, cooperative_id: UUID) -> int:
        """How many commands wait for the cooperative now."""
        key = cooperative_id.int
        with self._locks[key % len(self._locks)]:
            return len(self._waiting.get(key, ()))


class RunAlone(Exception):
    """A command in a batch failed after it may have changed the cached state: the batch
    is abandoned unsaved and this command runs again on its own."""

    def __init__(self, job: Job[Any]) -> None:
        super().__init__("a command in a batch must run alone")
        self.job = job
