"""A mapping by id of a cooperative's members or work, made from stored columns when read.

Why: most commands ask only whether someone is a member (``in``) or how many there are,
and a vote or a proposal never looks at the work. A snapshot holds members and work as
columns (``ledger.typed.Columns``); loaded, they stay columns: a lookup by id uses the
id column, and the values are made, all at once, when one is first read or anything
changes. Unread, they are written back as they came.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterable, Iterator, MutableMapping, ValuesView
from typing import Any, Generic, TypeVar, overload
from uuid import UUID

__all__ = ["LazyMapping", "Records"]

V = TypeVar("V")
T = TypeVar("T")


class LazyMapping(MutableMapping[UUID, V], Generic[V]):
    """What every mapping by id that is read from stored columns shares: each read goes
    through ``_read``, which makes the values the first time it is called."""

    def _read(self) -> dict[UUID, V]:
        raise NotImplementedError

    def __getitem__(self, key: UUID) -> V:
        return self._read()[key]

    @overload
    def get(self, key: UUID, /) -> V | None: ...

    @overload
    def get(self, key: UUID, /, default: V | T) -> V | T: ...

    def get(self, key: UUID, /, default: Any = None) -> Any:
        # Mapping.get would go through __getitem__ and a KeyError for every new id.
        return self._read().get(key, default)

    def values(self) -> ValuesView[V]:
        return self._read().values()

    def items(self) -> ItemsView[UUID, V]:
        return self._read().items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, type(self)):
            return self._read() == other._read()
        if isinstance(other, dict):
            return self._read() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._read()!r})"


class Records(LazyMapping[V]):
    """Values by id, in the order they were added; built lazily from stored columns."""

    def __init__(self, items: Iterable[tuple[UUID, V]] = ()) -> None:
        self._items: dict[UUID, V] = dict(items)
        self._columns: dict[str, Any] | None = None  # not yet made into values
        self._ids: list[str] = []  # the id column (32-digit hex) while unread
        self._known: set[str] = set()  # the same, as a set
        self._make: Callable[[dict[str, Any]], dict[UUID, V]] | None = None
        self._key: Callable[[str], UUID] | None = None

    @classmethod
    def unread(
        cls,
        columns: dict[str, Any],
        ids: list[str],
        make: Callable[[dict[str, Any]], dict[UUID, V]],
        key: Callable[[str], UUID],
    ) -> Records[V]:
        """Values still in ``columns``; ``ids`` is their id column, all hex strings.

        ``make`` makes the values from the columns, ``key`` an id from its hex string.
        """
        records: Records[V] = cls()
        if ids:
            known = set(ids)
            if len(known) != len(ids):
                raise ValueError("stored records: an id is in the id column twice")
            records._columns, records._ids, records._known = columns, ids, known
            records._make, records._key = make, key
        return records

    def stored_columns(self) -> dict[str, Any] | None:
        """The columns as loaded, while no value has been made from them."""
        return self._columns

    def _read(self) -> dict[UUID, V]:
        columns, make = self._columns, self._make
        if columns is None or make is None:
            return self._items
        self._items = make(columns)
        self._columns, self._ids, self._known = None, [], set()
        return self._items

    # ---- the mapping ------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        if self._columns is None:
            return key in self._items
        return isinstance(key, UUID) and key.hex in self._known

    def __len__(self) -> int:
        return len(self._ids) if self._columns is not None else len(self._items)

    def __iter__(self) -> Iterator[UUID]:
        if self._columns is not None and self._key is not None:
            return iter([self._key(i) for i in self._ids])
        return iter(self._items)

    def __setitem__(self, key: UUID, value: V) -> None:
        self._read()[key] = value

    def __delitem__(self, key: UUID) -> None:
        del self._read()[key]
