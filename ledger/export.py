"""A cooperative's full history as NDJSON, with its chain links: what an outside reader checks.

Line 1 is a header, then one line per stored event in version order::

    {"type": "header", "format": "coop-ledger-export/1", "cooperative_id": ...,
     "exported_at": ..., "events": N, "chain_head": <hash at version N>,
     ["parent_id", "parent_version", "parent_link_prev": for a split-off]}
    {"type": "event", "cooperative_id": ..., "version": 1, "position": ..., "topic": ...,
     "state": <the stored state bytes as UTF-8 text> | "state_b64": <base64 of them>,
     "prev": ..., "hash": ...}

The state is exported byte for byte as stored (the chain hashes those bytes), so a reader
needs nothing of this code base: ``scripts/verify_export.py`` recomputes every link with
the standard library. Positions are the store's notification ids; the chain does not
cover them (they are assigned by the insert the links are written in).

The export is a consistent snapshot although it is read in batches: the header fixes N
first and history is append-only, so later writes only add versions above N.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import orjson

from ledger.application import Ledger
from ledger.errors import CooperativeNotFound

FORMAT = "coop-ledger-export/1"
BATCH_SIZE = 1000


def export_header(ledger: Ledger, cooperative_id: UUID) -> dict[str, Any]:
    """The header line's content; raises CooperativeNotFound before anything is streamed."""
    events, key = ledger.events_table, ledger.event_key(cooperative_id)
    with ledger.db.read() as cur:
        cur.execute(f"SELECT MAX(originator_version) FROM {events} WHERE originator_id = ?", (key,))
        count = cur.fetchone()[0]
        if not count:
            raise CooperativeNotFound(f"no cooperative {cooperative_id}", field="cooperative_id")
        cur.execute(
            f"SELECT originator_version, prev_hash, hash FROM {events}"
            " WHERE originator_id = ? AND originator_version IN (1, ?)",
            (key, count),
        )
        links = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
    header: dict[str, Any] = {
        "type": "header",
        "format": FORMAT,
        "cooperative_id": str(cooperative_id),
        "exported_at": ledger.clock().isoformat(),
        "events": count,
        # None when the link is missing: the export shows the store as it is, and the
        # verifier names the problem, rather than the export failing halfway.
        "chain_head": links.get(count, (None, None))[1],
    }
    parent_id = ledger.get_cooperative(cooperative_id).parent_id
    if parent_id is not None:
        first_prev = links.get(1, (None, None))[0]
        header["parent_id"] = str(parent_id)
        header["parent_version"] = _parent_version(ledger, parent_id, first_prev)
        header["parent_link_prev"] = first_prev
    return header


def _parent_version(ledger: Ledger, parent_id: UUID, head: str | None) -> int | None:
    """The parent's version whose chain head the split-off's first link starts from."""
    with ledger.db.read() as cur:
        # Scans the parent's events only (the primary key starts with originator_id).
        cur.execute(
            f"SELECT originator_version FROM {ledger.events_table}"
            " WHERE originator_id = ? AND hash = ?",
            (ledger.event_key(parent_id), head),
        )
        row = cur.fetchone()
    return None if row is None else int(row[0])


def event_line(cooperative_id: UUID, row: tuple[Any, ...]) -> dict[str, Any]:
    version, position, topic, state, prev, hash_ = row
    line: dict[str, Any] = {
        "type": "event",
        "cooperative_id": str(cooperative_id),
        "version": int(version),
        "position": int(position),
        "topic": topic,
    }
    data = bytes(state)
    try:
        # The transcoder writes JSON (UTF-8), so this is the rule; a strict decode
        # re-encodes to exactly these bytes, which is what the chain hashed.
        line["state"] = data.decode("utf-8")
    except UnicodeDecodeError:
        line["state_b64"] = base64.b64encode(data).decode("ascii")
    line["prev"] = prev
    line["hash"] = hash_
    return line


def export_history(
    ledger: Ledger, cooperative_id: UUID, *, batch_size: int = BATCH_SIZE
) -> Iterator[bytes]:
    """The export as chunks of whole NDJSON lines (the header alone first, then a batch each).

    The header is read now, so an unknown cooperative raises here rather than midway
    through a response; the events are read lazily, ``batch_size`` per query.
    """
    header = export_header(ledger, cooperative_id)
    return _stream(ledger, cooperative_id, header, batch_size)


def _stream(
    ledger: Ledger, cooperative_id: UUID, header: dict[str, Any], batch_size: int
) -> Iterator[bytes]:
    yield orjson.dumps(header) + b"\n"
    position = "rowid" if ledger.config.kind == "sqlite" else "notification_id"
    sql = (
        f"SELECT originator_version, {position}, topic, state, prev_hash, hash"
        f" FROM {ledger.events_table}"
        " WHERE originator_id = ? AND originator_version > ? AND originator_version <= ?"
        " ORDER BY originator_version LIMIT ?"
    )
    key, last, count = ledger.event_key(cooperative_id), 0, header["events"]
    while last < count:
        # One short read per batch, finished before yielding: a streaming response
        # may resume this generator on another thread (SQLite connections are per thread).
        with ledger.db.read() as cur:
            cur.execute(sql, (key, last, count, batch_size))
            rows = cur.fetchall()
        if not rows:
            return
        last = int(rows[-1][0])
        yield b"".join(orjson.dumps(event_line(cooperative_id, tuple(r))) + b"\n" for r in rows)
