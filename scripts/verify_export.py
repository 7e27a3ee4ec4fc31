#!/usr/bin/env python3
"""Check a coop-ledger export on your own computer, with nothing of coop-ledger installed.

    python verify_export.py EXPORT.ndjson [--receipt RECEIPT.json ...]
                            [--checkpoint CHECKPOINT.json [--public-key HEX]]
                            [--parent PARENT_EXPORT.ndjson]

It recomputes the cooperative's SHA-256 hash chain from the exported events, checks that
versions run 1..N without a gap and that the header's count and chain head are the
recomputed ones. That proves the export is internally consistent; to prove it is the
history the service showed before, hold it against what you kept:

* a receipt (the ``receipt`` of any command response, or the whole response): the chain
  recomputed from the export must reach that receipt's head at that version;
* a checkpoint: its Merkle root is recomputed from its heads, its Ed25519 signature checked
  (``pip install cryptography`` for that step only), and this cooperative's head listed in
  it must be the export's at that version. ``--public-key`` pins the service's key; without
  it, the key published in the checkpoint itself is trusted.
* ``--parent``: for a cooperative founded by a split, the parent's export, whose chain must
  reach the head the child's chain starts from.

Exit status: 0 when everything holds ("OK ..."); 1 naming the first problem (line and
version); 2 when an input cannot be read; 3 when everything but the checkpoint's
signature holds and ``cryptography`` is not installed to check it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard
from uuid import UUID

EXPORT_FORMAT = "coop-ledger-export/1"
CHECKPOINT_FORMAT = "coop-ledger-checkpoint/1"
DOMAIN = "coop-ledger-chain/1"
GENESIS = "0" * 64
HEADER_KEYS = frozenset({"type", "format", "cooperative_id", "exported_at", "events", "chain_head"})
PARENT_KEYS = frozenset({"parent_id", "parent_version", "parent_link_prev"})
EVENT_KEYS = frozenset({"type", "cooperative_id", "version", "position", "topic", "prev", "hash"})

Labelled = Sequence[tuple[str, Any]]


class Invalid(Exception):
    """A check failed; the message names the first problem."""


class SignatureUnchecked(Exception):
    """All else holds, but the checkpoint's signature cannot be checked here."""


def link_hash(prev: str, originator_id: UUID | str, version: int, topic: str, state: bytes) -> str:
    # A copy of ledger.chain.link_hash, so that this file stands alone. The two MUST stay
    # identical (tests/integration/test_export_and_checkpoints.py compares them).
    canonical = "\n".join(
        (
            DOMAIN,
            prev,
            str(UUID(str(originator_id))),
            str(version),
            topic,
            hashlib.sha256(state).hexdigest(),
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Chain:
    """A recomputed chain: ``heads[v]`` is the head at version v, ``heads[0]`` the start."""

    cooperative_id: str
    heads: list[str]
    parent_id: str | None = None
    parent_version: int | None = None

    @property
    def version(self) -> int:
        return len(self.heads) - 1


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys, another reader may keep the first:
    # a line that reads two ways is refused.
    if len({key for key, _ in pairs}) < len(pairs):
        raise ValueError("duplicate keys")
    return dict(pairs)


def parse_json(raw: bytes, where: str) -> Any:
    try:
        # Decoded here, strictly: json.loads would also guess UTF-16 or UTF-32.
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Invalid(f"{where}: not valid UTF-8 JSON ({error})") from None


def is_hash(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == 64 and set(value) <= set("0123456789abcdef")


def is_int(value: Any, least: int = 1) -> TypeGuard[int]:
    return type(value) is int and value >= least  # bool is not a version


def is_uuid(value: Any) -> TypeGuard[str]:
    try:
        return isinstance(value, str) and str(UUID(value)) == value
    except ValueError:
        return False


def _object(raw: bytes, where: str, kind: str, keys: frozenset[str], optional: set[str]) -> Any:
    item = parse_json(raw, where)
    if not isinstance(item, dict) or item.get("type") != kind:
        raise Invalid(f'{where}: not an object of "type": "{kind}"')
    # Unknown keys are refused too: nothing may ride along unchecked in a /1 export.
    wrong = sorted((keys - item.keys()) | (item.keys() - keys - optional))
    if wrong:
        raise Invalid(f"{where}: missing or unknown keys: {', '.join(wrong)}")
    return item


def _header(raw: bytes) -> dict[str, Any]:
    where = "line 1 (header)"
    header: dict[str, Any] = _object(raw, where, "header", HEADER_KEYS, set(PARENT_KEYS))
    if header["format"] != EXPORT_FORMAT:
        raise Invalid(f"{where}: format {header['format']!r}, this verifier reads {EXPORT_FORMAT}")
    if not is_uuid(header["cooperative_id"]):
        raise Invalid(f"{where}: cooperative_id is not a canonical UUID")
    if not is_int(header["events"]) or not is_hash(header["chain_head"]):
        raise Invalid(f"{where}: events must be a count >= 1 and chain_head a SHA-256 hex")
    parent = [header.get(k) for k in ("parent_id", "parent_version", "parent_link_prev")]
    if PARENT_KEYS & header.keys() and not (
        is_uuid(parent[0]) and is_int(parent[1]) and is_hash(parent[2]) and parent[2] != GENESIS
    ):
        raise Invalid(f"{where}: parent_id, parent_version or parent_link_prev is malformed")
    return header


def _state(event: dict[str, Any], where: str) -> bytes:
    text, b64 = event.get("state"), event.get("state_b64")
    try:
        if isinstance(text, str) and b64 is None:
            return text.encode("utf-8")  # fails on a lone surrogate
        if isinstance(b64, str) and text is None:
            return base64.b64decode(b64, validate=True)
    except ValueError:  # UnicodeEncodeError and binascii.Error are ValueErrors
        pass
    raise Invalid(f"{where}: needs one state (UTF-8 text) or state_b64 (base64)")


def named_parent(state: bytes) -> str | None:
    """The parent a founding event records (a split-off's), as canonical UUID text.

    The header's parent_id is only a claim; the first event's state is covered by its hash.
    The service's transcoder writes a UUID as {"_": "u", "v": <hex>}.
    """
    try:
        item = json.loads(state)
        parent = item.get("parent_id") if isinstance(item, dict) else None
        if isinstance(parent, dict) and parent.get("_") == "u":
            parent = parent.get("v")
        return str(UUID(parent)) if isinstance(parent, str) else None
    except ValueError:
        return None


def read_export(lines: Iterable[bytes]) -> Chain:
    """Recompute an export's chain; raises Invalid naming the first problem."""
    chain: Chain | None = None
    header: dict[str, Any] = {}
    position, number = 0, 0
    for number, raw in enumerate(lines, start=1):
        if not raw.endswith(b"\n"):
            raise Invalid(f"line {number}: not terminated by a newline: the export is cut short")
        if chain is None:
            header = _header(raw)
            start = header.get("parent_link_prev", GENESIS)
            chain = Chain(header["cooperative_id"], [start], header.get("parent_id"))
            chain.parent_version = header.get("parent_version")
            continue
        event = _object(raw, f"line {number}", "event", EVENT_KEYS, {"state", "state_b64"})
        where = f"line {number} (version {event['version']!r})"
        if event["cooperative_id"] != chain.cooperative_id:
            raise Invalid(f"{where}: an event of {event['cooperative_id']}, not of this export")
        if event["version"] != chain.version + 1 or not is_int(event["version"]):
            raise Invalid(f"{where}: version {chain.version + 1} was due (missing or moved line)")
        if not is_int(event["position"], position + 1):
            raise Invalid(f"{where}: position {event['position']!r} does not follow {position}")
        if event["prev"] != chain.heads[-1]:
            raise Invalid(f"{where}: prev is not the hash of the link before it")
        state, topic = _state(event, where), event["topic"]
        if not isinstance(topic, str) or "\n" in topic or not topic.isprintable():
            raise Invalid(f"{where}: the topic is not a printable one-line string")
        computed = link_hash(chain.heads[-1], chain.cooperative_id, event["version"], topic, state)
        if event["hash"] != computed:
            raise Invalid(f"{where}: hash does not match the event (recomputed {computed})")
        if event["version"] == 1 and named_parent(state) != chain.parent_id:
            raise Invalid(
                f"{where}: the event records parent {named_parent(state)}, not the header's"
            )
        position = event["position"]
        chain.heads.append(computed)
    if chain is None:
        raise Invalid("the export is empty")
    if chain.version != header["events"]:
        raise Invalid(
            f"line {number + 1}: the header announces {header['events']} events,"
            f" the export holds {chain.version} (truncated or padded)"
        )
    if chain.heads[-1] != header["chain_head"]:
        raise Invalid("line 1 (header): chain_head is not the head of the recomputed chain")
    return chain


def check_head(chain: Chain, label: str, version: int, head: str) -> None:
    if version > chain.version:
        raise Invalid(
            f"{label}: version {version} of {chain.cooperative_id}, but the export ends at"
            f" version {chain.version}: history cut short"
        )
    if chain.heads[version] != head:
        raise Invalid(f"{label}: the export's chain head at version {version} differs: rewritten")


def check_receipt(chains: Sequence[Chain], label: str, receipt: Any) -> None:
    if isinstance(receipt, dict) and isinstance(receipt.get("receipt"), dict):
        receipt = receipt["receipt"]  # a whole command response was kept
    if not (
        isinstance(receipt, dict)
        and is_uuid(receipt.get("cooperative_id"))
        and is_int(receipt.get("version"))
        and is_hash(receipt.get("chain_head"))
    ):
        raise Invalid(f"{label}: not a receipt (cooperative_id, version, chain_head)")
    coop, version, head = receipt["cooperative_id"], receipt["version"], receipt["chain_head"]
    for chain in chains:
        if chain.cooperative_id == coop:
            return check_head(chain, label, version, head)
        if chain.parent_id == coop and chain.parent_version == version:
            if chain.heads[0] != head:  # the parent's head at the split: the child's start
                raise Invalid(f"{label}: the parent's chain head at the split differs: rewritten")
            return None
    raise Invalid(f"{label}: a receipt for {coop} at version {version}; no export given shows it")


def leaf_hash(cooperative_id: str, version: int, chain_head: str) -> bytes:
    data = f"{CHECKPOINT_FORMAT}\n{cooperative_id}\n{version}\n{chain_head}".encode()
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash, as ledger/checkpoint.py documents it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(
        b"\x01" + merkle_root(leaves[:split]) + merkle_root(leaves[split:])
    ).digest()


def check_checkpoint(chains: Sequence[Chain], checkpoint: Any, public_key: str | None) -> None:
    """Raises Invalid, or SignatureUnchecked when only the signature is left unchecked."""
    c = checkpoint if isinstance(checkpoint, dict) else {}
    heads = c.get("heads")
    if c.get("format") != CHECKPOINT_FORMAT or not isinstance(heads, list):
        raise Invalid(f"checkpoint: not a {CHECKPOINT_FORMAT} checkpoint")
    listed: dict[str, tuple[int, str]] = {}
    previous = ""
    for n, item in enumerate(heads, start=1):
        if not isinstance(item, dict):
            raise Invalid(f"checkpoint: head {n} is not an object")
        coop, version, head = (item.get(k) for k in ("cooperative_id", "version", "chain_head"))
        if not (is_uuid(coop) and is_int(version) and is_hash(head)) or coop <= previous:
            raise Invalid(f"checkpoint: head {n} is malformed, out of order or repeated")
        listed[coop], previous = (version, head), coop
    root = merkle_root([leaf_hash(k, v, h) for k, (v, h) in listed.items()]).hex()
    if root != c.get("root"):
        raise Invalid(f"checkpoint: the root is not the Merkle root of its heads ({root})")
    for chain in chains:
        if chain.cooperative_id not in listed:
            raise Invalid(f"checkpoint: does not list cooperative {chain.cooperative_id}")
        check_head(chain, "checkpoint", *listed[chain.cooperative_id])
    key, signature, created_at = c.get("public_key"), c.get("signature"), c.get("created_at")
    if public_key is not None and key != public_key.lower():
        raise Invalid(f"checkpoint: signed by key {key}, not the expected {public_key}")
    if not is_hash(key) or not isinstance(signature, str) or not isinstance(created_at, str):
        raise Invalid("checkpoint: public_key, signature or created_at is malformed")
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        raise SignatureUnchecked(
            "the checkpoint's signature was not checked: install the 'cryptography' package"
        ) from None
    message = f"{CHECKPOINT_FORMAT}\n{created_at}\n{root}".encode()
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key)).verify(
            bytes.fromhex(signature), message
        )
    except (InvalidSignature, ValueError):
        raise Invalid("checkpoint: the signature is not valid") from None


def verify(
    export: bytes | Iterable[bytes],
    receipts: Labelled = (),
    checkpoint: Any = None,
    *,
    parent: bytes | Iterable[bytes] | None = None,
    public_key: str | None = None,
) -> str:
    """Every check; the "OK ..." summary, or raises Invalid / SignatureUnchecked."""
    chain = read_export(io.BytesIO(export) if isinstance(export, bytes) else export)
    chains = [chain]
    if parent is not None:
        parent_chain = read_export(io.BytesIO(parent) if isinstance(parent, bytes) else parent)
        if chain.parent_id != parent_chain.cooperative_id or chain.parent_version is None:
            raise Invalid(f"--parent: {parent_chain.cooperative_id} is not this export's parent")
        if chain.parent_version > parent_chain.version or (
            parent_chain.heads[chain.parent_version] != chain.heads[0]
        ):
            raise Invalid("--parent: the parent's chain does not reach the child's start")
        chains.append(parent_chain)
    for label, receipt in receipts:
        check_receipt(chains, label, receipt)
    if checkpoint is not None:
        check_checkpoint(chains, checkpoint, public_key)
    said = [f"OK {chain.cooperative_id}: {chain.version} events, chain head {chain.heads[-1]}"]
    if chain.parent_id:
        checked = "checked" if parent is not None else "not checked: no --parent"
        said.append(
            f"split from {chain.parent_id} at its version {chain.parent_version} ({checked})"
        )
    anchors = [f"{len(receipts)} receipt(s)"] if receipts else []
    anchors += ["the checkpoint"] if checkpoint is not None else []
    said.append(f"matches {' and '.join(anchors)}" if anchors else "no receipt or checkpoint given")
    return "; ".join(said)


def _open(path: str) -> BinaryIO:
    return sys.stdin.buffer if path == "-" else Path(path).open("rb")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("export", help="the NDJSON export ('-' reads standard input)")
    parser.add_argument("--receipt", action="append", default=[], metavar="FILE")
    parser.add_argument("--checkpoint", metavar="FILE")
    parser.add_argument("--public-key", metavar="HEX", help="the service's Ed25519 key, raw hex")
    parser.add_argument("--parent", metavar="FILE", help="the parent's export, for a split-off")
    args = parser.parse_args(argv)
    try:
        receipts = [(name, parse_json(Path(name).read_bytes(), name)) for name in args.receipt]
        checkpoint = None
        if args.checkpoint:
            checkpoint = parse_json(Path(args.checkpoint).read_bytes(), args.checkpoint)
    except (OSError, Invalid) as error:
        print(f"verify_export: cannot read input: {error}", file=sys.stderr)
        return 2
    try:
        # Exports are read line by line: they may be large.
        with ExitStack() as files:
            export = files.enter_context(_open(args.export))
            parent = files.enter_context(_open(args.parent)) if args.parent else None
            summary = verify(
                export, receipts, checkpoint, parent=parent, public_key=args.public_key
            )
        print(summary)
    except OSError as error:
        print(f"verify_export: cannot read input: {error}", file=sys.stderr)
        return 2
    except Invalid as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    except SignatureUnchecked as error:
        print(f"NOT CHECKED: {error}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
