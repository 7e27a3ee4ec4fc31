"""Figures of the read side: projection rebuild, live lag, and chain verification."""

from __future__ import annotations

import importlib
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from bench.config import plain
from bench.ledger_figures import open_ledger, open_worker_ledger, percentile
from bench.mix import LedgerWriter
from bench.procs import Ready, run_parallel
from ledger.application import Ledger
from ledger.chain import GENESIS, link_hash
from ledger.loadgen import long_history
from projections.rebuild import build_fresh
from projections.registry import all_projections
from projections.runner import ProjectionRunner, projections_behind

COOP_EVENTS = 2_000  # history is many cooperatives of about this many events
BATCH = 2_000  # the batch size of `coop-ledger rebuild`
NO_SNAPSHOTS = 10**9
WARMUP_COMMANDS = 5


def events_table(ledger: Ledger) -> str:
    """The events table, schema-qualified on PostgreSQL."""
    recorder: Any = ledger.recorder
    schema = getattr(getattr(recorder, "datastore", None), "schema", "")
    name: str = recorder.events_table_name
    return f"{schema}.{name}" if schema and "." not in name else name


def event_count(ledger: Ledger) -> int:
    return int(ledger.recorder.max_notification_id() or 0)


@dataclass(frozen=True)
class HistoryJob:
    url: str
    events: int
    coop_events: int


def _history_writer(ready: Ready, job: HistoryJob) -> int:
    ledger = open_worker_ledger(job.url, snapshot_interval=NO_SNAPSHOTS)
    try:
        mentor = ledger.register_person("Mentor").id
        people = [ledger.register_person(f"Worker {n}").id for n in range(20)]
        ready()
        written = 0
        while written < job.events:
            events = min(job.coop_events, job.events - written)
            long_history(ledger, events, mentor, people)  # at least that many
            written += events
        return written
    finally:
        ledger.close()


def grow_history(url: str, events: int, writers: int = 2) -> int:
    """Add cooperatives' histories until the store holds at least ``events`` events."""
    with open_ledger(url) as ledger:
        missing = events - event_count(ledger)
    if missing > 0:
        share = -(-missing // writers)
        coop = min(COOP_EVENTS, max(50, share))
        run_parallel(_history_writer, [HistoryJob(url, share, coop)] * writers)
    with open_ledger(url) as ledger:
        return event_count(ledger)


def _rebuild(ready: Ready, url: str) -> dict[str, Any]:
    ledger = open_worker_ledger(url)
    try:
        total = event_count(ledger)
        ready()
        started = time.perf_counter()
        # All five projections in one pass: each batch is read and decoded once.
        build_fresh(ledger, ledger.db, all_projections(), suffix="__bench", batch_size=BATCH)
        elapsed = time.perf_counter() - started
        with ledger.db.transaction() as cur:
            for projection in all_projections():
                projection.drop(cur, projection.table_names(ledger.db, "__bench"))
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # The rebuild forks worker processes (projections.fold_workers): the largest of
        # them counts too, or the figure would leave out where the folds hold their rows.
        workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return {
            "events": total,
            "rate": total / elapsed,
            "rss_kb": max(peak_kb, workers_kb),
            "own_rss_kb": peak_kb,
            "workers_rss_kb": workers_kb,
        }
    finally:
        ledger.close()


def rebuild_at(url: str, events: int) -> dict[str, Any]:
    """Grow the history to ``events``, then rebuild all projections in a fresh process."""
    grow_history(url, events)
    result: dict[str, Any] = run_parallel(_rebuild, [url])[0]
    return result


def live_lag(url: str, samples: int) -> dict[str, float]:
    """Commit to visible in every projection, with the projections in their own process.

    That is how a PostgreSQL deployment runs them (``coop-ledger project``); the writer
    here polls the projections' positions every half millisecond.
    """
    ledger = open_ledger(url)
    writer = LedgerWriter(ledger)
    ProjectionRunner(ledger, all_projections())  # its tables, before the runner process starts
    env = {**os.environ, "COOP_LEDGER_DATABASE_URL": url}
    runner = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "project"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    names = [p.name for p in all_projections()]

    def visible(position: int, timeout: float) -> float:
        started = time.perf_counter()
        while projections_behind(ledger.db, ledger.event_log, names, position):
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"projections did not reach {position} in {timeout}s")
            time.sleep(0.0005)
        return time.perf_counter()

    try:
        for _ in range(WARMUP_COMMANDS):  # the runner process is up and has caught up
            visible(writer.command().position, 60)
        lags = []
        for n in range(samples):
            result = writer.command()
            committed = time.perf_counter()
            lags.append(visible(result.position, 30) - committed)
            time.sleep(0.005 + (n % 7) * 0.003)  # not in step with the runner's poll
    finally:
        runner.terminate()
        runner.wait(timeout=15)
        ledger.close()
    return {
        "p50_ms": percentile(lags, 0.5) * 1000,
        "p99_ms": percentile(lags, 0.99) * 1000,
        "samples": len(lags),
    }


def _local_verify(ledger: Ledger, table: str, url: str) -> int:
    """Recompute every link of every chain from the stored events; the events checked."""
    query = (
        f"SELECT originator_id, originator_version, topic, state, prev_hash, hash FROM {table}"
        " WHERE (originator_id, originator_version) > (%s, %s)"
        " ORDER BY originator_id, originator_version LIMIT 5000"
    )
    checked, last, head = 0, (UUID(int=0), 0), GENESIS
    with psycopg.connect(plain(url), autocommit=True) as conn:
        while rows := conn.execute(query, last).fetchall():
            for originator_id, version, topic, state, prev, stored in rows:
                if version == 1:
                    head = GENESIS
                if prev != head or link_hash(prev, originator_id, version, topic, state) != stored:
                    raise AssertionError(f"chain broken at {originator_id} v{version}")
                head = stored
            checked += len(rows)
            last = (rows[-1][0], rows[-1][1])
    return checked


def verify_rate(ledger: Ledger, url: str) -> tuple[float, int, str]:
    """Events/s of a whole-store chain verification; the events checked; which verifier ran."""
    table = verifier = None
    try:
        module: Any = importlib.import_module("ledger.verify")
        verifier = module.verify
    except ImportError:
        table = events_table(ledger)
    started = time.perf_counter()
    if verifier is not None:
        report = verifier(ledger)
        seconds = time.perf_counter() - started
        if not report.ok:
            raise AssertionError(f"verify found problems: {report.problems[:3]}")
        return report.events / seconds, int(report.events), "ledger.verify.verify"
    checked = _local_verify(ledger, str(table), url)
    how = "local recompute with ledger.chain.link_hash (ledger.verify was missing)"
    return checked / (time.perf_counter() - started), checked, how
