"""The ledger's write-side figures: commands/s, contention, latency, aggregate loading."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from bench.mix import FOUNDERS, LedgerWriter
from bench.procs import Ready, run_parallel, throughput, timed_loop
from ledger.application import Ledger
from ledger.errors import ConcurrencyConflict
from ledger.loadgen import long_history
from ledger.storage import StoreConfig

TAIL = 25


def open_ledger(url: str, **kwargs: Any) -> Ledger:
    return Ledger(StoreConfig.from_url(url), **kwargs)


# A writer process runs one command at a time: one pooled connection is enough (the
# library's default pool opens 5 at start, and 16 processes of 5 + 1 for the Ledger's own
# tables exceed PostgreSQL's default max_connections of 100). The tables exist already
# (``prepare``): concurrent CREATE ... IF NOT EXISTS can fail ('tuple concurrently updated').
WORKER_ENV = {"CREATE_TABLE": "n", "POSTGRES_POOL_SIZE": "1"}


def open_worker_ledger(url: str, **kwargs: Any) -> Ledger:
    """A Ledger for a writer process (see WORKER_ENV)."""
    return open_ledger(url, env=WORKER_ENV, **kwargs)


def prepare(url: str) -> None:
    """Create the store's tables once, before writers race to."""
    open_ledger(url).close()


@dataclass(frozen=True)
class Job:
    url: str
    seconds: float
    warmup: float
    rate: float = 0.0  # paced jobs: commands per second


def _writer(ready: Ready, job: Job) -> tuple[int, float]:
    ledger = open_worker_ledger(job.url)
    try:
        writer = LedgerWriter(ledger)
        timed_loop(writer.step, job.warmup)
        ready()
        return timed_loop(writer.step, job.seconds)
    finally:
        ledger.close()


def command_rate(url: str, writers: int, seconds: float, warmup: float) -> float:
    """Commands/s through the Ledger from ``writers`` processes, each on its own cooperative."""
    prepare(url)
    results = run_parallel(_writer, [Job(url, seconds, warmup)] * writers)
    return throughput(results)


def _paced(ready: Ready, job: Job) -> list[float]:
    ledger = open_worker_ledger(job.url)
    try:
        writer = LedgerWriter(ledger)
        timed_loop(writer.step, job.warmup)
        ready()
        latencies: list[float] = []
        interval, started = 1.0 / job.rate, time.perf_counter()
        for n in range(max(1, int(job.seconds * job.rate))):
            due = started + n * interval
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            writer.command()
            # From when it was due, so a slow command delays (and is charged for) the next.
            latencies.append(time.perf_counter() - due)
        return latencies
    finally:
        ledger.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def paced_latency(url: str, rate: float, seconds: float, warmup: float) -> dict[str, float]:
    """One writer sending commands at ``rate``/s; latency percentiles in ms."""
    prepare(url)
    latencies = run_parallel(_paced, [Job(url, seconds, warmup, rate)])[0]
    return {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "samples": len(latencies),
    }


@dataclass(frozen=True)
class ContendedJob:
    url: str
    coop_id: UUID
    works: list[tuple[UUID, UUID]]  # (member, their work)
    seconds: float
    warmup: float
    threads: int


@dataclass
class Acks:
    entries: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    gave_up: int = 0
    failed: int = 0  # commands that raised anything else: not acknowledged, not lost
    failure: str = ""


def _contender(ready: Ready, job: ContendedJob) -> dict[str, Any]:
    """One process of contended writers: ``job.threads`` threads sharing its Ledger, as
    the requests of one API worker do."""
    ledger = open_worker_ledger(job.url)
    acks = Acks()
    lock = threading.Lock()

    def writer(works: list[tuple[UUID, UUID]]) -> Callable[[], int]:
        turn = [0]

        def log() -> int:
            member, work = works[turn[0] % len(works)]
            turn[0] += 1
            try:
                result = ledger.log_hours(job.coop_id, work, minutes=15, actor=member)
            except ConcurrencyConflict:
                with lock:
                    acks.gave_up += 1
                return 0
            except Exception as error:  # reported with the figure, the run goes on
                with lock:
                    acks.failed += 1
                    acks.failure = acks.failure or f"{type(error).__name__}: {error}"
                return 0
            with lock:
                acks.entries.append(str(result.value))
                acks.versions.append(result.version)
            return 1

        return log

    loops = [writer(job.works[n :: job.threads] or job.works) for n in range(job.threads)]
    try:
        side_by_side(loops, job.warmup)
        ready()
        before, races = len(acks.entries), ledger.lost_races
        seconds = side_by_side(loops, job.seconds)
        measured = len(acks.entries) - before
        retries = ledger.lost_races - races
        return {"acked": measured, "seconds": seconds, "acks": acks, "retries": retries}
    finally:
        ledger.close()


def side_by_side(loops: list[Callable[[], int]], seconds: float) -> float:
    """Run each loop in its own thread for ``seconds``; the longest any of them took."""
    if len(loops) == 1:
        return timed_loop(loops[0], seconds)[1]
    took: list[float] = []
    threads = [
        threading.Thread(target=lambda s=step: took.append(timed_loop(s, seconds)[1]))
        for step in loops
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(took) != len(loops):
        raise RuntimeError("a contended writer thread died")
    return max(took)


def contended(
    url: str, processes: int, threads: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """``processes`` x ``threads`` writers logging hours on ONE cooperative; rate, lost
    and retries (version conflicts met, each one an attempt run again)."""
    prepare(url)
    ledger = open_ledger(url)
    try:
        setup = LedgerWriter(ledger)
        for _ in range(1 + FOUNDERS):  # found, then each founder takes work
            setup.command()
        coop_id, works = setup.mix.cooperative, list(setup.mix.works.items())
        jobs = [
            ContendedJob(url, coop_id, works[n::processes] or works, seconds, warmup, threads)
            for n in range(processes)
        ]
        results = run_parallel(_contender, jobs)
    finally:
        ledger.close()
    acks = [r["acks"] for r in results]
    acked = [e for a in acks for e in a.entries]
    versions = [v for a in acks for v in a.versions]
    reader = open_ledger(url)  # a fresh instance: whatever it holds comes from the store
    try:
        stored = {str(entry) for entry in reader.get_cooperative(coop_id).hours}
    finally:
        reader.close()
    lost = len(set(acked) - stored) + (len(versions) - len(set(versions)))
    retries = sum(r["retries"] for r in results)
    return {
        "value": sum(r["acked"] for r in results) / max(r["seconds"] for r in results),
        "lost": lost,
        "retries": retries,
        "acknowledged": len(acked),
        "retries_per_command": retries / max(1, sum(r["acked"] for r in results)),
        "gave_up": sum(a.gave_up for a in acks),
        "failed": sum(a.failed for a in acks),
        "first_failure": next((a.failure for a in acks if a.failure), ""),
    }


def _median_loads(ledger: Ledger, coop_ids: list[UUID], repeats: int) -> list[float]:
    """The median time to load each cooperative from storage, the loads taken in turns.

    Taking them in turns, after a load of each to warm up, lets whatever the machine or
    the server's caches do in the meantime weigh on every cooperative alike (measured
    one after the other, the first one's loads ran colder and slower).
    """
    versions = [ledger.get_cooperative(c).version for c in coop_ids]
    times: list[list[float]] = [[] for _ in coop_ids]
    for n in range(repeats + 1):
        for coop_id, version, found in zip(coop_ids, versions, times, strict=True):
            started = time.perf_counter()
            ledger.repository.get(coop_id, version=version)  # from storage, never from a cache
            if n:
                found.append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def aggregate_load_growth(url: str, history: int, repeats: int) -> dict[str, Any]:
    """Load time of a cooperative with ``history`` events over one with 10 (snapshots on)."""
    ledger = open_ledger(url)
    try:
        writer = LedgerWriter(ledger)
        for _ in range(10):  # found, then nine founders take work: 10 events
            writer.command()
        small, cast = writer.mix.cooperative, writer.mix.cast
        big = long_history(ledger, history, cast.mentor, cast.people)
        # A tail after the last snapshot, as command-by-command use leaves one (< interval).
        coop = ledger.get_cooperative(big)
        holder, work = next((w.holder, w.id) for w in coop.work.values() if w.holder)
        for _ in range(TAIL):
            ledger.log_hours(big, work, minutes=20, actor=holder)
        small_s, big_s = _median_loads(ledger, [small, big], repeats)
        return {
            "value": big_s / small_s,
            "load_ms_10": small_s * 1000,
            f"load_ms_{history}": big_s * 1000,
            "events": ledger.get_cooperative(big).version,
        }
    finally:
        ledger.close()
