"""Verify the hash chain against the stored events, and against receipts members kept.

Each link is recomputed from the stored ``topic`` and ``state`` bytes and checked on its
own: its ``prev`` must be the stored hash before it (GENESIS, or for a split-off the
parent's link at the ``Split`` event naming it), its ``hash`` ``link_hash`` of that prev
and the event. That equals a full recomputation, yet a break stays where it is: each
cooperative reports its FIRST broken link, where a dispute starts. A consistent rewrite
(events and links recomputed in the database) passes; receipts catch it, being compared
with the chain recomputed from the events alone. Where no intact Split names a child,
the parent reports its own break and the child need only chain from some stored link of
its parent, so one tampered event is not reported twice.

One read transaction (one snapshot) pages through the events table in primary key order
(each row an event and its link): memory holds one cooperative's history at a time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import chain, groupby
from operator import itemgetter
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from ledger.application import Ledger, Receipt
from ledger.chain import DOMAIN, GENESIS
from ledger.cooperative import Cooperative
from ledger.storage import Cursor

BATCH = 5000
SPLIT_OFF = get_topic(Cooperative.SplitOff)
SPLIT = get_topic(Cooperative.Split)
# A stored topic outside this set cannot be one the ledger wrote.
KNOWN_TOPICS = frozenset(
    get_topic(c)
    for c in vars(Cooperative).values()
    if isinstance(c, type) and issubclass(c, DomainEvent)
)

STATE_ALTERED = "state altered"
TOPIC_ALTERED = "topic altered"
LINK_ALTERED = "link altered"
PREV_MISMATCH = "prev mismatch"
MISSING_EVENT = "missing event"
OUT_OF_ORDER = "events out of order"
LINK_MISSING = "link missing"
BAD_VERSION = "version out of range"
RECEIPT_MISMATCH = "receipt mismatch"
RECEIPT_VERSION_MISSING = "receipt version missing"

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Break:
    """Where a chain breaks. ``position`` is the stored event's notification id, if it exists."""

    cooperative_id: UUID
    version: int
    position: int | None
    what: str
    detail: str = ""

    def __str__(self) -> str:
        position = "-" if self.position is None else self.position
        text = f"cooperative {self.cooperative_id} version {self.version} position {position}"
        return f"{text}: {self.what}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class VerifyReport:
    cooperatives: int = 0
    events: int = 0
    receipts: int = 0
    breaks: list[Break] = field(default_factory=list)  # at most one per cooperative
    receipt_failures: list[Break] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.receipt_failures

    @property
    def problems(self) -> list[Break]:
        """Chain breaks, then failed receipts, each by position (missing events last)."""
        return sorted(self.breaks, key=_order) + sorted(self.receipt_failures, key=_order)


def _order(b: Break) -> tuple[bool, int, str, int]:
    return (b.position is None, b.position or 0, str(b.cooperative_id), b.version)


def digest(prev: str, originator_id: str, version: int, topic: str, state: bytes) -> str:
    """``ledger.chain.link_hash`` with the id already canonical (hot loop; a test pins it)."""
    state_hash = hashlib.sha256(state).hexdigest()
    text = f"{DOMAIN}\n{prev}\n{originator_id}\n{version}\n{topic}\n{state_hash}"
    return hashlib.sha256(text.encode()).hexdigest()


class _Verifier:
    def __init__(self, ledger: Ledger, cur: Cursor, receipts: Sequence[Receipt]) -> None:
        self.ledger, self.cur = ledger, cur
        self.sqlite = ledger.config.kind == "sqlite"
        self.events = ledger.events_table
        self.position = "rowid" if self.sqlite else "notification_id"
        self.mapper = ledger.mapper
        self.receipts = receipts
        self.wanted: dict[UUID, set[int]] = {}
        for receipt in receipts:
            self.wanted.setdefault(receipt.cooperative_id, set()).add(receipt.version)
        # (cooperative, version) -> (recomputed head, position), for the receipts only.
        self.heads: dict[tuple[UUID, int], tuple[str, int]] = {}

    def pages(self, columns: str, coop: str | None) -> Iterator[list[Row]]:
        """Pages of rows in (originator_id, originator_version) order (keyset pagination)."""
        key: tuple[Any, Any] | None = None
        while True:
            # One cooperative pages by version: with a row value SQLite would seek on the id
            # alone and rescan the earlier pages.
            clause, params = "", []
            if coop is not None:
                clause, params = " WHERE originator_id = ?", [coop]
                if key is not None:
                    clause, params = clause + " AND originator_version > ?", [coop, key[1]]
            elif key is not None:
                clause, params = " WHERE (originator_id, originator_version) > (?, ?)", [*key]
            # Ids as text: psycopg would build a UUID object per row, compared in Python. The
            # alias keeps ORDER BY on the column (its index, its order), not on the text.
            self.cur.execute(
                f"SELECT CAST(originator_id AS TEXT) AS id_text, originator_version, {columns}"
                f" FROM {self.events}{clause}"
                f" ORDER BY originator_id, originator_version LIMIT {BATCH}",
                params,
            )
            rows = self.cur.fetchall()
            yield rows
            if len(rows) < BATCH:
                return
            key = rows[-1][0], rows[-1][1]

    def histories(self, coop: UUID | None) -> Iterator[tuple[UUID, list[Row]]]:
        """Each cooperative's rows (id, version, position, topic, state, prev, hash) by version."""
        columns = f"{self.position}, topic, state, prev_hash, hash"
        return _grouped(self.pages(columns, None if coop is None else self.ledger.event_key(coop)))

    def parent_head(self, coop: UUID, first: Row) -> str | None:
        """The parent's link hash at its Split naming ``coop`` (see the module's docstring)."""
        try:
            split_off = self.mapper.to_domain_event(StoredEvent(coop, 1, first[3], first[4]))
            parent = UUID(str(split_off.parent_id))  # type: ignore[attr-defined]
        except Exception:  # a garbled first event is this chain's own break
            return None
        self.cur.execute(
            f"SELECT originator_version, state FROM {self.events}"
            " WHERE originator_id = ? AND topic = ?",
            (self.ledger.event_key(parent), SPLIT),
        )
        splits = self.cur.fetchall()
        self.cur.execute(
            f"SELECT originator_version, hash FROM {self.events}"
            " WHERE originator_id = ? AND hash IS NOT NULL",
            (self.ledger.event_key(parent),),
        )
        hashes: dict[int, str] = dict(self.cur.fetchall())
        for version, state in splits:
            try:
                split = self.mapper.to_domain_event(StoredEvent(parent, version, SPLIT, state))
            except Exception:  # noqa: S112 (a garbled Split is the parent's own break)
                continue
            if getattr(split, "child_id", None) == coop and version in hashes:
                return hashes[version]
        # No intact Split names the child: the parent's own report says why.
        prev = first[5]
        return prev if prev in hashes.values() else None

    def check(self, coop: UUID, rows: list[Row]) -> Break | None:
        """The first broken link of ``coop``; records the recomputed heads receipts ask for."""
        start: str | None = GENESIS
        first = next((e for e in rows if type(e[1]) is int and e[1] > 0), None)  # past forgeries
        if first is not None and first[1] == 1 and first[3] == SPLIT_OFF:
            start = self.parent_head(coop, first)
        with suppress(TypeError):  # a value stored by hand with another type (NULL, TEXT)
            if start is not None and self.whole(coop, rows, start):
                return None
        events = [_clean(r[:5]) for r in rows]
        # A row whose link was removed (both columns NULL) is an event without a link.
        links = [_clean((r[0], r[1], r[5], r[6])) for r in rows if r[5:] != (None, None)]
        return self.diagnose(coop, events, {k[1]: k for k in links}, start)

    def whole(self, coop: UUID, rows: list[Row], head: str) -> bool:
        """The common case, kept lean: each event in order with its link, every hash holding."""
        text, position = str(coop), 0
        wanted = self.wanted.get(coop, ())
        for version, (_, v, at, topic, state, prev, stored) in enumerate(rows, start=1):
            if v != version or at < position or prev != head:
                return False
            head = digest(head, text, version, topic, state)
            if head != stored:
                return False
            position = at
            if version in wanted:
                self.heads[coop, version] = (head, at)
        return True

    def diagnose(
        self, coop: UUID, events: list[Row], links: dict[int, Row], start: str | None
    ) -> Break | None:
        """Where the chain of ``coop`` breaks first, and what most likely broke it."""
        by_version = {row[1]: row for row in events}
        last_event = max(by_version, default=0)
        top = max(last_event, max(links, default=0))
        wanted = self.wanted.get(coop, set())
        last_wanted = max(wanted, default=0)
        # No parent head found: nothing can match, and receipts start from the stored prev.
        expected = start or "(no parent head)"
        full = start or (links[1][2] if 1 in links else GENESIS)
        text = str(coop)
        broken: Break | None = None
        stray = min({*by_version, *links}, default=1)  # versions start at 1: a forgery below
        if stray < 1:
            row = by_version.get(stray)
            broken = Break(coop, stray, None if row is None else row[2], BAD_VERSION)
        for version in range(1, top + 1):
            if broken is not None and version > last_wanted:
                break
            event, link = by_version.get(version), links.get(version)
            if event is None:
                broken = broken or Break(coop, version, None, MISSING_EVENT)
                continue
            _, _, position, topic, state = event
            content = (text, version, topic, state)
            prev = None if link is None else link[2]
            # The stored link's own hash: the full recomputation's too while the chain holds.
            own = None if prev is None else digest(prev, *content)
            full = own if own is not None and prev == full else digest(full, *content)
            if version in wanted:
                self.heads[coop, version] = (full, position)
            if broken is not None:
                continue
            after = by_version.get(version + 1)
            if after is not None and after[2] < position:
                broken = Break(coop, version, position, OUT_OF_ORDER)
            elif link is None:
                broken = Break(coop, version, position, LINK_MISSING)
            elif link[3] != own:
                # The hash alone cannot say what changed; these are the likely readings.
                following = links.get(version + 1)
                if prev != expected and link[3] == digest(expected, *content):
                    what = PREV_MISMATCH
                elif following is not None and following[2] == own:
                    what = LINK_ALTERED
                else:
                    what = STATE_ALTERED if topic in KNOWN_TOPICS else TOPIC_ALTERED
                broken = Break(coop, version, position, what)
            elif prev != expected:
                detail = "a whole link, but not on the hash before it"
                broken = Break(coop, version, position, PREV_MISMATCH, detail)
            else:
                expected = link[3]
        return broken

    def check_receipts(self) -> list[Break]:
        failures = []
        for receipt in self.receipts:
            coop, version = receipt.cooperative_id, receipt.version
            head = self.heads.get((coop, version))
            if head is None:
                failures.append(Break(coop, version, None, RECEIPT_VERSION_MISSING))
            elif head[0] != receipt.chain_head:
                detail = f"kept {receipt.chain_head}, recomputed {head[0]}"
                failures.append(Break(coop, version, head[1], RECEIPT_MISMATCH, detail))
        return failures


def _clean(row: Row) -> Row:
    """A row with the types the walk needs; a wrong type cannot match a hash anyway."""
    # A version that is no integer sorts first and is reported as out of range.
    version = row[1] if type(row[1]) is int else -1
    rest: list[Any] = [
        v if isinstance(v, str | int) else "" if v is None else str(v) for v in row[2:]
    ]
    if len(row) == 5:  # an event: its state as the bytes SQLite would hand out
        state = row[4]
        rest[2] = state.encode() if isinstance(state, str) else bytes(state or b"")
    return (row[0], version, *rest)


def _grouped(pages: Iterable[list[Row]]) -> Iterator[tuple[UUID, list[Row]]]:
    # Flattened and grouped in C: no Python frame per row.
    for key, group in groupby(chain.from_iterable(pages), key=itemgetter(0)):
        try:
            coop = UUID(str(key))
        except ValueError:  # an id written by hand (SQLite keeps any text): the nil id
            coop = UUID(int=0)
        yield coop, list(group)


def verify(
    ledger: Ledger, cooperative_id: UUID | None = None, receipts: Iterable[Receipt] = ()
) -> VerifyReport:
    """Recompute the chain of one cooperative (or all) and check ``receipts`` against it.

    With ``cooperative_id``, receipts of other cooperatives are ignored.
    """
    started = time.perf_counter()
    kept = [r for r in receipts if cooperative_id is None or r.cooperative_id == cooperative_id]
    report = VerifyReport(receipts=len(kept))
    with ledger.db.read() as cur:
        if ledger.config.kind == "postgresql":
            # One snapshot for every page: a command committing meanwhile is not half seen.
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        verifier = _Verifier(ledger, cur, kept)
        for coop, rows in verifier.histories(cooperative_id):
            report.cooperatives += 1
            report.events += len(rows)
            broken = verifier.check(coop, rows)
            if broken is not None:
                report.breaks.append(broken)
    report.receipt_failures = verifier.check_receipts()
    report.seconds = time.perf_counter() - started
    return report
