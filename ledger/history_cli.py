"""``coop-ledger state`` and ``coop-ledger diff``: time travel from the command line.

Both print JSON read from the ledger's events alone (see ``ledger.history``), so what
they show in a dispute does not depend on a projection being up to date.
"""

from __future__ import annotations

import argparse
from typing import Any
from uuid import UUID

import orjson

from ledger.application import Ledger
from ledger.history import Moment, diff, state_at

MOMENTS = """\
A moment is one of:
  v12                    the cooperative's version 12
  p340                   the ledger's position 340: the cooperative's last event at or before it
  2026-03-01T12:00:00Z   a time with its zone: the last event at or before it
  latest                 the cooperative's latest version (the default)
A moment before the founding, or one the ledger has not reached yet, is refused."""


def _print(value: Any) -> None:
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def run_state(args: argparse.Namespace) -> int:
    moment = Moment.parse(args.as_of, "--as-of")
    with Ledger() as ledger:
        _print(state_at(ledger, args.cooperative, moment))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    start, end = Moment.parse(args.start, "FROM"), Moment.parse(args.end, "TO")
    with Ledger() as ledger:
        _print(diff(ledger, args.cooperative, start, end))
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``state`` and ``diff`` to the ``coop-ledger`` command's sub-commands."""
    formatter = argparse.RawDescriptionHelpFormatter
    state = subparsers.add_parser(
        "state",
        help="a cooperative's state as of a moment (JSON)",
        description="Members, roles, rules, open proposals with their electorate and votes,"
        " invoices and open work, as they stood at a moment.\n\n" + MOMENTS,
        formatter_class=formatter,
    )
    state.add_argument("cooperative", type=UUID, metavar="COOP", help="the cooperative's id")
    state.add_argument("--as-of", default="latest", metavar="MOMENT", help="see below")
    state.set_defaults(run=run_state)
    changes = subparsers.add_parser(
        "diff",
        help="what changed in a cooperative between two moments (JSON)",
        description="Members joined and left, roles started and ended, rules changed,"
        " decisions taken, invoices issued and settled, work moved: each change with the"
        " events that caused it.\n\n" + MOMENTS,
        formatter_class=formatter,
    )
    changes.add_argument("cooperative", type=UUID, metavar="COOP", help="the cooperative's id")
    changes.add_argument("start", metavar="FROM", help="the earlier moment")
    changes.add_argument("end", metavar="TO", nargs="?", default="latest", help="the later one")
    changes.set_defaults(run=run_diff)
