"""``coop-ledger export COOP`` and ``coop-ledger checkpoint``: proofs to keep outside the service.

Wired into ``ledger.cli`` by ``add_parsers(subparsers)``. Both write to standard output
unless ``--output FILE`` is given; a file is written under a temporary name and renamed
when complete, so a failed run never leaves what looks like a finished export.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from uuid import UUID

import orjson

from ledger.application import Ledger
from ledger.checkpoint import record_checkpoint
from ledger.export import export_history


@contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _write(path: str | None, chunks: Iterable[bytes]) -> None:
    with _output(path) as out:
        for chunk in chunks:
            out.write(chunk)


def _export(args: argparse.Namespace) -> int:
    with Ledger() as ledger:
        _write(args.output, export_history(ledger, args.cooperative))
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    with Ledger() as ledger:
        number, checkpoint = record_checkpoint(ledger)
    _write(args.output, [orjson.dumps(checkpoint, option=orjson.OPT_INDENT_2) + b"\n"])
    print(
        f"checkpoint {number}: {len(checkpoint['heads'])} cooperatives, root {checkpoint['root']}",
        file=sys.stderr,
    )
    return 0


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` and ``checkpoint`` to the ``coop-ledger`` sub-commands."""
    export = subparsers.add_parser(
        "export",
        help="stream a cooperative's full history, with its chain links, as NDJSON",
        description="Check the result with scripts/verify_export.py.",
    )
    export.add_argument("cooperative", type=UUID, metavar="COOP", help="the cooperative's id")
    export.add_argument("--output", "-o", metavar="FILE", help="default: standard output")
    export.set_defaults(run=_export)
    checkpoint = subparsers.add_parser(
        "checkpoint",
        help="sign a digest over every cooperative's chain head, and keep it",
        description="Members and facilitators keep the JSON written; see ledger/checkpoint.py.",
    )
    checkpoint.add_argument("--output", "-o", metavar="FILE", help="default: standard output")
    checkpoint.set_defaults(run=_checkpoint)
