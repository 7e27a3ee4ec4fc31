"""CPU per command, one writer: the client's and PostgreSQL's, behind BENCHMARKS.md's ceilings.

    .venv/bin/python scripts/cpu_per_command.py --url postgresql://postgres@127.0.0.1/db

Runs the bench's command mix through the Ledger and reports, per command, the client's
CPU time (``time.process_time``), the CPU time of every ``postgres`` process on this
machine (``/proc``, so only meaningful with the server local and otherwise idle) and
the wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ledger_figures import open_ledger
from bench.mix import LedgerWriter


def server_cpu_s() -> float:
    """CPU seconds used so far by every process named postgres."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if comm.startswith("postgres"):
            ticks += int(stat[11]) + int(stat[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL URL (its tables are used)")
    parser.add_argument("--commands", type=int, default=4000)
    args = parser.parse_args()
    writer = LedgerWriter(open_ledger(args.url))
    for _ in range(300):  # warm the caches and the pool
        writer.command()
    client, wall, server = time.process_time(), time.perf_counter(), server_cpu_s()
    for _ in range(args.commands):
        writer.command()
    n = args.commands
    client = (time.process_time() - client) / n * 1e6
    server = (server_cpu_s() - server) / n * 1e6
    wall = (time.perf_counter() - wall) / n * 1e6
    print(f"{1e6 / wall:,.0f} commands/s; per command: client CPU {client:.0f} us,")
    print(f"server CPU {server:.0f} us, wall {wall:.0f} us")


if __name__ == "__main__":
    main()
