"""Exports and signed checkpoints, held against the standalone verifier (scripts/verify_export.py).

The verifier is what an outside reader runs in a dispute: a genuine export must pass it
with the receipts and checkpoints members kept, and every altered one must fail, naming
the first bad line. Mutations run in-process (fast); a few go through the script as a
subprocess, exactly as a reader would run it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import SplitPlan
from ledger.chain import link_hash
from ledger.checkpoint import (
    leaf_hash,
    make_checkpoint,
    merkle_root,
    record_checkpoint,
    stored_checkpoint,
)
from ledger.errors import CooperativeNotFound
from ledger.export import event_line, export_history
from ledger.export_cli import add_parsers
from ledger.storage import StoreConfig
from tests.integration.support import MakeLedger, World

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_export.py"
MUTATIONS = 60  # per export; two exports per store


def load_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_export"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ve = load_verifier()


def run_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def export_bytes(world: World, coop_id: UUID, **kwargs: Any) -> bytes:
    return b"".join(export_history(world.ledger, coop_id, **kwargs))


def receipt_of(world: World, coop_id: UUID, version: int) -> dict[str, Any]:
    kept = world.ledger.receipt(coop_id, version)
    return {"cooperative_id": str(coop_id), "version": version, "chain_head": kept.chain_head}


def history(world: World) -> tuple[UUID, UUID]:
    """A cooperative with work, hours, a decision in non-ASCII text and a split; its child."""
    ledger, mover = world.ledger, world.people[5]
    coop = world.found(size=6)
    work = ledger.take_work(
        coop, client_ref="Familie Jansen", description="Ramen — één keer per week", actor=mover
    ).value
    for minutes in (30, 45, 60):
        ledger.log_hours(coop, work, minutes=minutes, actor=mover)
    members = list(ledger.get_cooperative(coop).members)
    proposal = ledger.raise_proposal(
        coop, kind="general", text='Zullen we "samen" plannen?\nJa: één rooster 🧹', actor=mover
    ).value
    for member in members:
        ledger.vote(coop, proposal, "for", actor=member, reason="Prima — ça va")
    ledger.close_proposal(coop, proposal, actor=mover)
    world.decide(coop, "split", split=SplitPlan("De Schoonmakers Noord", (mover,)))
    (child,) = ledger.get_cooperative(coop).children
    for minutes in (15, 20, 25):
        ledger.log_hours(child, work, minutes=minutes, actor=mover)
    return coop, child


# ---- the two copies of the hash functions agree ---------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    prev=st.text("0123456789abcdef", min_size=64, max_size=64),
    originator=st.uuids(),
    version=st.integers(1, 2**63 - 1),
    topic=st.text(),
    state=st.binary(max_size=2000),
)
def test_link_hash_in_the_script_is_the_ledgers(
    prev: str, originator: UUID, version: int, topic: str, state: bytes
) -> None:
    expected = link_hash(prev, originator, version, topic, state)
    assert ve.link_hash(prev, originator, version, topic, state) == expected
    assert ve.link_hash(prev, str(originator), version, topic, state) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.uuids(), st.integers(1, 10**6), st.binary(min_size=32, max_size=32))))
def test_merkle_root_in_the_script_is_the_services(heads: list[tuple[UUID, int, bytes]]) -> None:
    leaves = sorted((str(c), v, h.hex()) for c, v, h in heads)
    assert [ve.leaf_hash(*leaf) for leaf in leaves] == [leaf_hash(*leaf) for leaf in leaves]
    hashed = [leaf_hash(*leaf) for leaf in leaves]
    assert ve.merkle_root(hashed) == merkle_root(hashed)


def test_merkle_root_follows_rfc_6962_shape() -> None:
    a, b, c = (leaf_hash(str(uuid4()), 1, "0" * 64) for _ in range(3))

    def node(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    assert merkle_root([]) == hashlib.sha256(b"").digest()
    assert merkle_root([a]) == a
    assert merkle_root([a, b, c]) == node(node(a, b), c)


# ---- genuine exports pass ---------------------------------------------------------------


def test_a_genuine_export_passes_with_receipts_and_a_checkpoint(
    world: World, tmp_path: Path
) -> None:
    coop, child = history(world)
    parent_version = world.ledger.get_cooperative(coop).version
    files = {
        "coop.ndjson": export_bytes(world, coop),
        "child.ndjson": export_bytes(world, child),
        "early.json": json.dumps(receipt_of(world, coop, 3)).encode(),
        # A whole command response, as a member would save it, is accepted too.
        "response.json": json.dumps({"receipt": receipt_of(world, coop, parent_version)}).encode(),
        "child.json": json.dumps(receipt_of(world, child, 2)).encode(),
        "checkpoint.json": json.dumps(make_checkpoint(world.ledger)).encode(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    public_key = json.loads(files["checkpoint.json"])["public_key"]

    plain = run_script(
        tmp_path / "coop.ndjson",
        *("--receipt", tmp_path / "early.json", "--receipt", tmp_path / "response.json"),
        *("--checkpoint", tmp_path / "checkpoint.json", "--public-key", public_key),
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith(f"OK {coop}: {parent_version} events")

    split_off = run_script(
        tmp_path / "child.ndjson",
        *("--receipt", tmp_path / "child.json", "--receipt", tmp_path / "response.json"),
        *("--checkpoint", tmp_path / "checkpoint.json", "--parent", tmp_path / "coop.ndjson"),
    )
    assert split_off.returncode == 0, split_off.stderr
    assert f"split from {coop} at its version {parent_version} (checked)" in split_off.stdout


def test_an_export_is_a_snapshot_read_in_batches(world: World) -> None:
    coop, _ = history(world)
    assert export_bytes(world, coop, batch_size=3) == export_bytes(world, coop)
    worker = world.people[0]
    work = world.ledger.take_work(coop, client_ref="Bakkerij", actor=worker).value
    chunks = export_history(world.ledger, coop, batch_size=2)
    header = next(chunks)
    world.ledger.log_hours(coop, work, minutes=5, actor=worker)  # written mid-export
    snapshot = header + b"".join(chunks)
    assert ve.verify(snapshot).startswith("OK")
    assert json.loads(header)["events"] == len(snapshot.splitlines()) - 1


def test_states_that_are_not_utf8_travel_as_base64(world: World) -> None:
    line = event_line(uuid4(), (1, 7, "t:T", b"\xff\x00\xfe", "0" * 64, "1" * 64))
    assert base64.b64decode(line["state_b64"]) == b"\xff\x00\xfe"
    assert "state" not in line
    coop, _ = history(world)
    lines = export_bytes(world, coop).splitlines(keepends=True)
    event = json.loads(lines[2])
    event["state_b64"] = base64.b64encode(event.pop("state").encode()).decode()
    lines[2] = json.dumps(event).encode() + b"\n"
    assert ve.verify(b"".join(lines)).startswith("OK")


def test_an_unknown_cooperative_is_refused_before_streaming(world: World) -> None:
    with pytest.raises(CooperativeNotFound):
        export_history(world.ledger, uuid4())


# ---- every mutation is caught -----------------------------------------------------------

Lines = list[bytes]
Item = dict[str, Any]
# (what was done, the mutated export, the line the verifier must name; None: any line)
Mutation = tuple[str, bytes, int | None]
HEX = "0123456789abcdef"


def dumps(item: Any) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def flip(rng: random.Random, text: str, pool: str = HEX) -> str:
    """``text`` with one character replaced by a different one."""
    at = rng.randrange(len(text))
    return text[:at] + rng.choice([c for c in pool if c != text[at]]) + text[at + 1 :]


# Edits of one event line, given the line before it (the header for the first event).
EVENT_EDITS: dict[str, Callable[[random.Random, Item, Item], object]] = {
    "flip a character of a state": lambda r, e, _: e.update(state=flip(r, e["state"], "az0{}:é")),
    "change a topic": lambda r, e, _: e.update(topic=e["topic"] + r.choice(["x", ".Left"])),
    "alter a prev": lambda r, e, _: e.update(prev=flip(r, e["prev"])),
    "alter a hash": lambda r, e, _: e.update(hash=flip(r, e["hash"])),
    "alter a version": lambda r, e, _: e.update(version=e["version"] + r.choice([-1, 1, 9])),
    "write a version as text": lambda r, e, _: e.update(version=str(e["version"])),
    "move an event to another cooperative": lambda r, e, _: e.update(cooperative_id=str(uuid4())),
    "repeat the position before": lambda r, e, b: e.update(position=b.get("position", 0)),
    "add a field": lambda r, e, _: e.update(note="added later"),
}


def header_edit(rng: random.Random, header: Item) -> Item:
    if "parent_id" in header:
        parent = {"parent_link_prev": flip(rng, header["parent_link_prev"])}
    else:  # claim a parent
        parent = {"parent_id": str(uuid4()), "parent_version": 1, "parent_link_prev": "1" * 64}
    edits: list[Item] = [
        {"events": header["events"] + rng.choice([-1, 1])},
        {"chain_head": flip(rng, header["chain_head"])},
        {"cooperative_id": str(uuid4())},
        {"format": "coop-ledger-export/2"},
        {"type": "event"},
        {"parent_id": str(uuid4())},
        parent,
    ]
    return rng.choice(edits)


def mutate(rng: random.Random, lines: Lines, kind: str) -> Mutation:
    if kind in EVENT_EDITS:
        k = rng.randrange(1, len(lines))
        event = json.loads(lines[k])
        EVENT_EDITS[kind](rng, event, json.loads(lines[k - 1]))
        return kind, b"".join([*lines[:k], dumps(event), *lines[k + 1 :]]), k + 1
    if kind == "alter the header":
        header = json.loads(lines[0])
        edit = header_edit(rng, header)
        return f"{kind}: {edit}", b"".join([dumps(header | edit), *lines[1:]]), None
    if kind == "truncate":
        data = b"".join(lines)
        return kind, data[: rng.randrange(len(data))], None
    k = rng.randrange(len(lines))  # the header too
    if kind == "drop a line":
        return kind, b"".join(lines[:k] + lines[k + 1 :]), k + 1
    if kind == "duplicate a line":
        return kind, b"".join([*lines[: k + 1], lines[k], *lines[k + 1 :]]), k + 2
    assert kind == "swap two lines"
    i, j = sorted(rng.sample(range(len(lines)), 2))
    swapped = [*lines[:i], lines[j], *lines[i + 1 : j], lines[i], *lines[j + 1 :]]
    return kind, b"".join(swapped), i + 1


KINDS = [
    *EVENT_EDITS,
    "alter the header",
    "truncate",
    "drop a line",
    "duplicate a line",
    "swap two lines",
]


def mutations(data: bytes, seed: int, count: int) -> list[Mutation]:
    """``count`` mutations, every kind in turn."""
    rng, lines = random.Random(seed), data.splitlines(keepends=True)
    return [mutate(rng, lines, KINDS[n % len(KINDS)]) for n in range(count)]


def test_every_mutated_export_is_rejected_naming_the_first_bad_line(world: World) -> None:
    coop, child = history(world)
    missed, checked = [], 0
    for seed, coop_id in ((5, coop), (6, child)):
        data = export_bytes(world, coop_id)
        assert ve.verify(data).startswith("OK")
        for name, mutated, line in mutations(data, seed, MUTATIONS):
            assert mutated != data, name
            checked += 1
            try:
                ve.verify(mutated)
            except ve.Invalid as error:
                named = str(error)
                expected = ("line",) if line is None else (f"line {line}:", f"line {line} (")
                # Truncated to nothing, there is no line to name.
                if (line is not None or mutated) and not named.startswith(expected):
                    missed.append(f"{name}: named {named!r}, expected {expected[0]}")
            else:
                missed.append(f"{name}: accepted")
    assert checked == 2 * MUTATIONS
    assert not missed, "\n".join(missed)


def test_the_script_refuses_mutated_exports_with_a_non_zero_exit(
    world: World, tmp_path: Path
) -> None:
    coop, _ = history(world)
    data = export_bytes(world, coop)
    rng = random.Random(7)
    lines = data.splitlines(keepends=True)
    for kind in ("flip a character of a state", "swap two lines", "alter the header"):
        name, mutated, line = mutate(rng, lines, kind)
        (tmp_path / "mutated.ndjson").write_bytes(mutated)
        result = run_script(tmp_path / "mutated.ndjson")
        assert result.returncode == 1, (name, result.stdout)
        assert result.stderr.startswith(f"FAILED: line {line or ''}"), (name, result.stderr)


# ---- what only the receipts and checkpoints members kept can catch ----------------------


def rechained(
    data: bytes, keep: int | None = None, edit: Callable[[Item], None] = lambda _: None
) -> bytes:
    """A consistent forgery: events edited (or the tail dropped) and every link recomputed."""
    lines = data.splitlines(keepends=True)
    header, events = json.loads(lines[0]), [json.loads(x) for x in lines[1:]][:keep]
    prev = events[0]["prev"]
    for event in events:
        edit(event)
        state = event["state"].encode()
        event["prev"] = prev
        event["hash"] = prev = ve.link_hash(
            prev, event["cooperative_id"], event["version"], event["topic"], state
        )
    header.update(events=len(events), chain_head=prev)
    return b"".join(dumps(x) for x in [header, *events])


# How a vote is spelled in an event's stored JSON (the typed form: no tag around the choice).
FOR, AGAINST = '"choice":"for"', '"choice":"against"'


def test_a_consistent_rewrite_is_caught_by_an_earlier_receipt_or_checkpoint(world: World) -> None:
    coop, _ = history(world)
    data = export_bytes(world, coop)
    events = [json.loads(x) for x in data.splitlines()[1:]]
    vote = next(e for e in events if e["topic"].endswith(".VoteCast") and FOR in e["state"])

    def outvote(event: dict[str, Any]) -> None:  # "was I really outvoted?"
        if event["version"] == vote["version"]:
            event["state"] = event["state"].replace(FOR, AGAINST)

    forged = rechained(data, edit=outvote)
    cut = rechained(data, keep=len(events) - 2)
    checkpoint = make_checkpoint(world.ledger)
    before, at, last = (
        receipt_of(world, coop, v) for v in (vote["version"] - 1, vote["version"], len(events))
    )
    for fake in (forged, cut):
        assert fake != data
        assert ve.verify(fake).startswith(
            "OK"
        )  # consistent in itself: this is what anchors are for
        assert ve.verify(fake, [("before", before)]).startswith("OK")  # kept before the change
        with pytest.raises(ve.Invalid, match=r"^last: "):
            ve.verify(fake, [("last", last)])
        with pytest.raises(ve.Invalid, match=r"^checkpoint: "):
            ve.verify(fake, checkpoint=checkpoint)
    with pytest.raises(ve.Invalid, match=r"^at: the export's chain head at version"):
        ve.verify(forged, [("at", at)])
    with pytest.raises(ve.Invalid, match="history cut short"):
        ve.verify(cut, [("last", last)])


def test_an_altered_checkpoint_is_rejected(world: World, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    coop, _ = history(world)
    data = export_bytes(world, coop)
    genuine = make_checkpoint(world.ledger)
    assert ve.verify(data, checkpoint=genuine, public_key=genuine["public_key"]).startswith("OK")
    rng = random.Random(11)
    heads = genuine["heads"]
    mine = next(i for i, h in enumerate(heads) if h["cooperative_id"] == str(coop))

    def with_heads(new_heads: list[dict[str, Any]]) -> dict[str, Any]:
        leaves = [leaf_hash(h["cooperative_id"], h["version"], h["chain_head"]) for h in new_heads]
        return {**genuine, "heads": new_heads, "root": merkle_root(leaves).hex()}

    other_key = Ed25519PrivateKey.generate()
    message = f"{genuine['format']}\n{genuine['created_at']}\n{genuine['root']}".encode()
    resigned = {
        **genuine,
        "public_key": other_key.public_key().public_bytes_raw().hex(),
        "signature": other_key.sign(message).hex(),
    }
    altered = {
        "signature": {**genuine, "signature": flip(rng, genuine["signature"])},
        "root": {**genuine, "root": flip(rng, genuine["root"])},
        "created_at": {**genuine, "created_at": "2031-01-01T00:00:00+00:00"},
        "another head, root recomputed": with_heads(
            [
                {**h, "chain_head": flip(rng, h["chain_head"])} if i != mine else h
                for i, h in enumerate(heads)
            ]
        ),
        "a head dropped, root recomputed": with_heads(
            [h for i, h in enumerate(heads) if i != mine]
        ),
        "heads reordered": {**genuine, "heads": heads[::-1]},
        "version raised": with_heads(
            [{**h, "version": h["version"] + 1} if i == mine else h for i, h in enumerate(heads)]
        ),
        "signed by another key": resigned,
    }
    messages = {}
    for name, checkpoint in altered.items():
        with pytest.raises(ve.Invalid) as caught:
            ve.verify(data, checkpoint=checkpoint, public_key=genuine["public_key"])
        messages[name] = str(caught.value)
    assert "signature is not valid" in messages["signature"]
    assert "Merkle root" in messages["root"]
    assert "signature is not valid" in messages["another head, root recomputed"]
    assert "does not list" in messages["a head dropped, root recomputed"]
    assert "not the expected" in messages["signed by another key"]
    # Without a pinned key, a checkpoint vouches only for itself: keep the service's key.
    assert ve.verify(data, checkpoint=resigned).startswith("OK")

    (tmp_path / "e.ndjson").write_bytes(data)
    (tmp_path / "c.json").write_text(json.dumps(altered["signature"]))
    result = run_script(tmp_path / "e.ndjson", "--checkpoint", tmp_path / "c.json")
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED: checkpoint: the signature is not valid")


def test_without_cryptography_the_signature_is_reported_unchecked(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    coop, _ = history(world)
    (tmp_path / "e.ndjson").write_bytes(export_bytes(world, coop))
    (tmp_path / "c.json").write_text(json.dumps(make_checkpoint(world.ledger)))
    for name in (
        "cryptography",
        "cryptography.exceptions",
        "cryptography.hazmat.primitives.asymmetric.ed25519",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # makes importing it fail
    assert ve.main([str(tmp_path / "e.ndjson"), "--checkpoint", str(tmp_path / "c.json")]) == 3
    assert "install the 'cryptography' package" in capsys.readouterr().err
    assert ve.main([str(tmp_path / "e.ndjson")]) == 0  # the chain itself needs none of it


# ---- checkpoints kept by the service, and the CLI ----------------------------------------


def test_checkpoints_list_every_head_and_are_numbered_under_one_lasting_key(
    world: World, make_ledger: MakeLedger
) -> None:
    assert stored_checkpoint(world.ledger.db) is None
    coop, child = history(world)
    other = world.found(size=3)
    first_number, first = record_checkpoint(world.ledger)
    second_number, second = record_checkpoint(make_ledger())  # another process, same store
    assert (first_number, second_number) == (1, 2)
    assert first["public_key"] == second["public_key"]
    assert stored_checkpoint(world.ledger.db) == (2, second)
    assert stored_checkpoint(world.ledger.db, 1) == (1, first)
    assert stored_checkpoint(world.ledger.db, 3) is None
    expected = []
    for coop_id in sorted((coop, child, other), key=str):
        version = world.ledger.get_cooperative(coop_id).version
        expected.append(receipt_of(world, coop_id, version))
    assert first["heads"] == expected


def test_first_use_and_numbering_hold_under_concurrent_recorders(make_ledger: MakeLedger) -> None:
    ledgers = [make_ledger() for _ in range(4)]  # as four processes would, on an empty store
    with ThreadPoolExecutor(len(ledgers)) as pool:
        made = list(pool.map(record_checkpoint, ledgers * 2))
    assert sorted(number for number, _ in made) == list(range(1, 9))
    assert len({checkpoint["public_key"] for _, checkpoint in made}) == 1


def test_the_cli_writes_an_export_and_a_checkpoint_the_script_accepts(
    world: World, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop, _ = history(world)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", database_url)
    assert StoreConfig.from_env().url == database_url
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command", required=True))
    for argv in (
        ["export", str(coop), "--output", str(out / "coop.ndjson")],
        ["checkpoint", "-o", str(out / "checkpoint.json")],
    ):
        args = parser.parse_args(argv)
        assert args.run(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.json", "coop.ndjson"]
    result = run_script(out / "coop.ndjson", "--checkpoint", out / "checkpoint.json")
    assert result.returncode == 0, result.stderr
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "not-a-uuid"])
