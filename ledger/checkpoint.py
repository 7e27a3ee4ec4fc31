"""Signed checkpoints: one digest over every cooperative's chain head, signed by the service.

A member or facilitator keeps a checkpoint outside the service. Later, any export (or the
service's own ``verify``) can be held against it: a history rewritten after the checkpoint,
even consistently with its chain recomputed, no longer reaches the head listed here.

The construction, exactly (so that anyone can recompute it):

* Leaves: one per cooperative, ``(cooperative_id, version, chain_head)`` where ``version``
  is its last version and ``chain_head`` the hash of its chain link at that version (see
  ``ledger.chain``). Leaves are sorted by ``cooperative_id`` as canonical lowercase
  hyphenated UUID text; each cooperative appears once. Leaf data is the UTF-8 encoding of
  ``"coop-ledger-checkpoint/1\\n" cooperative_id "\\n" version "\\n" chain_head`` (version
  in decimal, chain_head as 64 lowercase hex digits).
* The root is the Merkle Tree Hash of RFC 6962 (section 2.1) over those leaves, SHA-256,
  with its domain separation: a leaf hashes as ``SHA-256(0x00 || leaf data)``, an inner
  node as ``SHA-256(0x01 || left || right)``. For n > 1 leaves the left subtree holds the
  first k leaves, k the largest power of two below n. No leaves: ``SHA-256("")``.
  (The prefixes keep a leaf from passing for a node; the RFC's shape allows inclusion
  proofs later.)
* The signature is Ed25519 (RFC 8032) over the UTF-8 bytes of
  ``"coop-ledger-checkpoint/1\\n" created_at "\\n" root`` (root in lowercase hex).
  ``public_key`` is the raw 32-byte Ed25519 public key in hex, ``signature`` 64 bytes hex.

The signing key is generated on first use and kept, as unencrypted PKCS #8 PEM, in the
``service_secrets`` table. Whoever can read the database can therefore sign; a checkpoint
proves what the service said at ``created_at``, and its worth lies in copies kept elsewhere.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

import orjson
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.application import Ledger
from ledger.storage import Database

FORMAT = "coop-ledger-checkpoint/1"
KEY_NAME = "checkpoint_signing_key"

Head = tuple[str, int, str]
T = TypeVar("T")


def leaf_hash(cooperative_id: str, version: int, chain_head: str) -> bytes:
    data = f"{FORMAT}\n{cooperative_id}\n{version}\n{chain_head}".encode()
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash over already hashed leaves."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # largest power of two below n
    return hashlib.sha256(
        b"\x01" + merkle_root(leaves[:split]) + merkle_root(leaves[split:])
    ).digest()


def signed_message(created_at: str, root: str) -> bytes:
    return f"{FORMAT}\n{created_at}\n{root}".encode()


def chain_heads(ledger: Ledger) -> list[Head]:
    """Every cooperative's last chain link, sorted by cooperative id, in one statement."""
    events = ledger.events_table
    with ledger.db.read() as cur:
        cur.execute(
            f"SELECT e.originator_id, e.originator_version, e.hash FROM {events} e"
            f" JOIN (SELECT originator_id, MAX(originator_version) AS v FROM {events}"
            " WHERE hash IS NOT NULL GROUP BY originator_id) m"
            " ON e.originator_id = m.originator_id AND e.originator_version = m.v"
        )
        rows = cur.fetchall()
    # Sorted here, on canonical text: the stores order uuid and text columns differently.
    return sorted((str(UUID(str(r[0]))), int(r[1]), str(r[2])) for r in rows)


def _read_secret(db: Database, table: str, name: str) -> str | None:
    with db.read() as cur:
        if not db.table_exists(cur, table):
            return None
        cur.execute(f"SELECT value FROM {table} WHERE name = ?", (name,))
        row = cur.fetchone()
    return None if row is None else str(row[0])


def _retried(write: Callable[[], T], attempts: int = 5) -> T:
    """``write()``, again when a concurrent writer got there first.

    On PostgreSQL two ``CREATE TABLE IF NOT EXISTS`` at once can still collide (on the
    table's row type), and two inserts can take the same number; the next attempt sees
    what the winner committed. SQLite's IMMEDIATE transactions serialize writers anyway.
    """
    for _ in range(attempts - 1):
        try:
            return write()
        except (
            sqlite3.IntegrityError,
            psycopg.errors.UniqueViolation,
            psycopg.errors.DuplicateObject,
        ):
            continue
    return write()


def signing_key(db: Database) -> Ed25519PrivateKey:
    """The service's Ed25519 key, generated and stored the first time it is needed."""
    table = db.table("service_secrets")
    pem = _read_secret(db, table, KEY_NAME)
    if pem is None:
        fresh = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

        def store() -> str:
            with db.transaction() as cur:
                # The same DDL as api.auth.TokenStore: whichever runs first creates it.
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, value TEXT)"
                )
                # Two first uses at once: one insert wins, both read the winner's key back.
                cur.execute(
                    f"INSERT INTO {table} (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (KEY_NAME, fresh.decode()),
                )
                cur.execute(f"SELECT value FROM {table} WHERE name = ?", (KEY_NAME,))
                return str(cur.fetchone()[0])

        pem = _retried(store)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"{KEY_NAME} in {table} is not an Ed25519 private key")
    return key


def make_checkpoint(ledger: Ledger) -> dict[str, Any]:
    """A signed digest over all chain heads now (not stored; see ``record_checkpoint``)."""
    heads = chain_heads(ledger)
    root = merkle_root([leaf_hash(*h) for h in heads]).hex()
    created_at = ledger.clock().isoformat()
    key = signing_key(ledger.db)
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return {
        "format": FORMAT,
        "created_at": created_at,
        "heads": [{"cooperative_id": c, "version": v, "chain_head": h} for c, v, h in heads],
        "root": root,
        "public_key": public.hex(),
        "signature": key.sign(signed_message(created_at, root)).hex(),
    }


# ---- the service's own copies: numbered, so "the latest" is well defined -----------------


CHECKPOINTS_DDL = (
    "CREATE TABLE IF NOT EXISTS {} (id BIGINT PRIMARY KEY, created_at TEXT NOT NULL, body TEXT)"
)


def record_checkpoint(ledger: Ledger) -> tuple[int, dict[str, Any]]:
    """Make a checkpoint and keep it under the next number; (number, checkpoint)."""
    db, table = ledger.db, ledger.db.table("checkpoints")
    checkpoint = make_checkpoint(ledger)
    body = orjson.dumps(checkpoint).decode()

    def store() -> int:
        with db.transaction() as cur:
            cur.execute(CHECKPOINTS_DDL.format(table))
            cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
            number = int(cur.fetchone()[0])
            cur.execute(
                f"INSERT INTO {table} (id, created_at, body) VALUES (?, ?, ?)",
                (number, checkpoint["created_at"], body),
            )
        return number

    return _retried(store, attempts=10), checkpoint


def stored_checkpoint(db: Database, number: int | None = None) -> tuple[int, dict[str, Any]] | None:
    """The checkpoint kept under ``number`` (the latest when None), or None."""
    table = db.table("checkpoints")
    with db.read() as cur:
        if not db.table_exists(cur, table):
            return None
        if number is None:
            cur.execute(f"SELECT id, body FROM {table} ORDER BY id DESC LIMIT 1")
        else:
            cur.execute(f"SELECT id, body FROM {table} WHERE id = ?", (number,))
        row = cur.fetchone()
    if row is None:
        return None
    body: dict[str, Any] = orjson.loads(row[1])
    return int(row[0]), body
