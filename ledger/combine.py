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
        self._conditions = [threading.Condition() for _ in range(stripes)]
        self._waiting: dict[UUID, list[Job[R]]] = {}
        self._busy: set[UUID] = set()

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
        condition = self._conditions[hash(cooperative_id) % len(self._conditions)]
        with condition:
            waiting = self._waiting.setdefault(cooperative_id, [])
            if not alone:
                waiting.append(job)
            while not job.done and cooperative_id in self._busy:
                condition.wait()
            if job.done:
                return job.outcome()
            self._busy.add(cooperative_id)
            if alone:
                jobs = [job]
            else:
                jobs = waiting[:]
                waiting.clear()
            if not waiting:
                del self._waiting[cooperative_id]
        try:
            execute(jobs)
        finally:
            with condition:
                self._busy.discard(cooperative_id)
                condition.notify_all()
        return job.outcome()

    def waiting(self, cooperative_id: UUID) -> int:
        """How many commands wait for the cooperative now."""
        condition = self._conditions[hash(cooperative_id) % len(self._conditions)]
        with condition:
            return len(self._waiting.get(cooperative_id, ()))


class RunAlone(Exception):
    """A command in a batch failed after it may have changed the cached state: the batch
    is abandoned unsaved and this command runs again on its own."""

    def __init__(self, job: Job[Any]) -> None:
        super().__init__("a command in a batch must run alone")
        self.job = job
