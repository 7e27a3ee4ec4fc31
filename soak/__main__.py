"""``python -m soak``: see soak/__init__.py; ``scripts/soak --help`` lists the options."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

from soak.report import passed
from soak.run import Options, soak


def parse(argv: Sequence[str] | None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a run of at most 90 seconds")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--seed", type=int, help="draw the faults and the load from this seed")
    parser.add_argument("--duration", type=float, help="seconds of load (default 40 / 240)")
    parser.add_argument("--kills", type=int, help="SIGKILLs (default 10 / 48)")
    parser.add_argument("--db-restarts", type=int, help="PostgreSQL restarts (default 2 / 6)")
    parser.add_argument(
        "--kill-in-outage",
        type=int,
        help="of the restarts (the last ones), how many also kill a worker while the database"
        " is down for ~10 s (default 0 / 1)",
    )
    parser.add_argument(
        "--outage", type=float, help="seconds each plain restart keeps PostgreSQL down"
    )
    parser.add_argument("--clients", type=int, help="concurrent HTTP clients (default 16)")
    parser.add_argument("--workers", type=int, help="uvicorn workers (default 2)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the service's log")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "seed": args.seed,
            "duration_s": args.duration,
            "kills": args.kills,
            "db_restarts": args.db_restarts,
            "kill_in_outage": args.kill_in_outage,
            "outage_s": args.outage,
            "clients": args.clients,
            "workers": args.workers,
            "keep_logs": args.keep_logs or None,
        }.items()
        if value is not None
    }
    options = Options.quick(**overrides) if args.quick else Options.full(**overrides)
    if options.kill_in_outage > options.db_restarts:
        options = Options(**{**vars(options), "kill_in_outage": options.db_restarts})
    return options, args.json


def main(argv: Sequence[str] | None = None) -> int:
    options, as_json = parse(argv)
    # SIGTERM unwinds like Ctrl-C, so the cluster and the service are always removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary = soak(options)
    if as_json:
        print(json.dumps(summary), flush=True)
    else:
        for key, value in summary.items():
            print(f"{key:>32}: {value}")
    return 0 if passed(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
