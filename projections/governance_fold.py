"""Governance's handlers (``projections.governance``) as a fold: see ``projections.fold``.

Audit rows and findings of missing mandates are final as they are written. Held per
cooperative: its roles and rules, every member it has had, and open proposals with
their electorate; a decided proposal is final, since the aggregate refuses votes and
decisions on it. Of the decided proposals only what a mandate check can still find is
kept: the id, kind and subject of each adopted one a governance effect may cite
(admissions, appointments, splits, rule changes, the end of a mentorship), as few as
the governance actions, not the votes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, ClassVar

from ledger.cooperative import one_year_after
from ledger.rules import ProposalKind
from projections.fold import CannotFold, Fold, Row, folds, ship_nothing
from projections.framework import event_name, uid
from projections.governance import OUTCOMES, at_utc, people_named, summary, words

AUDIT = ("coop_id", "position", "version", "at", "actor_id", "kind", "summary", "reason",
         "decision_id")  # fmt: skip
PROPOSALS = (
    "coop_id", "proposal_id", "position", "kind", "text", "subject_id", "raised_by",
    "raised_at", "closes_at", "electorate_size", "turnout", "votes_for", "votes_against",
    "abstentions", "quorum_min", "rule_applied", "outcome", "refusal", "closed_at", "closed_by",
)  # fmt: skip
COOPERATIVES = ("coop_id", "mentor_id", "mentor_until", "mentorship_ended_at", "coordinator_id",
                "quorum_numerator", "quorum_denominator")  # fmt: skip
MENTOR, UNTIL, ENDED, COORDINATOR, NUMERATOR, DENOMINATOR = 1, 2, 3, 4, 5, 6
CHOICE, VOTED_AT, CHANGES = 3, 4, 5
# The kinds a mandate check asks for: a proposal of any other kind never passes one.
CITED = frozenset(k.value for k in ProposalKind if k is not ProposalKind.GENERAL)


class Open:
    """A proposal not yet decided: its row and its electorate's rows by person."""

    __slots__ = ("row", "voters")

    def __init__(self, row: list[Any], voters: dict[str, list[Any]]) -> None:
        self.row, self.voters = row, voters


class GovernanceFold(Fold):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "governance_audit": AUDIT,
        "governance_audit_people": ("coop_id", "person_id", "position"),
        "governance_proposals": PROPOSALS,
        "governance_electorate": (
            "coop_id",
            "proposal_id",
            "person_id",
            "choice",
            "voted_at",
            "changes",
        ),
        "governance_members": ("coop_id", "person_id", "joined_at", "left_at"),
        "governance_cooperatives": COOPERATIVES,
        "governance_unauthorised": ("coop_id", "position", "at", "actor_id", "kind", "why"),
    }

    def __init__(
        self, out: Mapping[str, list[Row]], ship: Callable[[], None] = ship_nothing
    ) -> None:
        super().__init__(out, ship)
        self.audit_out = self.out["governance_audit"]
        self.people_out = self.out["governance_audit_people"]
        self.coops: dict[str, list[Any]] = {}
        self.members: dict[tuple[str, str], list[Any]] = {}
        self.proposals: dict[tuple[str, str], Open] = {}
        self.adopted: dict[tuple[str, str], tuple[str, str | None]] = {}  # (kind, subject)

    def apply(self, event: Any, position: int) -> None:
        # Every event gets its audit row, as in Governance.apply.
        coop = str(event.originator_id)
        self.audit_out.append(
            (
                coop,
                position,
                event.originator_version,
                at_utc(event.timestamp),
                uid(getattr(event, "actor", None)),
                event_name(event),
                summary(event),
                getattr(event, "reason", None),
                uid(getattr(event, "decision_id", None)),
            )
        )
        for person in sorted(people_named(event)):
            self.people_out.append((coop, person, position))
        super().apply(event, position)

    # ---- the handlers' statements -------------------------------------------------

    def unauthorised(self, e: Any, position: int, why: str) -> None:
        self.out["governance_unauthorised"].append(
            (str(e.originator_id), position, at_utc(e.timestamp), uid(e.actor), event_name(e), why)
        )

    def no_mentor_authority(self, e: Any) -> str | None:
        row = self.coops.get(str(e.originator_id))
        if row is None or row[MENTOR] != str(e.actor):
            return f"{e.actor} is not the mentor"
        if row[ENDED] is not None:
            return "the mentorship had ended"
        if row[UNTIL] is None or e.timestamp >= datetime.fromisoformat(row[UNTIL]):
            return f"the mentor year was over ({row[UNTIL]})"
        return None

    def check_decision(
        self, e: Any, position: int, kind: ProposalKind, subject: Any = None
    ) -> None:
        what = words(event_name(e))
        if e.decision_id is None:
            self.unauthorised(e, position, f"{what} without a decision")
            return
        found = self.adopted.get((str(e.originator_id), str(e.decision_id)))
        if found is None or found[0] != kind.value or found[1] != uid(subject):
            to = f"to {kind.value}" + (f" {subject}" if subject else "")
            self.unauthorised(
                e,
                position,
                f"{what} cites decision {e.decision_id},"
                f" which is not an adopted proposal {to} in this cooperative",
            )

    def join(self, coop: str, person: Any, at: datetime) -> None:
        key = (coop, str(person))
        row = self.members.get(key)
        if row is None:
            self.members[key] = [*key, at_utc(at), None]
        else:  # a former member admitted again: first joining kept
            row[3] = None

    def leave(self, coop: str, person: Any, at: datetime) -> None:
        row = self.members.get((coop, str(person)))
        if row is not None:
            row[3] = at_utc(at)

    def set_role(self, e: Any, column: int, value: str | None) -> None:
        row = self.coops.get(str(e.originator_id))
        if row is not None:
            row[column] = value

    def vote(
        self, coop: str, proposal: str, actor: str, choice: str, at: str, changed: int
    ) -> None:
        held = self.proposals.get((coop, proposal))
        if held is None:
            raise CannotFold(f"a vote on proposal {proposal} in {coop}, not open")
        row = held.voters.get(actor)
        if row is None:  # not in the electorate: an UPDATE of no row
            return
        row[CHOICE] = choice
        if row[VOTED_AT] is None:  # the first vote's moment is kept
            row[VOTED_AT] = at
        row[CHANGES] += changed

    # ---- events ----------------------------------------------------------------------

    @folds("Founded", "SplitOff")
    def founded(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        if coop in self.coops:
            raise CannotFold(f"cooperative {coop} founded twice")
        until = e.mentor_until if hasattr(e, "mentor_until") else one_year_after(e.timestamp)
        self.coops[coop] = [
            coop,
            uid(e.mentor_id),
            at_utc(until) if until and e.mentor_id else None,
            None,
            None,
            e.rules.quorum_numerator,
            e.rules.quorum_denominator,
        ]
        for member in e.members:
            self.join(coop, member.person_id, e.timestamp)

    @folds("MemberAdmitted")
    def admitted(self, e: Any, position: int) -> None:
        if e.decision_id is not None:
            self.check_decision(e, position, ProposalKind.ADMIT_MEMBER, e.person_id)
        elif (why := self.no_mentor_authority(e)) is not None:
            self.unauthorised(e, position, f"admitted {e.person_id} without a decision, and {why}")
        self.join(str(e.originator_id), e.person_id, e.timestamp)

    @folds("MemberLeft")
    def left(self, e: Any, position: int) -> None:
        self.leave(str(e.originator_id), e.person_id, e.timestamp)

    @folds("Split")
    def split(self, e: Any, position: int) -> None:
        self.check_decision(e, position, ProposalKind.SPLIT)
        for person_id in e.moving_members:
            self.leave(str(e.originator_id), person_id, e.timestamp)

    @folds("CoordinatorAppointed")
    def coordinator_appointed(self, e: Any, position: int) -> None:
        self.check_decision(e, position, ProposalKind.APPOINT_COORDINATOR, e.member_id)
        self.set_role(e, COORDINATOR, str(e.member_id))

    @folds("CoordinatorVacated")
    def coordinator_vacated(self, e: Any, position: int) -> None:
        self.set_role(e, COORDINATOR, None)

    @folds("MentorshipEnded")
    def mentorship_ended(self, e: Any, position: int) -> None:
        if e.early or e.decision_id is not None:
            self.check_decision(e, position, ProposalKind.END_MENTORSHIP)
        else:
            row = self.coops.get(str(e.originator_id))
            if (
                row is None
                or row[UNTIL] is None
                or e.timestamp < datetime.fromisoformat(row[UNTIL])
            ):
                self.unauthorised(
                    e, position, "ended the mentorship before the mentor year was over"
                )
        self.set_role(e, ENDED, at_utc(e.timestamp))

    @folds("RulesChanged")
    def rules_changed(self, e: Any, position: int) -> None:
        self.check_decision(e, position, ProposalKind.CHANGE_RULES)
        row = self.coops.get(str(e.originator_id))
        if row is not None:
            row[NUMERATOR], row[DENOMINATOR] = e.rules.quorum_numerator, e.rules.quorum_denominator

    @folds("ProposalRaised")
    def proposal_raised(self, e: Any, position: int) -> None:
        coop, proposal = str(e.originator_id), str(e.proposal_id)
        if (coop, proposal) in self.proposals:
            raise CannotFold(f"proposal {proposal} in {coop} raised twice")
        row = [
            coop, proposal, position, str(e.kind), e.text, uid(e.subject), str(e.actor),
            at_utc(e.timestamp), at_utc(e.closes_at), len(e.electorate),
            None, None, None, None, None, None, None, None, None, None,
        ]  # fmt: skip
        voters: dict[str, list[Any]] = {}
        for person_id in e.electorate:
            person = str(person_id)
            if person in voters:
                raise CannotFold(f"proposal {proposal} in {coop} names a voter twice")
            voters[person] = [coop, proposal, person, None, None, 0]
        self.proposals[(coop, proposal)] = Open(row, voters)

    @folds("VoteCast", "VoteChanged")
    def voted(self, e: Any, position: int) -> None:
        changed = 1 if event_name(e) == "VoteChanged" else 0
        self.vote(
            str(e.originator_id),
            str(e.proposal_id),
            str(e.actor),
            str(e.choice),
            at_utc(e.timestamp),
            changed,
        )

    @folds(*OUTCOMES)
    def decided(self, e: Any, position: int) -> None:
        key = (str(e.originator_id), str(e.proposal_id))
        held = self.proposals.pop(key, None)
        if held is None:
            raise CannotFold(f"a decision on proposal {key[1]} in {key[0]}, not open")
        t, coop, outcome = e.tally, self.coops.get(key[0]), OUTCOMES[event_name(e)]
        # The smallest turnout that met the quorum under the rules in force at closing.
        quorum_min = (
            None if coop is None else t.electorate * coop[NUMERATOR] // coop[DENOMINATOR] + 1
        )
        held.row[10:] = [
            t.votes_for + t.votes_against + t.abstentions, t.votes_for, t.votes_against,
            t.abstentions, quorum_min, e.rule_applied, outcome, getattr(e, "refusal", None),
            at_utc(e.timestamp), str(e.actor),
        ]  # fmt: skip
        self.out["governance_proposals"].append(held.row)
        self.out["governance_electorate"].extend(held.voters.values())
        if outcome == "adopted" and held.row[3] in CITED:
            self.adopted[key] = (held.row[3], held.row[5])

    @folds("InvoiceIssued", "InvoicePaid", "InvoiceCredited")
    def invoicing(self, e: Any, position: int) -> None:
        coop, actor = str(e.originator_id), str(e.actor)
        row = self.coops.get(coop)
        member = self.members.get((coop, actor))
        if (
            row is not None
            and row[COORDINATOR] == actor
            and member is not None
            and member[3] is None
        ):
            return
        if self.no_mentor_authority(e) is None:
            return
        self.unauthorised(
            e,
            position,
            f"{words(event_name(e))} by {e.actor}, who was neither the coordinator"
            " nor the mentor within the mentor year",
        )

    def finish_cooperatives(self, coops: AbstractSet[str]) -> None:
        # One scan for all of them: the pass gathers them (``fold_pass.FINISH_SHARE``).
        for key in [key for key in self.proposals if key[0] in coops]:
            held = self.proposals.pop(key)
            self.out["governance_proposals"].append(held.row)
            self.out["governance_electorate"].extend(held.voters.values())
        for key in [key for key in self.members if key[0] in coops]:
            self.out["governance_members"].append(self.members.pop(key))
        for coop in coops:
            row = self.coops.pop(coop, None)
            if row is not None:
                self.out["governance_cooperatives"].append(row)
        for key in [key for key in self.adopted if key[0] in coops]:
            del self.adopted[key]

    def finish(self) -> None:
        for held in self.proposals.values():
            self.out["governance_proposals"].append(held.row)
            self.out["governance_electorate"].extend(held.voters.values())
        self.out["governance_members"].extend(self.members.values())
        self.out["governance_cooperatives"].extend(self.coops.values())
        self.coops, self.members, self.proposals, self.adopted = {}, {}, {}, {}
