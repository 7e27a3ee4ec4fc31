"""A projection's handlers as a fold in memory: rows out, no SQL per event.

A rebuild has no reader to serve while it runs, so a projection need not keep its rows
in tables as it goes: a fold keeps, per cooperative, only the rows that a later event's
SQL can still change (current members, open proposals, unbilled hours, pending offers,
unpaid invoices: the open business the aggregate itself keeps) and hands every row
that nothing can change any more to ``out``, which streams it into the fresh table.
Once the stream has passed a cooperative's last event, nothing can change its rows:
``finish_cooperatives`` hands them out and forgets them, so what a pass holds follows the
cooperatives still open, not all there were. What is still open at the end is handed
out by ``finish``. Each fold mirrors its
projection's handlers statement for statement; the rebuild tests compare the two.

A row leaves memory once the handlers' SQL can no longer reach it, or, for hours and
invoices, once the aggregate itself forgets it (a paid invoice and its hours). An event
that would still change such a row cannot come from the aggregate; if one does, the
fold cannot know the row's state and raises ``CannotFold``, and the rebuild runs the
SQL handlers instead (``projections.rebuild``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

Row = tuple[Any, ...] | list[Any]
Method = Callable[[Any, Any, int], None]


def ship_nothing() -> None:
    """The default ``ship``: the caller empties ``out`` itself."""


class CannotFold(Exception):
    """An event would change a row the fold no longer holds: only the SQL is exact here."""


def folds(*names: str) -> Callable[[Method], Method]:
    """Mark a fold method as the one for the named events (collected by ``Fold``)."""

    def mark(func: Method) -> Method:
        func.__dict__["folds"] = names
        return func

    return mark


class Fold:
    """Base class: ``columns`` of each table's rows, methods marked with ``@folds``."""

    columns: ClassVar[dict[str, tuple[str, ...]]]
    methods: ClassVar[dict[str, Method]]
    # Whether a cooperative's rows depend on its own events only: then processes can
    # share the cooperatives out between them (``projections.fold_workers``).
    per_cooperative: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Method] = {}
        for value in vars(cls).values():
            for name in getattr(value, "folds", ()):
                if name in found:
                    raise TypeError(f"two fold methods for {name}")
                found[name] = value
        cls.methods = found

    def __init__(
        self, out: Mapping[str, list[Row]], ship: Callable[[], None] = ship_nothing
    ) -> None:
        # The same list objects for the whole pass: the sink empties them as it ships.
        self.out = {table: out[table] for table in self.columns}
        self.ship = ship  # sends what ``out`` holds: ``finish`` calls it as it goes

    def apply(self, event: Any, position: int) -> None:
        method = self.methods.get(type(event).__name__)
        if method is not None:
            method(self, event, position)

    def finish_cooperatives(self, coops: AbstractSet[str]) -> None:
        """Hand out every row still held for ``coops`` and forget them: their last events
        are folded. A fold that holds nothing per cooperative has nothing to do."""

    def finish(self) -> None:
        """Hand out every row still held: the pass is over."""
