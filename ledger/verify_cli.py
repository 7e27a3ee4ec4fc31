"""``coop-ledger verify [--cooperative ID] [--receipts FILE]``: is the stored history whole?

Exit status 0 when every chain (and every receipt given) holds, 1 when a link is broken
(each broken cooperative's first bad link is named: cooperative, version, position, what),
2 for unusable input (a malformed receipts file, an unknown cooperative).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.application import Ledger, Receipt
from ledger.errors import CooperativeNotFound
from ledger.verify import verify

BROKEN = 1


def load_receipts(path: Path | str) -> list[Receipt]:
    """Receipts from JSON (an array, one receipt, or ``{"receipts": [...]}``) or NDJSON.

    Each receipt is what a command response carries: ``cooperative_id``, ``version``,
    ``chain_head``; other keys are ignored, so saved responses' receipts can be pasted in.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        # A ValueError, so coop-ledger reports it as unusable input (exit 2), not a traceback.
        raise ValueError(f"cannot read receipts: {error}") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: neither JSON nor NDJSON: {error}") from None
    if isinstance(data, dict):
        data = data.get("receipts", [data])
    try:
        return [
            Receipt(UUID(str(r["cooperative_id"])), int(r["version"]), str(r["chain_head"]))
            for r in data
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a list of receipts ({error!r})") from None


def run(args: argparse.Namespace) -> int:
    receipts = load_receipts(args.receipts) if args.receipts else []
    with Ledger() as ledger:
        report = verify(ledger, args.cooperative, receipts)
    if args.cooperative is not None and report.cooperatives == 0:
        raise CooperativeNotFound(f"no cooperative {args.cooperative}", field="cooperative")
    for problem in report.problems:
        print(f"broken: {problem}", file=sys.stderr)
    rate = report.events / report.seconds if report.seconds else 0.0
    verdict = "whole" if report.ok else f"BROKEN ({len(report.problems)} problems)"
    plural = "" if report.cooperatives == 1 else "s"
    print(
        f"{verdict}: {report.events} events of {report.cooperatives} cooperative{plural},"
        f" {report.receipts} receipts, in {report.seconds:.2f} s ({rate:,.0f} events/s)"
    )
    return 0 if report.ok else BROKEN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cooperative", type=UUID, metavar="ID", help="only this cooperative")
    parser.add_argument(
        "--receipts", type=Path, metavar="FILE", help="receipts members kept (JSON or NDJSON)"
    )
    parser.set_defaults(run=run)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``verify`` to ``coop-ledger``'s sub-commands (``build_parser``'s ``sub``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify", help="recompute the hash chains; exit 1 naming the first broken link"
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point (``python -m ledger.verify_cli``), errors handled as ``cli.main``."""
    parser = argparse.ArgumentParser(prog="coop-ledger verify", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (CooperativeNotFound, ValueError) as error:
        print(f"coop-ledger: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
