"""``scripts/bench [--quick | --full] [--json] [--only NAME ...] [--markdown FILE]``."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench.config import Figure, Sizes, Workspace
from bench.report import ORDER, json_line, judge, table
from bench.run import Run


def machine(ws: Workspace) -> str:
    memory = "?"
    cpu = platform.processor() or platform.machine()
    try:
        meminfo = Path("/proc/meminfo").read_text()
        total = next(line for line in meminfo.splitlines() if line.startswith("MemTotal"))
        kb = int(total.split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = next(line for line in cpuinfo.splitlines() if line.startswith("model name"))
        cpu = cpu.split(":", 1)[1].strip()
    except (OSError, StopIteration, ValueError):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory} RAM; PostgreSQL {ws.server_version()}; "
        f"Python {platform.python_version()}, eventsourcing {version('eventsourcing')}"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def markdown(figures: dict[str, Figure], about: str, command: str, run: str) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""# Benchmarks

The latest run of `scripts/bench` (issue 6). Every throughput figure is a ratio against a
raw baseline measured in the same run on the same machine: the absolute numbers move with
the machine's load, the ratios much less. `holds` checks the floor the issue sets.

- date: {date}
- machine: {about}
- command: `{command}`
- run: {run}

{table(figures)}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, within 90 s")
    size.add_argument("--full", action="store_true", help="rebuild over 1,000,000 events")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--only", action="append", default=[], choices=ORDER, metavar="NAME")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    # A TERM ends the run through its finally blocks: servers stopped, database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = Sizes.named("quick" if args.quick else "full" if args.full else "default")
    started, before = time.perf_counter(), load()
    with Workspace() as ws:
        about = machine(ws)
        print(f"bench: {sizes.mode} run on {about}", file=sys.stderr, flush=True)
        figures = Run(sizes, ws, args.only).all()
    run = f"{time.perf_counter() - started:.0f} s; {before} at the start, {load()} at the end"
    judge(figures)
    print(table(figures))
    print(f"\n{sizes.mode} run on {about}\n{run}")
    if args.markdown:
        command = shlex.join(["scripts/bench", *(argv if argv is not None else sys.argv[1:])])
        args.markdown.write_text(markdown(figures, about, command, run))
    if args.json:
        print(json_line(figures), flush=True)
    return 1 if any("error" in f for f in figures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
