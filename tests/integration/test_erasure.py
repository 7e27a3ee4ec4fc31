"""Erasure: a forgotten person leaves no trace in a dump of the whole database.

Their name and contact are searched for as raw bytes and as hex (how SQLite dumps BLOBs
and PostgreSQL dumps bytea), in a logical dump of every table and, on SQLite, in the raw
database and WAL files too. Their pseudonymous id stays in the events, and every chain
still verifies, receipts kept before the erasure included.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

from ledger import FoundingMember, Ledger, SplitPlan, StoreConfig
from ledger.application import Receipt
from ledger.verify import verify
from projections.registry import all_projections
from projections.runner import ProjectionRunner
from tests.integration.support import Clock, World

ERASED = ("Zebulon Quaxwright-Fennimore", "zebulon.quaxwright@forget-me.example")
KEPT = ("Philippa Ostrowska-Dalby", "philippa.ostrowska@keep-me.example")


def needles(*texts: str) -> list[bytes]:
    return [form for t in texts for form in (t.encode(), t.encode().hex().encode())]


def run_history(world: World, erased: UUID, kept: UUID) -> list[Receipt]:
    """Found, admit, work, invoices and a split that moves the person to be erased."""
    ledger, mentor = world.ledger, world.mentor
    others = world.people[:4]
    coop = ledger.found_cooperative(
        name="De Vergeetachtigen",
        sector="cleaning",
        members=[FoundingMember(p, "group 1") for p in (erased, kept, *others)],
        mentor_id=mentor,
        actor=world.facilitator,
    ).cooperative_id
    ledger.admit_founding_member(coop, world.people[4], actor=mentor, conversation_group="g2")
    world.decide(coop, "admit_member", subject=world.people[5])
    receipts = []
    for member in (erased, kept):
        work = ledger.take_work(coop, client_ref=f"client-{member}", actor=member).value
        receipts.append(ledger.log_hours(coop, work, minutes=120, actor=member).receipt)
        number = ledger.issue_invoice(
            coop, client_ref=f"client-{member}", hourly_rate_cents=4200, actor=mentor
        ).value
        receipts.append(
            ledger.register_payment(coop, number, amount_cents=4200, actor=mentor).receipt
        )
    world.clock.advance(days=1)
    world.decide(coop, "split", split=SplitPlan("De Vergeetachtigen Zuid", (erased, others[0])))
    (child,) = ledger.get_cooperative(coop).children
    work = ledger.take_work(child, client_ref="client-z", actor=erased).value
    receipts.append(ledger.log_hours(child, work, minutes=45, actor=erased).receipt)
    return receipts


def dump_sqlite(path: Path) -> dict[str, bytes]:
    """A logical dump over a fresh connection, then the raw files, after a full checkpoint."""
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "a reader kept the WAL from being checkpointed"
        dumps = {"iterdump": "\n".join(conn.iterdump()).encode()}
    finally:
        conn.close()
    for suffix in ("", "-wal", "-journal"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            dumps[f"raw {file.name}"] = file.read_bytes()
    return dumps


def dump_postgres(conninfo: str, schema: str) -> dict[str, bytes]:
    """pg_dump of the whole database when on PATH; COPY of every table in the schema always."""
    dumps: dict[str, bytes] = {}
    pg_dump = shutil.which("pg_dump")
    if pg_dump is not None:
        done = subprocess.run(
            [pg_dump, "--no-owner", "--dbname", conninfo], capture_output=True, check=False
        )
        # An older pg_dump refuses a newer server; then COPY below is the dump.
        if b"server version mismatch" not in done.stderr:
            assert done.returncode == 0, done.stderr.decode()
            dumps["pg_dump"] = done.stdout
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            (schema,),
        ).fetchall()
        assert tables, f"no tables in schema {schema}"
        copied = bytearray()
        for (table,) in tables:
            statement = sql.SQL("COPY {}.{} TO STDOUT").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            with conn.cursor().copy(statement) as copy:
                for block in copy:
                    copied += block
        dumps["COPY"] = bytes(copied)
    return dumps


def test_an_erased_person_is_in_no_dump_of_the_database_and_every_chain_still_verifies(
    world: World,
) -> None:
    ledger = world.ledger
    erased, kept = (ledger.register_person(*p).id for p in (ERASED, KEPT))
    receipts = run_history(world, erased, kept)
    runner = ProjectionRunner(ledger, all_projections())
    runner.catch_up()

    ledger.erase_person(erased)
    runner.catch_up()

    config = ledger.config
    if config.kind == "sqlite":
        dumps = dump_sqlite(Path(config.sqlite_path))
    else:
        dumps = dump_postgres(config.conninfo, config.schema)
    for source, data in dumps.items():
        for needle in needles(*ERASED):
            assert needle not in data, f"{source} still holds {needle!r}"
    logical = [data for source, data in dumps.items() if not source.startswith("raw")]
    for data in logical:
        for needle in (*(k.encode() for k in KEPT), str(erased).encode()):
            assert needle in data, f"the dump lost {needle!r}"
    assert ledger.people.get(erased).erased
    report = verify(ledger, receipts=receipts)
    assert report.ok, report.problems
    assert report.cooperatives == 2


def test_an_erased_name_leaves_the_raw_sqlite_files_without_waiting_for_a_checkpoint(
    sqlite_url: str,
) -> None:
    clock = Clock()
    with Ledger(StoreConfig.from_url(sqlite_url), clock=clock) as ledger:
        world = World.create(ledger, clock)
        erased, kept = (ledger.register_person(*p).id for p in (ERASED, KEPT))
        run_history(world, erased, kept)
        ledger.erase_person(erased)
        path = ledger.config.sqlite_path
        raw = b"".join(
            Path(f"{path}{s}").read_bytes() for s in ("", "-wal") if Path(f"{path}{s}").exists()
        )
        for needle in needles(*ERASED):
            assert needle not in raw
