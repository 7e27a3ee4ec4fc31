"""The ``coop-ledger`` command. Every sub-command reads the store from COOP_LEDGER_DATABASE_URL."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ledger.application import Ledger
from ledger.errors import LedgerError
from ledger.storage import StoreConfig


def _init(_: argparse.Namespace) -> int:
    with Ledger() as ledger:
        print(f"store ready: {ledger.config.kind} ({ledger.config.url})")
    return 0


def _convert(args: argparse.Namespace) -> int:
    with Ledger() as ledger:
        facilitator = ledger.register_person("Facilitator")
        mentor = ledger.register_person("Mentor")
        employees = [
            ledger.register_person(f"Employee {n}").id for n in range(1, args.employees + 1)
        ]
        results = ledger.convert_company(
            company=args.company,
            sector=args.sector,
            employees=employees,
            mentor_id=mentor.id,
            actor=facilitator.id,
        )
        for result in results:
            coop = ledger.get_cooperative(result.cooperative_id)
            print(f"{coop.id}  {coop.name}  {len(coop.members)} members")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coop-ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the store's tables").set_defaults(run=_init)
    convert = sub.add_parser("convert", help="convert a company's employees into cooperatives")
    convert.add_argument("--company", default="Schoon BV")
    convert.add_argument("--sector", default="cleaning")
    convert.add_argument("--employees", type=int, default=200)
    convert.set_defaults(run=_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        StoreConfig.from_env()
        code: int = args.run(args)
    except (LedgerError, ValueError) as error:
        print(f"coop-ledger: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
