"""The directory's handlers (``projections.directory``) as a fold: see ``projections.fold``.

One row per cooperative, held until its last event: a member count changes as long as
the cooperative lives. A split-off child looks up its parent's root, and the parent
may be finished by then: every root is kept to the end (one id per cooperative).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

from projections.fold import CannotFold, Fold, Row, folds, ship_nothing
from projections.framework import iso, uid

COLUMNS = (
    "coop_id", "name", "sector", "member_count", "founded_at", "founded_position",
    "conversion_id", "parent_id", "split_decision_id", "root_id",
)  # fmt: skip
COUNT = 3


class DirectoryFold(Fold):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {"directory_cooperatives": COLUMNS}
    per_cooperative = False  # a split-off child takes its parent's root

    def __init__(
        self, out: Mapping[str, list[Row]], ship: Callable[[], None] = ship_nothing
    ) -> None:
        super().__init__(out, ship)
        self.coops: dict[str, list[Any]] = {}
        self.roots: dict[str, str] = {}

    def found(
        self, e: Any, position: int, root: str, conversion: Any, parent: Any, decision: Any
    ) -> None:
        coop = str(e.originator_id)
        if coop in self.roots:
            raise CannotFold(f"cooperative {coop} founded twice")
        self.roots[coop] = root
        self.coops[coop] = [
            coop, e.name, e.sector, len(e.members), iso(e.timestamp), position,
            uid(conversion), uid(parent), uid(decision), root,
        ]  # fmt: skip

    def count(self, e: Any, delta: int) -> None:
        row = self.coops.get(str(e.originator_id))
        if row is not None:  # an UPDATE of no row
            row[COUNT] += delta

    @folds("Founded")
    def founded(self, e: Any, position: int) -> None:
        self.found(e, position, str(e.originator_id), e.conversion_id, None, None)

    @folds("SplitOff")
    def split_off(self, e: Any, position: int) -> None:
        root = self.roots.get(str(e.parent_id))
        if root is None:  # as the handler says it
            raise LookupError(f"cooperative {e.originator_id} split off from unknown {e.parent_id}")
        self.found(e, position, root, None, e.parent_id, e.decision_id)

    @folds("Split")
    def split(self, e: Any, position: int) -> None:
        self.count(e, -len(e.moving_members))

    @folds("MemberAdmitted")
    def admitted(self, e: Any, position: int) -> None:
        self.count(e, 1)

    @folds("MemberLeft")
    def left(self, e: Any, position: int) -> None:
        self.count(e, -1)

    def finish_cooperatives(self, coops: AbstractSet[str]) -> None:
        for coop in coops:
            row = self.coops.pop(coop, None)
            if row is not None:
                self.out["directory_cooperatives"].append(row)

    def finish(self) -> None:
        self.out["directory_cooperatives"].extend(self.coops.values())
        self.coops, self.roots = {}, {}
