"""Verify against tampered stores: every mutation of the stored rows is found where it starts.

The mutations are SQL run straight against the events table (each row an event and its
chain link), as an intruder
with database access would. Each is undone by putting the cooperative's original rows
back (ids and positions included), so hundreds run on one history.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger import SplitPlan
from ledger.application import Receipt
from ledger.chain import link_hash
from ledger.verify import (
    BAD_VERSION,
    LINK_ALTERED,
    LINK_MISSING,
    MISSING_EVENT,
    OUT_OF_ORDER,
    PREV_MISMATCH,
    RECEIPT_MISMATCH,
    RECEIPT_VERSION_MISSING,
    STATE_ALTERED,
    TOPIC_ALTERED,
    digest,
    verify,
)
from ledger.verify_cli import load_receipts, main
from tests.integration.support import World

MUTATIONS = 300


@dataclass
class History:
    parent: UUID
    child: UUID
    converted: list[UUID]
    receipts: list[Receipt]

    @property
    def cooperatives(self) -> list[UUID]:
        return [self.parent, self.child, *self.converted]


def build_history(world: World) -> History:
    """A founded cooperative with work, invoices and a split; two from one conversion."""
    ledger, mentor = world.ledger, world.mentor
    parent = world.found(size=6)
    members = world.people[:6]
    results = []
    for n, member in enumerate(members[:3]):
        work = ledger.take_work(parent, client_ref=f"client-{n}", actor=member).value
        for day in range(3):
            world.clock.advance(days=1)
            results.append(ledger.log_hours(parent, work, minutes=60 + day, actor=member))
    number = ledger.issue_invoice(
        parent, client_ref="client-0", hourly_rate_cents=4000, actor=mentor
    ).value
    results.append(ledger.register_payment(parent, number, amount_cents=1000, actor=mentor))
    world.decide(parent, "split", split=SplitPlan("De Schoonmakers Noord", tuple(members[4:])))
    (child,) = ledger.get_cooperative(parent).children
    results.append(ledger.log_hours(parent, work_of(world, parent), minutes=30, actor=members[0]))
    converted = ledger.convert_company(
        company="Schoon BV",
        sector="cleaning",
        employees=world.people[8:30],
        mentor_id=mentor,
        actor=world.facilitator,
    )
    for coop in [child, *(r.cooperative_id for r in converted)]:
        worker = sorted(ledger.get_cooperative(coop).members)[0]
        work = ledger.take_work(coop, client_ref="client-9", actor=worker).value
        for minutes in range(15, 90, 15):
            world.clock.advance(hours=20)
            results.append(ledger.log_hours(coop, work, minutes=minutes, actor=worker))
    return History(
        parent, child, [r.cooperative_id for r in converted], [r.receipt for r in results]
    )


def work_of(world: World, coop: UUID) -> UUID:
    return next(w.id for w in world.ledger.get_cooperative(coop).work.values())


class Store:
    """The events table as SQL sees it (``?`` placeholders on both stores)."""

    def __init__(self, world: World) -> None:
        self.ledger = world.ledger
        self.db = world.ledger.db
        self.sqlite = self.db.kind == "sqlite"
        self.events = self.ledger.events_table
        self.position = "rowid" if self.sqlite else "notification_id"

    def key(self, coop: UUID) -> str:
        return self.ledger.event_key(coop)

    def execute(self, sql: str, *params: Any) -> None:
        with self.db.transaction() as cur:
            cur.execute(sql, params)

    def events_of(self, coop: UUID) -> list[tuple[Any, ...]]:
        """(position, version, topic, state), by version."""
        with self.db.read() as cur:
            cur.execute(
                f"SELECT {self.position}, originator_version, topic, state FROM {self.events}"
                " WHERE originator_id = ? ORDER BY originator_version",
                (self.key(coop),),
            )
            return [tuple(r) for r in cur.fetchall()]

    def links_of(self, coop: UUID) -> list[tuple[Any, ...]]:
        """(version, prev_hash, hash), by version."""
        with self.db.read() as cur:
            cur.execute(
                f"SELECT originator_version, prev_hash, hash FROM {self.events}"
                " WHERE originator_id = ? ORDER BY originator_version",
                (self.key(coop),),
            )
            return [tuple(r) for r in cur.fetchall()]

    def position_at(self, coop: UUID, version: int) -> int | None:
        return next((e[0] for e in self.events_of(coop) if e[1] == version), None)

    def set_event(self, coop: UUID, version: int, column: str, value: Any) -> None:
        """Set ``column`` of the row of ``coop`` at ``version`` (an event's or its link's)."""
        self.execute(
            f"UPDATE {self.events} SET {column} = ?"
            " WHERE originator_id = ? AND originator_version = ?",
            value,
            self.key(coop),
            version,
        )

    def delete_events(self, coop: UUID, versions: str, version: int) -> None:
        """Delete the events whose version is ``versions`` (an operator: = or >) ``version``."""
        where = f"originator_id = ? AND originator_version {versions} ?"
        self.execute(f"DELETE FROM {self.events} WHERE {where}", self.key(coop), version)

    def restore(
        self, coop: UUID, events: list[tuple[Any, ...]], links: list[tuple[Any, ...]]
    ) -> None:
        # Pipelined on PostgreSQL: one round trip, not one per row.
        with self.db.transaction(pipeline=True) as cur:
            cur.execute(f"DELETE FROM {self.events} WHERE originator_id = ?", (self.key(coop),))
            for (position, version, topic, state), (_, prev, hash_) in zip(
                events, links, strict=True
            ):
                cur.execute(
                    f"INSERT INTO {self.events} ({self.position}, originator_id,"
                    " originator_version, topic, state, prev_hash, hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (position, self.key(coop), version, topic, state, prev, hash_),
                )


@dataclass
class Target:
    """The cooperative a mutation tampers with, and its rows as they were."""

    coop: UUID
    events: list[tuple[Any, ...]]
    links: list[tuple[Any, ...]]


# A mutation tampers with one cooperative; it returns the version of the first bad link
# and what verify should call it.
Mutation = Callable[[random.Random, Store, Target], tuple[int, str]]


def flip_a_payload_byte(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    _, version, _, state = rng.choice(target.events)
    at = rng.randrange(len(state))
    flipped = state[:at] + bytes([state[at] ^ rng.randrange(1, 256)]) + state[at + 1 :]
    store.set_event(target.coop, version, "state", flipped)
    return version, STATE_ALTERED


def change_the_topic(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    events = target.events
    _, version, topic, _ = rng.choice(events)
    others = sorted({e[2] for e in events} - {topic})
    # Another event's valid topic reads as altered state: the hash cannot tell them apart.
    if others and rng.random() < 0.5:
        store.set_event(target.coop, version, "topic", rng.choice(others))
        return version, STATE_ALTERED
    store.set_event(target.coop, version, "topic", topic + rng.choice(["X", "s", "V2"]))
    return version, TOPIC_ALTERED


def delete_an_event(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    # Not the last: its link goes with it, and a shorter whole chain is left (only a
    # receipt shows it; see the tail test below).
    version = rng.choice(target.events[:-1])[1]
    store.delete_events(target.coop, "=", version)
    return version, MISSING_EVENT


def swap_two_payloads(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    events = target.events
    first, second = sorted(rng.sample(events, 2), key=lambda e: e[1])
    while first[3] == second[3]:
        first, second = sorted(rng.sample(events, 2), key=lambda e: e[1])
    store.set_event(target.coop, first[1], "state", second[3])
    store.set_event(target.coop, second[1], "state", first[3])
    return first[1], STATE_ALTERED


def swap_two_versions(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    low, high = sorted(rng.sample([e[1] for e in target.events], 2))
    for old, new in ((low, -1), (high, low), (-1, high)):  # through -1: versions are unique
        store.set_event(target.coop, old, "originator_version", new)
    return low, OUT_OF_ORDER


def tamper_with_a_link(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    links = target.links
    version = rng.choice(links)[0]
    where = "WHERE originator_id = ? AND originator_version = ?"
    forged = hashlib.sha256(rng.randbytes(8)).hexdigest()
    kind = rng.choice(["hash", "prev_hash", "delete"])
    if kind == "delete":
        store.execute(
            f"UPDATE {store.events} SET prev_hash = NULL, hash = NULL {where}",
            store.key(target.coop),
            version,
        )
        return version, LINK_MISSING
    store.set_event(target.coop, version, kind, forged)
    if kind == "prev_hash":
        return version, PREV_MISMATCH
    # A changed last hash has no next link to show that the event itself is intact.
    return version, LINK_ALTERED if version < links[-1][0] else STATE_ALTERED


def forge_an_event(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    events = target.events
    _, _, topic, state = rng.choice(events)
    # Appended after the last (it has no link), or slipped in before the first.
    version, what = rng.choice([(events[-1][1] + 1, LINK_MISSING), (0, BAD_VERSION)])
    store.execute(
        f"INSERT INTO {store.events} (originator_id, originator_version, topic, state)"
        " VALUES (?, ?, ?, ?)",
        store.key(target.coop),
        version,
        topic,
        state,
    )
    return version, what


def store_another_type(rng: random.Random, store: Store, target: Target) -> tuple[int, str]:
    _, version, _, state = rng.choice(target.events)
    column, value, what = rng.choice(
        [("state", None, STATE_ALTERED), ("topic", None, TOPIC_ALTERED)]
        # SQLite keeps whatever type it is given: the payload as TEXT. (As TEXT with the same
        # bytes it would still verify: the content is unchanged.)
        + [("state", state.decode("latin-1") + " ", STATE_ALTERED)] * store.sqlite
    )
    store.set_event(target.coop, version, column, value)
    return version, what


MUTATION_KINDS: list[Mutation] = [
    flip_a_payload_byte,
    change_the_topic,
    delete_an_event,
    swap_two_payloads,
    swap_two_versions,
    tamper_with_a_link,
    forge_an_event,
    store_another_type,
]


def test_a_genuine_history_verifies_with_every_receipt_its_commands_returned(
    world: World,
) -> None:
    history = build_history(world)
    report = verify(world.ledger, receipts=history.receipts)
    assert report.ok, report.problems
    store = Store(world)
    assert report.cooperatives == len(history.cooperatives)
    assert report.events == sum(len(store.events_of(c)) for c in history.cooperatives)
    assert report.receipts == len(history.receipts)
    alone = verify(world.ledger, history.child, history.receipts)
    assert alone.ok
    kept_for_child = [r for r in history.receipts if r.cooperative_id == history.child]
    assert (alone.cooperatives, alone.receipts) == (1, len(kept_for_child))


def test_every_random_mutation_is_caught_at_its_first_bad_version_and_position(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pages: cooperatives and their links straddle page boundaries.
    monkeypatch.setattr("ledger.verify.BATCH", 16)
    history = build_history(world)
    store = Store(world)
    rng = random.Random(20260105)
    started, seen = time.perf_counter(), dict.fromkeys(MUTATION_KINDS, 0)
    for n in range(MUTATIONS):
        coop = rng.choice(history.cooperatives)
        mutate = rng.choice(MUTATION_KINDS)
        events, links = store.events_of(coop), store.links_of(coop)
        version, what = mutate(rng, store, Target(coop, events, links))
        report = verify(world.ledger)
        position = store.position_at(coop, version)  # None where the event is gone
        store.restore(coop, events, links)
        label = f"mutation {n}: {mutate.__name__} on {coop} at version {version}"
        own = [b for b in report.breaks if b.cooperative_id == coop]
        assert len(own) == 1, f"{label} not caught: {report.problems}"
        assert own[0].version == version, f"{label}: {own[0]}"
        assert own[0].position == position, f"{label}: {own[0]}"
        assert own[0].what == what, f"{label}: {own[0]}"
        # Tampering with the parent's link at the split also unties its child's first link.
        others = [b for b in report.breaks if b.cooperative_id != coop]
        assert all(
            (coop, b.cooperative_id, b.version, b.what)
            == (history.parent, history.child, 1, PREV_MISMATCH)
            for b in others
        ), f"{label}: {others}"
        seen[mutate] += 1
    elapsed = time.perf_counter() - started
    assert verify(world.ledger, receipts=history.receipts).ok, "every mutation was undone"
    assert min(seen.values()) >= 15, seen
    assert elapsed < 60, f"{MUTATIONS} mutations took {elapsed:.1f} s"


def rewrite_consistently(store: Store, coop: UUID, version: int) -> None:
    """Alter the event at ``version`` and recompute every following link, as an insider could."""
    events, links = store.events_of(coop), store.links_of(coop)
    state = events[version - 1][3]
    store.set_event(coop, version, "state", state.replace(b"0", b"1", 1) + b" ")
    prev = links[version - 1][1]
    for _, v, topic, new_state in store.events_of(coop)[version - 1 :]:
        head = link_hash(prev, coop, v, topic, new_state)
        store.execute(
            f"UPDATE {store.events} SET prev_hash = ?, hash = ?"
            " WHERE originator_id = ? AND originator_version = ?",
            prev,
            head,
            store.key(coop),
            v,
        )
        prev = head


def test_the_verifier_hashes_exactly_as_the_chain_writes() -> None:
    rng = random.Random(7)
    for _ in range(200):
        coop, version = uuid4(), rng.randint(1, 10**9)
        prev, topic = rng.randbytes(32).hex(), f"ledger.cooperative:Cooperative.E{rng.random()}"
        state = rng.randbytes(rng.randint(0, 300))
        assert digest(prev, str(coop), version, topic, state) == link_hash(
            prev, coop.hex, version, topic, state
        )


def test_a_consistent_rewrite_passes_the_chain_check_but_not_a_receipt_kept_before_it(
    world: World,
) -> None:
    history = build_history(world)
    coop = history.converted[0]
    last = world.ledger.get_cooperative(coop).version
    assert last >= 2
    kept = [world.ledger.receipt(coop, v) for v in range(1, last + 1)]
    rewrite_consistently(Store(world), coop, 2)
    assert verify(world.ledger).ok, "links recomputed in the database hold as a chain"
    report = verify(world.ledger, receipts=kept)
    assert [(f.cooperative_id, f.version, f.what) for f in report.receipt_failures] == [
        (coop, v, RECEIPT_MISMATCH) for v in range(2, last + 1)
    ]
    assert report.receipt_failures[0].position == Store(world).position_at(coop, 2)
    assert not report.breaks


def test_a_tail_cut_off_with_its_links_is_caught_by_a_receipt_for_a_version_now_gone(
    world: World,
) -> None:
    history = build_history(world)
    store, coop = Store(world), history.child
    last = world.ledger.get_cooperative(coop).version
    kept = world.ledger.receipt(coop, last)
    store.delete_events(coop, "=", last)
    assert verify(world.ledger).ok, "a clean cut leaves a shorter, whole chain"
    failures = verify(world.ledger, receipts=[kept]).receipt_failures
    assert [(f.cooperative_id, f.version, f.what) for f in failures] == [
        (coop, last, RECEIPT_VERSION_MISSING)
    ]


def test_rewriting_a_parent_before_its_split_unties_the_first_link_of_its_child(
    world: World,
) -> None:
    history = build_history(world)
    rewrite_consistently(Store(world), history.parent, 3)
    report = verify(world.ledger)
    assert [(b.cooperative_id, b.version, b.what) for b in report.breaks] == [
        (history.child, 1, PREV_MISMATCH)
    ]


def test_receipts_load_from_a_json_array_an_object_or_ndjson(tmp_path: Path) -> None:
    receipts = [Receipt(uuid4(), n, f"{n:064x}") for n in (1, 2)]
    rows = [
        {
            "cooperative_id": str(r.cooperative_id),
            "version": r.version,
            "chain_head": r.chain_head,
            "extra": 1,
        }
        for r in receipts
    ]
    files = {
        "array.json": json.dumps(rows),
        "object.json": json.dumps({"receipts": rows}),
        "lines.ndjson": "\n".join(json.dumps(r) for r in rows) + "\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert load_receipts(tmp_path / name) == receipts, name
    (tmp_path / "one.json").write_text(json.dumps(rows[0]))
    assert load_receipts(tmp_path / "one.json") == receipts[:1]
    (tmp_path / "bad.json").write_text('[{"version": 1}]')
    with pytest.raises(ValueError, match="not a list of receipts"):
        load_receipts(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot read receipts"):
        load_receipts(tmp_path / "missing.json")


def test_the_verify_command_exits_zero_when_whole_and_names_the_first_broken_link(
    world: World,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", database_url)
    history = build_history(world)
    receipts = tmp_path / "receipts.ndjson"
    receipts.write_text("".join(json.dumps(vars(r), default=str) + "\n" for r in history.receipts))
    assert main(["--receipts", str(receipts)]) == 0
    assert capsys.readouterr().out.startswith("whole:")
    store = Store(world)
    target = Target(history.child, store.events_of(history.child), [])
    flip_a_payload_byte(random.Random(1), store, target)
    broken = verify(world.ledger).breaks[0]
    assert main(["--cooperative", str(history.child)]) == 1
    err = capsys.readouterr().err
    assert f"broken: cooperative {history.child} version {broken.version}" in err
    assert f"position {broken.position}: state altered" in err
    assert main(["--cooperative", str(uuid4())]) == 2
    assert main(["--receipts", str(tmp_path / "missing.ndjson")]) == 2
