"""Projection figures: rebuild rate over a long history and live lag, commit to visible.

    .venv/bin/python scripts/projection_figures.py --events 100000 --url sqlite:////tmp/f.db

Prints one line per figure; with --json, one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import statistics
import time
from uuid import UUID

import orjson

from ledger import Ledger, StoreConfig
from ledger.loadgen import long_history
from projections.rebuild import build_fresh
from projections.registry import all_projections
from projections.runner import ProjectionRunner, projections_behind


def rebuild_rate(ledger: Ledger) -> dict[str, float]:
    total_events = ledger.recorder.max_notification_id() or 0
    rates: dict[str, float] = {}
    for projection in all_projections():
        started = time.perf_counter()
        build_fresh(ledger, ledger.db, projection, suffix="__figures", batch_size=5000)
        rates[projection.name] = total_events / (time.perf_counter() - started)
    started = time.perf_counter()
    build_fresh(ledger, ledger.db, all_projections(), suffix="__figures", batch_size=5000)
    rates["all five in one pass, events/s"] = total_events / (time.perf_counter() - started)
    with ledger.db.transaction() as cur:
        for projection in all_projections():
            projection.drop(cur, projection.table_names(ledger.db, "__figures"))
    return rates


def live_lag(ledger: Ledger, coop_id: UUID, samples: int, in_process: bool) -> list[float]:
    """Seconds from a command's commit to its event being visible in every projection."""
    runner = ProjectionRunner(ledger, all_projections())
    runner.catch_up()
    if in_process:
        ledger.saved_listeners.append(lambda _: runner.wakeup.set())
    runner.start(poll_interval=0.05)
    names = [p.name for p in runner.projections]
    member = next(iter(ledger.get_cooperative(coop_id).members))
    lags = []
    try:
        for _ in range(samples):
            result = ledger.take_work(coop_id, client_ref="client-lag", actor=member)
            committed = time.perf_counter()
            while projections_behind(ledger.db, ledger.event_log, names, result.position):
                time.sleep(0.0005)
            lags.append(time.perf_counter() - committed)
            time.sleep(0.01)
    finally:
        runner.stop()
        ledger.saved_listeners.clear()
    return lags


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ledger = Ledger(StoreConfig.from_url(args.url))
    mentor = ledger.register_person("Mo").id
    people = [ledger.register_person(f"Worker {n}").id for n in range(20)]
    started = time.perf_counter()
    coop_id = long_history(ledger, args.events, mentor, people)
    figures: dict[str, float] = {"history_events": float(ledger.recorder.max_notification_id())}
    figures["history_write_s"] = time.perf_counter() - started
    for name, rate in rebuild_rate(ledger).items():
        figures[f"rebuild_{name}"] = rate
    for mode, in_process in (("polling_50ms", False), ("woken_in_process", True)):
        lags = sorted(live_lag(ledger, coop_id, args.samples, in_process))
        figures[f"lag_{mode}_p50_ms"] = statistics.median(lags) * 1000
        figures[f"lag_{mode}_p99_ms"] = lags[int(len(lags) * 0.99) - 1] * 1000
    for name, value in figures.items():
        print(f"{name:40s} {value:12,.1f}")
    if args.json:
        print(orjson.dumps({"figures": figures}).decode())


if __name__ == "__main__":
    main()
