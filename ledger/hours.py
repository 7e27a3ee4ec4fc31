"""A cooperative's hours not yet paid for: a mapping by entry id, stored in columns.

Why: these hours are most of a busy cooperative's state (hundreds of entries between two
invoice runs), and most commands never look at them: logging hours, voting, admitting.
A snapshot holds them as a few columns (``to_columns``) that a load leaves as they are;
the entries are made only when something reads them, and hours logged meanwhile are
added without reading the rest. So loading a busy cooperative costs about as much as
loading a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from datetime import date
from typing import Any
from uuid import UUID

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
        "refs": [r.hex for r in refs],
        "work": work,
        "member": member,
        "minutes": minutes,
        "day": day,
        "invoice": invoice,
    }


class Hours(MutableMapping[UUID, HoursEntry]):
    """Entries by id, in the order they were logged; built lazily from stored columns."""

    def __init__(self, entries: Iterable[tuple[UUID, HoursEntry]] = ()) -> None:
        self._entries: dict[UUID, HoursEntry] = dict(entries)
        self._columns: dict[str, Any] | None = None  # not yet made into entries
        self._stored_ids: set[str] | None = None  # the ids column's ids, once asked for

    # ---- columns ----------------------------------------------------------------------

    def to_columns(self) -> dict[str, Any]:
        """JSON-native columns: ids as one hex string, other ids through a shared table."""
        stored = self._columns
        if stored is None:
            return _columns(self._entries.values(), {})
        if not self._entries:
            return stored  # unread since it was loaded: write it back as it came
        # Unread, with hours logged since: append theirs, still without reading the rest.
        refs = {uuid_from_hex(r): n for n, r in enumerate(stored["refs"])}
        added = _columns(self._entries.values(), refs)
        return {
            "ids": stored["ids"] + added["ids"],
            "refs": added["refs"],
            **{name: stored[name] + added[name] for name in _LISTS},
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
        ids, refs = columns["ids"], [uuid_from_hex(r) for r in columns["refs"]]
        entries: dict[UUID, HoursEntry] = {}
        for n, (w, m, minutes, day, invoice) in enumerate(
            zip(
                columns["work"],
                columns["member"],
                columns["minutes"],
                columns["day"],
                columns["invoice"],
                strict=True,
            )
        ):
            entry_id = uuid_from_hex(ids[n * _ID : (n + 1) * _ID])
            entries[entry_id] = HoursEntry(entry_id, refs[w], refs[m], minutes, _day(day), invoice)
        if len(ids) != _ID * len(entries):
            raise ValueError("hours columns: the ids column does not match the others")
        entries.update(self._entries)  # logged after the columns were stored
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

    # ---- the mapping ------------------------------------------------------------------

    def __getitem__(self, entry_id: UUID) -> HoursEntry:
        return self._read()[entry_id]

    def __setitem__(self, entry_id: UUID, entry: HoursEntry) -> None:
        if self._in_columns(entry_id):
            self._read()
        self._entries[entry_id] = entry  # a new entry: the columns can stay as they are

    def __delitem__(self, entry_id: UUID) -> None:
        del self._read()[entry_id]

    def __iter__(self) -> Iterator[UUID]:
        return iter(self._read())

    def __len__(self) -> int:
        columns = self._columns
        stored = 0 if columns is None else len(columns["ids"]) // _ID
        return stored + len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        if isinstance(entry_id, UUID) and self._in_columns(entry_id):
            return True
        return bool(entry_id in self._entries)

    def get(self, entry_id: UUID, default: Any = None) -> Any:
        return self._read().get(entry_id, default)

    def values(self) -> Any:
        return self._read().values()

    def items(self) -> Any:
        return self._read().items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Hours):
            return self._read() == other._read()
        if isinstance(other, dict):
            return self._read() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict

    def __repr__(self) -> str:
        return f"Hours({self._read()!r})"
