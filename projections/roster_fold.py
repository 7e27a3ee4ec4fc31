"""The roster's handlers (``projections.roster``) as a fold: see ``projections.fold``.

Held: each cooperative's cap and count, current memberships and running roles. A
membership row is final once it has a ``left_at`` and a role once it has an
``ended_at``: the handlers' UPDATEs only reach rows without one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

from ledger.cooperative import one_year_after
from projections.fold import CannotFold, Fold, Row, folds, ship_nothing
from projections.framework import iso, uid

MEMBERS = (
    "coop_id",
    "person_id",
    "since",
    "conversation_group",
    "decision_id",
    "left_at",
    "joined_position",
)
ROLES = (
    "coop_id",
    "role",
    "person_id",
    "started_at",
    "planned_end",
    "ended_at",
    "decision_id",
    "ended_by_decision",
    "started_position",
)
LEFT_AT, ENDED_AT, ENDED_BY, COUNT = 5, 5, 7, 2


class RosterFold(Fold):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "roster_members": MEMBERS,
        "roster_roles": ROLES,
        "roster_cooperatives": ("coop_id", "member_cap", "member_count"),
    }

    def __init__(
        self, out: Mapping[str, list[Row]], ship: Callable[[], None] = ship_nothing
    ) -> None:
        super().__init__(out, ship)
        self.members = self.out["roster_members"]
        self.roles = self.out["roster_roles"]
        self.current: dict[tuple[str, str], list[list[Any]]] = {}  # memberships without left_at
        self.running: dict[tuple[str, str], list[list[Any]]] = {}  # roles without ended_at
        self.coops: dict[str, list[Any]] = {}

    def join(self, coop: str, person: Any, e: Any, group: str | None, position: int) -> None:
        person_id = str(person)
        row = [
            coop,
            person_id,
            iso(e.timestamp),
            group,
            uid(getattr(e, "decision_id", None)),
            None,
            position,
        ]
        self.current.setdefault((coop, person_id), []).append(row)

    def leave(self, coop: str, person: Any, e: Any) -> None:
        for row in self.current.pop((coop, str(person)), ()):
            row[LEFT_AT] = iso(e.timestamp)
            self.members.append(row)

    def count(self, coop: str, delta: int) -> None:
        row = self.coops.get(coop)
        if row is not None:  # an UPDATE of no row
            row[COUNT] += delta

    def end_role(self, coop: str, role: str, e: Any) -> None:
        for row in self.running.pop((coop, role), ()):
            row[ENDED_AT] = iso(e.timestamp)
            row[ENDED_BY] = uid(getattr(e, "decision_id", None))
            self.roles.append(row)

    def start_role(self, row: list[Any]) -> None:
        self.running.setdefault((row[0], row[1]), []).append(row)

    @folds("Founded", "SplitOff")
    def founded(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        if coop in self.coops:
            raise CannotFold(f"cooperative {coop} founded twice")
        for member in e.members:
            self.join(coop, member.person_id, e, member.conversation_group, position)
        self.coops[coop] = [coop, e.rules.member_cap, len(e.members)]
        if e.mentor_id is not None:
            planned = getattr(e, "mentor_until", None) or one_year_after(e.timestamp)
            self.start_role(
                [
                    coop,
                    "mentor",
                    str(e.mentor_id),
                    iso(e.timestamp),
                    iso(planned),
                    None,
                    None,
                    None,
                    position,
                ]
            )

    @folds("MemberAdmitted")
    def admitted(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        self.join(coop, e.person_id, e, e.conversation_group, position)
        self.count(coop, 1)

    @folds("MemberLeft")
    def left(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        self.leave(coop, e.person_id, e)
        self.count(coop, -1)

    @folds("Split")
    def split(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        for person_id in e.moving_members:
            self.leave(coop, person_id, e)
        self.count(coop, -len(e.moving_members))

    @folds("CoordinatorAppointed")
    def coordinator_appointed(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        self.end_role(coop, "coordinator", e)
        self.start_role(
            [
                coop,
                "coordinator",
                str(e.member_id),
                iso(e.timestamp),
                None,
                None,
                str(e.decision_id),
                None,
                position,
            ]
        )

    @folds("CoordinatorVacated")
    def coordinator_vacated(self, e: Any, position: int) -> None:
        self.end_role(str(e.originator_id), "coordinator", e)

    @folds("MentorshipEnded")
    def mentorship_ended(self, e: Any, position: int) -> None:
        self.end_role(str(e.originator_id), "mentor", e)

    @folds("RulesChanged")
    def rules_changed(self, e: Any, position: int) -> None:
        row = self.coops.get(str(e.originator_id))
        if row is not None:
            row[1] = e.rules.member_cap

    def finish_cooperatives(self, coops: AbstractSet[str]) -> None:
        # One scan for all of them: the pass gathers them (``fold_pass.FINISH_SHARE``).
        for key in [key for key in self.current if key[0] in coops]:
            self.members.extend(self.current.pop(key))
        for key in [key for key in self.running if key[0] in coops]:
            self.roles.extend(self.running.pop(key))
        for coop in coops:
            row = self.coops.pop(coop, None)
            if row is not None:
                self.out["roster_cooperatives"].append(row)

    def finish(self) -> None:
        for rows in self.current.values():
            self.members.extend(rows)
        for rows in self.running.values():
            self.roles.extend(rows)
        self.out["roster_cooperatives"].extend(self.coops.values())
        self.current, self.running, self.coops = {}, {}, {}
