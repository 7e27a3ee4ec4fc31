"""A cooperative's hours not yet paid for: a mapping by entry id, stored in columns.

Why: these hours are most of a busy cooperative's state (hundreds of entries between two
invoice runs), and most commands never look at them: logging hours, voting, admitting.
A snapshot holds them as a few columns (``to_columns``) that a load leaves as they are;
the entries are made only when something reads them, and hours logged meanwhile are
added without reading the rest. So loading a busy cooperative costs about as much as
loading a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any
from uuid import UUID

import orjson

from ledger.records import LazyMapping
from ledger.state import HoursEntry
from ledger.typed import uuid_from_hex

__all__ = ["Hours"]

_ID = 32  # hex digits of an entry id in the ids column

# Dates repeat (everyone logs today): one object per day number.
_DAYS: dict[int, date] = {}


def _day(ordinal: int) -> date:
    found = _DAYS.get(ordinal)
    if found is None:
        found = _DAYS[ordinal] = date.fromordinal(ordinal)
    return found


_LISTS = ("work", "member", "minutes", "day", "invoice")


def _columns(entries: Iterable[HoursEntry], refs: dict[UUID, int]) -> dict[str, Any]:
    """``entries`` as columns; ``refs`` numbers the work and member ids (and grows)."""
    ids, work, member, minutes, day, invoice = [], [], [], [], [], []
    for e in entries:
        ids.append(e.id.hex)
        work.append(refs.setdefault(e.work_id, len(refs)))
        member.append(refs.setdefault(e.member_id, len(refs)))
        minutes.append(e.minutes)
        day.append(e.worked_on.toordinal())
        invoice.append(e.invoice_number)
    return {
        "ids": "".join(ids),
        "refs": "".join(r.hex for r in refs),
        # Each list as its JSON text: a load that never reads the entries then makes one
        # string of each, not an int object per entry per column.
        **{
            name: orjson.dumps(values).decode()
            for name, values in zip(_LISTS, (work, member, minutes, day, invoice), strict=True)
        },
    }


def _lists(columns: dict[str, Any]) -> dict[str, Any]:
    """The columns with each list a list, whether stored as JSON text or (version 3) as is."""
    return {
        name: orjson.loads(values) if type(values) is str else values
        for name, values in columns.items()
        if name in _LISTS
    }


def _refs(columns: dict[str, Any]) -> list[UUID]:
    refs = columns["refs"]
    if type(refs) is list:  # version 3 wrote a list of hex ids
        return [uuid_from_hex(r) for r in refs]
    if len(refs) % _ID:
        raise ValueError("hours columns: the refs column is not whole ids")
    return [uuid_from_hex(refs[n : n + _ID]) for n in range(0, len(refs), _ID)]


class Hours(LazyMapping[HoursEntry]):
    """Entries by id, in the order they were logged; built lazily from stored columns.

    While the columns are unread, entries set since are kept beside them. Such an entry
    almost always has a new id (logged after the snapshot), but one whose id is also in
    the columns replaces that stored entry when they are read (``dict.update`` keeps its
    place, as setting a key of a dict does), so only the count and the written columns
    look for such ids, and a replay of new hours never has to.
    """

    def __init__(self, entries: Iterable[tuple[UUID, HoursEntry]] = ()) -> None:
        self._entries: dict[UUID, HoursEntry] = dict(entries)
        self._columns: dict[str, Any] | None = None  # not yet made into entries
        self._stored_ids: set[str] | None = None  # the ids column's ids, once asked for
        # Of the entries set while the columns are unread: the ids not yet looked for in
        # the columns, and those found there.
        self._unchecked: list[UUID] = []
        self._replacing: set[UUID] = set()

    # ---- columns ----------------------------------------------------------------------

    def to_columns(self) -> dict[str, Any]:
        """JSON-native columns: ids as one hex string, other ids through a shared table."""
        stored = self._columns
        if stored is not None and self._entries and self._replaced() > 0:
            self._read()
            stored = None
        if stored is None:
            return _columns(self._entries.values(), {})
        if not self._entries and type(stored["work"]) is str:
            return stored  # unread since it was loaded: write it back as it came
        # Unread, with hours logged since: append theirs, still without reading the rest.
        refs = {ref: n for n, ref in enumerate(_refs(stored))}
        added, lists = _columns(self._entries.values(), refs), _lists(stored)
        return {
            "ids": stored["ids"] + added["ids"],
            "refs": added["refs"],
            **{
                name: orjson.dumps(lists[name] + orjson.loads(added[name])).decode()
                for name in _LISTS
            },
        }

    @classmethod
    def from_columns(cls, columns: dict[str, Any]) -> Hours:
        hours = cls()
        if columns["ids"]:
            hours._columns = columns
        return hours

    def _read(self) -> dict[UUID, HoursEntry]:
        """The entries, made from the columns on first use."""
        columns = self._columns
        if columns is None:
            return self._entries
        self._columns = self._stored_ids = None
        self._unchecked, self._replacing = [], set()
        ids, refs, lists = columns["ids"], _refs(columns), _lists(columns)
        entries: dict[UUID, HoursEntry] = {}
        for n, (w, m, minutes, day, invoice) in enumerate(
            zip(*(lists[name] for name in _LISTS), strict=True)
        ):
            entry_id = uuid_from_hex(ids[n * _ID : (n + 1) * _ID])
            entries[entry_id] = HoursEntry(entry_id, refs[w], refs[m], minutes, _day(day), invoice)
        if len(ids) != _ID * len(entries):
            raise ValueError("hours columns: the ids column does not match the others")
        entries.update(self._entries)  # set after the columns were stored
        self._entries = entries
        return entries

    def _in_columns(self, entry_id: UUID) -> bool:
        columns = self._columns
        if columns is None:
            return False
        stored = self._stored_ids
        if stored is None:
            ids: str = columns["ids"]
            stored = self._stored_ids = {ids[n : n + _ID] for n in range(0, len(ids), _ID)}
        return entry_id.hex in stored

    def _replaced(self) -> int:
        """How many of the entries set while the columns are unread replace a stored one.

        Counted once per entry: a cached cooperative logs hour after hour while its columns
        stay unread, and every save asks for the count (``snapshot_step``).
        """
        if self._unchecked:
            self._replacing.update(filter(self._in_columns, self._unchecked))
            self._unchecked = []
        return len(self._replacing)

    # ---- the mapping ------------------------------------------------------------------

    def __setitem__(self, entry_id: UUID, entry: HoursEntry) -> None:
        if self._columns is not None:
            self._unchecked.append(entry_id)
        self._entries[entry_id] = entry  # the columns can stay as they are (see the class)

    def __delitem__(self, entry_id: UUID) -> None:
        del self._read()[entry_id]

    def __iter__(self) -> Iterator[UUID]:
        return iter(self._read())

    def __len__(self) -> int:
        columns = self._columns
        if columns is None:
            return len(self._entries)
        return len(columns["ids"]) // _ID + len(self._entries) - self._replaced()

    def __contains__(self, entry_id: object) -> bool:
        if isinstance(entry_id, UUID) and self._in_columns(entry_id):
            return True
        return bool(entry_id in self._entries)
