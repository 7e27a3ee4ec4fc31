"""`coop-ledger migrate` moves a store's chain table into its events' rows, changing no hash.

The old form is written out here as the previous release created it: the events table
without link columns and the links in ``<events>_chain``. A history made by this release
is rewritten into that form (same positions, transaction ids and links), migrated, and
must then read exactly as it did before.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from ledger import Ledger, SplitPlan, StoreConfig
from ledger.application import Receipt
from ledger.checkpoint import chain_heads
from ledger.cli import main
from ledger.errors import StoreNeedsMigration
from ledger.export import export_history
from ledger.storage import Database
from ledger.verify import verify
from tests.integration.support import Clock, World

OLD_POSTGRES = [
    "CREATE TABLE {events} (originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
    " topic text, state bytea, notification_id bigserial,"
    " transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),"
    " PRIMARY KEY (originator_id, originator_version))",
    "CREATE INDEX {name}_log_idx ON {events} (transaction_id, notification_id)",
    "CREATE TABLE {events}_chain (originator_id uuid NOT NULL,"
    " originator_version bigint NOT NULL, prev_hash text NOT NULL, hash text NOT NULL,"
    " PRIMARY KEY (originator_id, originator_version))",
]
OLD_SQLITE = [
    "CREATE TABLE {events} (originator_id TEXT, originator_version INTEGER, topic TEXT,"
    " state BLOB, PRIMARY KEY (originator_id, originator_version))",
    "CREATE TABLE {events}_chain (originator_id TEXT NOT NULL,"
    " originator_version INTEGER NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
    " PRIMARY KEY (originator_id, originator_version))",
]


def build_history(world: World) -> tuple[list[UUID], list[Receipt]]:
    """A founded cooperative with work and a split-off, and three from a conversion."""
    ledger = world.ledger
    parent = world.found(size=6)
    work = ledger.take_work(parent, client_ref="client-1", actor=world.people[0]).value
    ledger.log_hours(parent, work, minutes=90, actor=world.people[0])
    plan = SplitPlan("De Schoonmakers Noord", tuple(world.people[4:6]))
    world.decide(parent, "split", split=plan)
    (child,) = ledger.get_cooperative(parent).children
    converted = ledger.convert_company(
        company="Schoon BV",
        sector="cleaning",
        employees=world.people[8:20],
        mentor_id=world.mentor,
        actor=world.facilitator,
    )
    coops = [parent, child, *(r.cooperative_id for r in converted)]
    receipts = [
        ledger.receipt(c, v) for c in coops for v in range(1, ledger.get_cooperative(c).version + 1)
    ]
    return coops, receipts


def rewrite_in_the_old_form(ledger: Ledger) -> None:
    """The events table recreated by the previous release's DDL, its links in a chain table."""
    db, name = ledger.db, ledger.recorder.events_table_name  # type: ignore[attr-defined]
    events, postgres = ledger.events_table, db.kind == "postgresql"
    position = "notification_id" if postgres else "rowid"
    xid = "transaction_id::text" if postgres else "'0'"
    with db.transaction() as cur:
        cur.execute(
            f"SELECT {position}, {xid}, originator_id, originator_version, topic, state,"
            f" prev_hash, hash FROM {events}"
        )
        rows = cur.fetchall()
        cur.execute(f"DROP TABLE {events}")
        for statement in OLD_POSTGRES if postgres else OLD_SQLITE:
            cur.execute(statement.format(events=events, name=name))
        for at, xid_text, coop, version, topic, state, prev, hash_ in rows:
            if postgres:
                cur.execute(
                    f"INSERT INTO {events} (notification_id, transaction_id, originator_id,"
                    " originator_version, topic, state) VALUES (?, ?::text::xid8, ?, ?, ?, ?)",
                    (at, xid_text, coop, version, topic, state),
                )
            else:
                cur.execute(
                    f"INSERT INTO {events} (rowid, originator_id, originator_version, topic,"
                    " state) VALUES (?, ?, ?, ?, ?)",
                    (at, coop, version, topic, state),
                )
            # The chain table keys every store by the canonical text of the id.
            cur.execute(
                f"INSERT INTO {events}_chain VALUES (?, ?, ?, ?)",
                (str(UUID(str(coop))), version, prev, hash_),
            )
        if postgres:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence(?, 'notification_id'),"
                f" (SELECT max(notification_id) FROM {events}))",
                (events,),
            )


def open_world(database_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[StoreConfig, World]:
    """The store the ``coop-ledger`` command will open, and a world of people in it."""
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", database_url)
    config, clock = StoreConfig.from_url(database_url), Clock()
    return config, World.create(Ledger(config, clock=clock), clock)


def exports(ledger: Ledger, coops: list[UUID]) -> dict[UUID, bytes]:
    return {c: b"".join(export_history(ledger, c, batch_size=7)) for c in coops}


def log(ledger: Ledger) -> list[Any]:
    return [
        (position, n.originator_id, n.originator_version)
        for position, n in ledger.event_log.read_log((0, 0), 10**6)
    ]


def test_migrate_moves_the_links_into_the_events_rows_and_exports_read_byte_for_byte_the_same(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config, world = open_world(database_url, monkeypatch)
    coops, receipts = build_history(world)
    before, heads, positions = (
        exports(world.ledger, coops),
        chain_heads(world.ledger),
        log(world.ledger),
    )
    rewrite_in_the_old_form(world.ledger)
    world.ledger.close()

    with pytest.raises(StoreNeedsMigration, match="coop-ledger migrate"):
        Ledger(config)
    assert main(["migrate"]) == 0
    assert f"{len(receipts)} chain links moved" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "nothing to do" in capsys.readouterr().out

    ledger = Ledger(config, clock=world.clock)
    with ledger.db.read() as cur:
        assert not ledger.db.table_exists(cur, f"{ledger.events_table}_chain")
    report = verify(ledger, receipts=receipts)
    assert report.ok, report.problems
    assert report.events == len(receipts)
    assert exports(ledger, coops) == before
    assert chain_heads(ledger) == heads
    assert log(ledger) == positions, "every event keeps its position in the log"

    # New commands chain on from the migrated links, on the parent and on its split-off.
    parent, child = coops[:2]
    for coop in (parent, child):
        head = ledger.receipt(coop, ledger.get_cooperative(coop).version).chain_head
        member = sorted(ledger.get_cooperative(coop).members)[0]
        result = ledger.take_work(coop, client_ref="after the migration", actor=member)
        line = exports(ledger, [coop])[coop].splitlines()[-1]
        assert f'"prev":"{head}"'.encode() in line
        assert f'"hash":"{result.receipt.chain_head}"'.encode() in line
    assert verify(ledger).ok
    ledger.close()


def test_migrate_refuses_a_chain_table_holding_links_of_no_stored_event_and_changes_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config, world = open_world(database_url, monkeypatch)
    coop = world.found(size=3)
    last = world.ledger.take_work(coop, client_ref="client-1", actor=world.people[0]).version
    events = world.ledger.events_table
    rewrite_in_the_old_form(world.ledger)
    with world.ledger.db.transaction() as cur:
        # The last event deleted by hand: its link is the only trace left of it.
        cur.execute(f"DELETE FROM {events} WHERE originator_version = ?", (last,))
    world.ledger.close()

    assert main(["migrate"]) == 2
    assert "holds links of events that are not stored (1)" in capsys.readouterr().err
    with pytest.raises(StoreNeedsMigration):
        Ledger(config)
    db = Database(config)
    with db.read() as cur:
        assert not {"prev_hash", "hash"} & db.columns(cur, events)
        cur.execute(f"SELECT count(*) FROM {events}_chain")
        assert cur.fetchone()[0] == last
    db.close()
