"""A set of ids stored as one hex string, looked up in that string until it is iterated.

Why: a cooperative keeps the id of every proposal it ever decided (one a week for years),
and only a vote or a new proposal asks about them, by one id at a time. Loaded from a
snapshot the ids stay one string: a lookup searches it, an added id goes beside it, and
the ids become ``UUID`` objects only when something iterates the set. So a long
governance history costs a load one string, not a ``UUID`` per decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from uuid import UUID

from ledger.typed import uuid_from_hex

__all__ = ["IdSet", "hex_ids_contain"]

_ID = 32  # hex digits of an id


def hex_ids_contain(ids: str, hex_id: str) -> bool:
    """Whether ``hex_id`` is one of the ids in ``ids`` (a concatenation of 32-digit ids).

    A match that straddles two ids is not one of them: only matches at a multiple of 32 count.
    """
    at = ids.find(hex_id)
    while at != -1:
        if at % _ID == 0:
            return True
        at = ids.find(hex_id, at + 1)
    return False


class IdSet(MutableSet[UUID]):
    """Ids; those loaded stay one hex string (``to_stored``) until the set is iterated."""

    def __init__(self, ids: Iterable[UUID] = ()) -> None:
        self._stored = ""  # ids as loaded, not yet made into UUIDs
        self._added: dict[UUID, None] = dict.fromkeys(ids)  # in the order they were added

    @classmethod
    def from_stored(cls, data: str | list[str]) -> IdSet:
        """The set ``to_stored`` wrote; also the list of hex ids of ``set[UUID]`` typed."""
        ids = cls()
        if isinstance(data, list):  # how a version 3 snapshot wrote a set of ids
            ids._added = dict.fromkeys(uuid_from_hex(value) for value in data)
        elif len(data) % _ID:
            raise ValueError("an id set: not a concatenation of 32-digit hex ids")
        else:
            # Checking every digit now would cost more than the whole load saves; a bad
            # digit is refused when the ids are made into UUIDs (``uuid_from_hex``).
            ids._stored = data
        return ids

    def to_stored(self) -> str:
        return self._stored + "".join(value.hex for value in self._added)

    def _read(self) -> dict[UUID, None]:
        stored = self._stored
        if stored:
            self._stored = ""
            loaded = dict.fromkeys(
                uuid_from_hex(stored[n : n + _ID]) for n in range(0, len(stored), _ID)
            )
            loaded.update(self._added)
            self._added = loaded
        return self._added

    def __contains__(self, value: object) -> bool:
        if value in self._added:
            return True
        return isinstance(value, UUID) and hex_ids_contain(self._stored, value.hex)

    def __iter__(self) -> Iterator[UUID]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._stored) // _ID + len(self._added)

    def add(self, value: UUID) -> None:
        if value not in self:
            self._added[value] = None

    def discard(self, value: UUID) -> None:
        if value in self:
            del self._read()[value]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdSet):
            return self._read().keys() == other._read().keys()
        if isinstance(other, set | frozenset):
            return self._read().keys() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a set

    def __repr__(self) -> str:
        return f"IdSet({set(self._read())!r})"
