"""The ``coop-ledger`` command. Every sub-command reads the store from COOP_LEDGER_DATABASE_URL."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence

from ledger import export_cli, history_cli, verify_cli
from ledger.application import Ledger
from ledger.errors import LedgerError
from ledger.storage import StoreConfig


def _init(_: argparse.Namespace) -> int:
    with Ledger() as ledger:
        print(f"store ready: {ledger.config.kind} ({ledger.config.url})")
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from ledger.migration import migrate_links
    from ledger.pg_recorder import LockFreePostgresRecorder, migrate_events_table
    from projections.runner import migrate_tracking

    changed = []
    # No table creation and no schema check: the old tables are what this command mends.
    with Ledger(env={"CREATE_TABLE": "n"}, check_store=False) as ledger:
        if isinstance(ledger.recorder, LockFreePostgresRecorder) and migrate_events_table(
            ledger.recorder
        ):
            changed.append("events: transaction ids (earlier events keep their order as id 0)")
        moved = migrate_links(ledger.db, getattr(ledger.recorder, "events_table_name"))  # noqa: B009
        if moved is not None:
            changed.append(f"events: {moved} chain links moved into their events' rows")
        if migrate_tracking(ledger.db):
            changed.append("projection tracking: log positions (transaction id, notification id)")
    with Ledger():
        pass  # creates whatever the release adds that is still missing
    for line in changed or ["nothing to do: the store is up to date"]:
        print(f"migrated {line}" if changed else line)
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


def _demo(args: argparse.Namespace) -> int:
    from ledger.demo import load_demo

    config = StoreConfig.from_env()
    with Ledger(config) as ledger:
        held = ledger.recorder.max_notification_id() or 0
    # The demo tells a story from its beginning; mixed into other history it would mislead.
    if held and not args.force:
        print(
            f"coop-ledger: the store already holds events (up to position {held}); the demo "
            "loads into an empty store (--force adds it anyway)",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    summary = load_demo(config, seed=args.seed)
    seconds = time.perf_counter() - started
    for name, coop_id in summary.cooperatives.items():
        print(f"{coop_id}  {name}")
    print(f"facilitator {summary.facilitator_id}")
    print(
        f"{len(summary.cooperatives)} cooperatives, {summary.events} events "
        f"(last position {summary.last_position}) in {seconds:.1f} s"
    )
    return 0


def _project(args: argparse.Namespace) -> int:
    from projections.registry import all_projections
    from projections.runner import ProjectionRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with Ledger() as ledger:
        runner = ProjectionRunner(ledger, all_projections(), batch_size=args.batch_size)
        if args.once:
            print(f"applied {runner.catch_up()} events")
            return 0
        signal.signal(signal.SIGTERM, lambda *_: runner.stop())
        print(f"following {ledger.config.url}; Ctrl-C to stop", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            runner.run_forever(poll_interval=args.poll_interval)
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from projections.rebuild import rebuild
    from projections.registry import by_names
    from projections.runner import ProjectionRunner

    with Ledger() as ledger:
        projections = by_names(args.names)
        ProjectionRunner(ledger, projections)  # creates what is missing
        reached = rebuild(
            ledger,
            ledger.db,
            projections,
            batch_size=args.batch_size,
            progress=lambda p: print(f"\r{p}", end="", file=sys.stderr, flush=True),
        )
        names = ", ".join(p.name for p in projections)
        print(f"\n{names}: switched to the rebuilt tables at position {reached.high}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from api.serve import serve

    if args.demo:
        from ledger.demo import load_demo

        with Ledger() as ledger:
            empty = not ledger.recorder.max_notification_id()
        if empty:
            print("loading the demo story (a company of 200, a year of cooperation) ...")
            summary = load_demo(StoreConfig.from_env())
            print(f"demo loaded: {summary.events} events")
        else:
            print("the store already holds events; not loading the demo again")
    return serve(args.host, args.port, args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coop-ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the store's tables").set_defaults(run=_init)
    sub.add_parser(
        "migrate", help="upgrade a store made by an earlier release (run with the service stopped)"
    ).set_defaults(run=_migrate)
    convert = sub.add_parser("convert", help="convert a company's employees into cooperatives")
    convert.add_argument("--company", default="Schoon BV")
    convert.add_argument("--sector", default="cleaning")
    convert.add_argument("--employees", type=int, default=200)
    convert.set_defaults(run=_convert)
    demo = sub.add_parser("demo", help="load the seed story: a company of 200, a year of work")
    demo.add_argument("--seed", type=int, default=2026, help="the same seed tells the same story")
    demo.add_argument("--force", action="store_true", help="load even if the store holds events")
    demo.set_defaults(run=_demo)
    project = sub.add_parser("project", help="run the projections as their own process")
    project.add_argument("--once", action="store_true", help="catch up, then exit")
    project.add_argument("--batch-size", type=int, default=500)
    project.add_argument("--poll-interval", type=float, default=0.05)
    project.set_defaults(run=_project)
    serve = sub.add_parser("serve", help="start the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=None, help="PostgreSQL only")
    serve.add_argument("--demo", action="store_true", help="load the demo story first")
    serve.set_defaults(run=_serve)
    verify_cli.add_parser(sub)
    history_cli.add_parser(sub)
    export_cli.add_parsers(sub)
    rebuild = sub.add_parser("rebuild", help="rebuild projections (all, or those named)")
    rebuild.add_argument("names", nargs="*", metavar="NAME")
    rebuild.add_argument("--batch-size", type=int, default=2000)
    rebuild.set_defaults(run=_rebuild)
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
