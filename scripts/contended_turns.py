"""Where a contended cooperative's time goes: behind BENCHMARKS.md's contended figures.

    .venv/bin/python scripts/contended_turns.py --url postgresql://postgres@127.0.0.1/db
    .venv/bin/python scripts/contended_turns.py --url ... --processes 2 --threads 4

Runs the bench's contended writers (``bench.ledger_figures.contended``) with the Ledger
instrumented in every writer process: each queued turn's moments on ``perf_counter``
(CLOCK_MONOTONIC, one clock for all processes here), and the size of every batch of
commands one thread ran for others (``ledger.combine``). Prints the figure, the turn's
parts (medians, and p10/p50/p90 of the hand-over between turns) and the batch sizes.
Diagnostic only: the patches cost a few microseconds a turn.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ledger.application as application
import ledger.pg_queue as pg_queue
import ledger.pg_recorder as pg_recorder

# Written by each writer process when its Ledger closes, read by the parent.
OUT = Path(os.environ.get("CONTENDED_TURNS_DIR") or tempfile.gettempdir()) / "contended-turns"

_turns: list[dict[str, float]] = []
_turn: dict[str, float] = {}
_batches: Counter[int] = Counter()


def _timed(cls: Any, name: str, mark: str, *, after: bool = False, first: bool = False) -> None:
    """Record ``mark`` when ``cls.name`` is entered (or has returned, ``after``)."""
    original = getattr(cls, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        if first:
            _turn.clear()
        if not after:
            _turn[mark] = time.perf_counter()
        result = original(*args, **kwargs)
        if after:
            _turn[mark] = time.perf_counter()
        return result

    setattr(cls, name, timed)


def _instrument() -> None:
    # Module level, so that the fork server's writer processes, which import this module
    # as their main, are instrumented as well.
    _timed(pg_queue.Turn, "wait", "granted", after=True, first=True)
    _timed(application.Ledger, "_catch_up", "caught_up", after=True)
    _timed(application.Ledger, "_record", "encoding")
    _timed(pg_recorder.LockFreePostgresRecorder, "insert_events", "recorder")
    original_save, original_run = pg_queue.Turn.save, application.Ledger._run
    original_close = application.Ledger.close

    def save(self: pg_queue.Turn, call: Any) -> Any:
        _turn["sent"] = time.perf_counter()
        result = original_save(self, call)
        if len(_turn) == 5:
            _turns.append(dict(_turn))
        return result

    def run(self: application.Ledger, coop: Any, jobs: Any, expected: Any = None) -> None:
        _batches[len(jobs)] += 1
        original_run(self, coop, jobs, expected)

    def close(self: application.Ledger) -> None:
        if _turns or _batches:
            OUT.mkdir(exist_ok=True)
            found = {"turns": _turns, "batches": dict(_batches)}
            (OUT / f"{os.getpid()}.json").write_text(json.dumps(found))
        original_close(self)

    setattr(pg_queue.Turn, "save", save)  # noqa: B010 (mypy refuses an assignment to a method)
    setattr(application.Ledger, "_run", run)  # noqa: B010
    setattr(application.Ledger, "close", close)  # noqa: B010


_instrument()


def median_us(turns: list[dict[str, float]], start: str, end: str) -> int:
    return round(statistics.median(t[end] - t[start] for t in turns) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database to write into")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="writer threads per process")
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    for old in glob.glob(str(OUT / "*.json")):
        os.remove(old)

    from bench.ledger_figures import contended

    found = contended(args.url, args.processes, args.threads, args.seconds, 2.0)
    turns: list[dict[str, float]] = []
    batches: Counter[int] = Counter()
    for path in OUT.glob("*.json"):
        written = json.loads(path.read_text())
        turns += written["turns"]
        batches.update({int(size): n for size, n in written["batches"].items()})
    print(f"commands/s {found['value']:,.0f}; lost {found['lost']}; retries {found['retries']}")
    print("batch sizes (size: batches):", dict(sorted(batches.items())))
    if len(turns) < 2:
        print("no queued turns: one process, or no contention")
        return
    turns.sort(key=lambda t: t["granted"])
    period = (turns[-1]["granted"] - turns[0]["granted"]) / (len(turns) - 1)
    # Batches that raced (no turn) and won are not among these: with threads, many do.
    share = f"{len(turns):,} of {sum(batches.values()):,} batches"
    print(f"queued turns: {share}, one every {period * 1e6:,.0f} us")
    parts = [
        ("catch-up", "granted", "caught_up"),
        ("command", "caught_up", "encoding"),
        ("encoding + chain link", "encoding", "recorder"),
        ("recorder until sent", "recorder", "sent"),
        ("granted until sent", "granted", "sent"),
    ]
    for name, start, end in parts:
        print(f"  {name}: {median_us(turns, start, end)} us (median)")
    hand_over = [b["granted"] - a["sent"] for a, b in itertools.pairwise(turns)]
    deciles = statistics.quantiles([h for h in hand_over if h > 0], n=10)
    p10, p50, p90 = (round(deciles[i] * 1e6) for i in (0, 4, 8))
    print(f"  sent until the next turn's rows are in: p10 {p10}, p50 {p50}, p90 {p90} us")


if __name__ == "__main__":
    main()
