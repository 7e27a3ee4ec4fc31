"""The Cooperative aggregate: its events and the guards that keep its rules.

Every command checks its rules first (the ``check_*`` guards) and triggers its
events only when all hold, so a refused command records nothing. The events'
``apply`` methods only change state: they re-run on every replay and must never
refuse what was once recorded.

Event classes and their fields are a public contract; their topics are stored
forever. Change one only with a ``class_version`` and an upcaster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ledger.errors import (
    AlreadyAMember,
    CapBelowMembership,
    CooperativeFull,
    InvalidInput,
    InvoiceNotFound,
    InvoiceSettled,
    MentorCannotBeMember,
    MentorYearOver,
    NoHandoverPending,
    NoMandate,
    NotAMember,
    NotEligibleToVote,
    NothingToInvoice,
    NotYourWork,
    PaymentExceedsOutstanding,
    ProposalClosed,
    ProposalNotFound,
    ProposalStillOpen,
    RuleViolation,
    SplitInvalid,
    WorkClosed,
    WorkNotFound,
)
from ledger.hours import Hours
from ledger.idset import IdSet
from ledger.records import Records
from ledger.rules import DecisionRules, Outcome, ProposalKind, Tally, VoteChoice, count, decide
from ledger.state import (
    CarriedWork,
    FoundingMember,
    HoursEntry,
    Invoice,
    InvoiceStatus,
    Member,
    Proposal,
    SplitPlan,
    Work,
    WorkStatus,
)
from ledger.typed import Columns

MAX_TEXT = 4000
MAX_MINUTES_PER_ENTRY = 24 * 60
CLOSED_WORK = (WorkStatus.COMPLETED, WorkStatus.MOVED)


def one_year_after(moment: datetime) -> datetime:
    """The same moment a calendar year later (29 February falls back to the 28th)."""
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:
        return moment.replace(year=moment.year + 1, day=28)


def _text(value: str, field: str, *, required: bool = True, limit: int = 200) -> str:
    check_plain_text(value, field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)
    return value


def check_moment(at: datetime, field: str = "at") -> None:
    """Every event's time is timezone-aware UTC (rule 11); a naive time is refused by name."""
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise InvalidInput(f"{field} must be a timezone-aware time", field=field)
    if at.utcoffset() != timedelta(0):
        raise InvalidInput(f"{field} must be in UTC", field=field)


def check_plain_text(value: object, field: str) -> None:
    """Text is stored forever and read by every store and tool: no NUL or other controls."""
    if isinstance(value, str) and any(c < " " and c not in "\n\t" for c in value):
        raise InvalidInput(f"{field} contains a control character", field=field)


def check_person_id(value: object, field: str) -> None:
    """Events name people by pseudonymous id only (rule 12), never by name."""
    if not isinstance(value, UUID):
        raise InvalidInput(
            f"{field} must be a person's id, not {type(value).__name__}", field=field
        )


def check_reason(reason: str | None) -> None:
    if reason is not None:
        check_plain_text(reason, "reason")
        if len(reason) > MAX_TEXT:
            raise InvalidInput(f"reason is longer than {MAX_TEXT} characters", field="reason")


def retire_closed_work(
    work: MutableMapping[UUID, Work],
    closed_work: dict[UUID, WorkStatus],
    hours: Mapping[UUID, HoursEntry],
    work_ids: Iterable[UUID],
) -> None:
    """Completed or moved work that no hours in the state are billed to keeps only its status."""
    billed_to = {entry.work_id for entry in hours.values()}
    for work_id in work_ids:
        item = work.get(work_id)
        if item is not None and item.status in CLOSED_WORK and work_id not in billed_to:
            del work[work_id]
            closed_work[work_id] = item.status


# The types of a Cooperative's attributes, so that its snapshots are written by type
# (ledger.typed). Keep in step with ``Cooperative.init_state``: an attribute left out is
# still written, only in the slower tagged form (a test checks the two agree).
STATE_TYPES: dict[str, Any] = {
    "_created_on": datetime,
    "_modified_on": datetime,
    "name": str,
    "sector": str,
    "rules": DecisionRules,
    "founded_at": datetime,
    "members": Annotated[Records[Member], Columns("person_id")],
    "former_members": dict[UUID, datetime],
    "mentor_id": UUID | None,
    "mentor_until": datetime | None,
    "mentorship_ended": bool,
    "coordinator_id": UUID | None,
    "proposals": dict[UUID, Proposal],
    "closed_proposals": IdSet,
    "work": Annotated[Records[Work], Columns("id")],
    "closed_work": dict[UUID, WorkStatus],
    "hours": Hours,
    "invoices": dict[int, Invoice],
    "invoices_issued": int,
    "credited_invoices": set[int],
    "credit_notes": int,
    "parent_id": UUID | None,
    "children": list[UUID],
    "conversion_id": UUID | None,
}


def _subject(kind: ProposalKind, subject: UUID | None) -> UUID:
    if subject is None:
        raise InvalidInput(f"a proposal to {kind.value} names its subject", field="subject")
    return subject


class Cooperative(Aggregate):
    """A self-governing group of at most 20 members who decide as equals.

    Its state is the size of its open business, not of its history: a decided proposal,
    a settled invoice and closed work leave only what a refusal still needs (an id, a
    number, a status). The events keep everything else; ``ledger.history`` reads it there.
    """

    # The version of the state a snapshot holds (the library upcasts older snapshots):
    # version 1 kept every proposal, invoice and piece of work the cooperative ever had;
    # version 2 kept the hours as a dict (version 3: ledger.hours.Hours, in columns);
    # version 3 kept the decided proposals' ids in a set (version 4: ledger.idset.IdSet) and
    # members and work in dicts, written a dict per value (version 4: ledger.records.Records,
    # in columns: ledger.typed.Columns).
    class_version = 4

    class Event(Aggregate.Event):
        actor: UUID
        reason: str | None

    # ---- founding -----------------------------------------------------------------

    class Founded(Event, Aggregate.Created):
        name: str
        sector: str
        members: tuple[FoundingMember, ...]
        mentor_id: UUID
        rules: DecisionRules
        conversion_id: UUID | None

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.init_state(self.name, self.sector, self.rules, self.timestamp)
            aggregate.mentor_id = self.mentor_id
            aggregate.mentor_until = one_year_after(self.timestamp)
            aggregate.conversion_id = self.conversion_id
            for m in self.members:
                aggregate.members[m.person_id] = Member(
                    m.person_id, self.timestamp, m.conversation_group, None
                )

    class SplitOff(Event, Aggregate.Created):
        """The founding of a cooperative by a split; it names its parent and the decision."""

        name: str
        sector: str
        parent_id: UUID
        decision_id: UUID
        members: tuple[FoundingMember, ...]
        mentor_id: UUID | None
        mentor_until: datetime | None
        rules: DecisionRules
        carried_work: tuple[CarriedWork, ...]

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.init_state(self.name, self.sector, self.rules, self.timestamp)
            aggregate.parent_id = self.parent_id
            aggregate.mentor_id = self.mentor_id
            aggregate.mentor_until = self.mentor_until
            for m in self.members:
                aggregate.members[m.person_id] = Member(
                    m.person_id, self.timestamp, m.conversation_group, self.decision_id
                )
            # Copies: state is mutable, the recorded event must never change.
            for carried in self.carried_work:
                aggregate.work[carried.work.id] = replace(carried.work)
                for entry in carried.entries:
                    aggregate.hours[entry.id] = replace(entry)

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        # Every command passes its moment here first, before any of its events exists.
        check_moment(kwargs["timestamp"])
        check_reason(kwargs.get("reason"))
        super().trigger_event(event_class, **kwargs)

    def init_state(self, name: str, sector: str, rules: DecisionRules, at: datetime) -> None:
        self.name = name
        self.sector = sector
        self.rules = rules
        self.founded_at = at
        self.members: Records[Member] = Records()
        self.former_members: dict[UUID, datetime] = {}
        self.mentor_id: UUID | None = None
        self.mentor_until: datetime | None = None
        self.mentorship_ended = False
        self.coordinator_id: UUID | None = None
        # Open proposals; of a decided one only its id, for ProposalClosed and unique ids.
        self.proposals: dict[UUID, Proposal] = {}
        self.closed_proposals = IdSet()
        # Open and released work, and closed work while hours here are still billed to it;
        # of other closed work only its status, for WorkClosed and NotYourWork.
        self.work: Records[Work] = Records()
        self.closed_work: dict[UUID, WorkStatus] = {}
        # Hours not yet invoiced or on an invoice not yet paid in full; paid hours leave.
        self.hours = Hours()
        # Invoices not yet paid in full or credited; numbers run 1..invoices_issued.
        self.invoices: dict[int, Invoice] = {}
        self.invoices_issued = 0
        self.credited_invoices: set[int] = set()
        self.credit_notes = 0
        self.parent_id: UUID | None = None
        self.children: list[UUID] = []
        self.conversion_id: UUID | None = None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A version 1 snapshot kept all history: keep its open business, as events now do."""
        proposals: dict[UUID, Proposal] = state["proposals"]
        state["proposals"] = {i: p for i, p in proposals.items() if p.is_open}
        state["closed_proposals"] = {i for i, p in proposals.items() if not p.is_open}
        invoices: dict[int, Invoice] = state["invoices"]
        paid = {n for n, i in invoices.items() if i.status is InvoiceStatus.PAID}
        state["invoices"] = {n: i for n, i in invoices.items() if i.status is InvoiceStatus.ISSUED}
        state["invoices_issued"] = max(invoices, default=0)
        state["credited_invoices"] = {
            n for n, i in invoices.items() if i.status is InvoiceStatus.CREDITED
        }
        hours: dict[UUID, HoursEntry] = state["hours"]
        state["hours"] = {i: e for i, e in hours.items() if e.invoice_number not in paid}
        state["closed_work"] = {}
        retire_closed_work(state["work"], state["closed_work"], state["hours"], list(state["work"]))

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """Version 2 kept the hours in a dict; the same entries, in the same order."""
        state["hours"] = Hours(state["hours"].items())

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        """Version 3 kept the decided proposals' ids in a set and members and work in dicts;
        the same ids in an IdSet, the same members and work in Records, in the same order.

        (A version 3 snapshot in the typed form reads as these already.)
        """
        closed = state["closed_proposals"]
        if not isinstance(closed, IdSet):
            state["closed_proposals"] = IdSet(closed)
        for name in ("members", "work"):
            if not isinstance(state[name], Records):
                state[name] = Records(state[name].items())

    @classmethod
    def found(
        cls,
        *,
        name: str,
        sector: str,
        members: Sequence[FoundingMember],
        mentor_id: UUID,
        rules: DecisionRules,
        actor: UUID,
        at: datetime,
        reason: str | None = None,
        conversion_id: UUID | None = None,
    ) -> Cooperative:
        """Found a cooperative from one or more conversation groups, with a mentor."""
        check_moment(at)
        check_reason(reason)
        rules.check()
        for member in members:
            check_plain_text(member.conversation_group, "conversation_group")
        ids = [m.person_id for m in members]
        for person_id in [*ids, mentor_id, actor]:
            check_person_id(person_id, "members")
        if not ids:
            raise InvalidInput("a cooperative is founded with at least one member", field="members")
        if len(set(ids)) != len(ids):
            raise InvalidInput("a founding member is listed twice", field="members")
        if len(ids) > rules.member_cap:
            raise CooperativeFull(
                f"{len(ids)} founding members exceed the cap of {rules.member_cap}; "
                "found two cooperatives instead (a conversion does this)",
                field="members",
            )
        if mentor_id in ids:
            raise MentorCannotBeMember(
                "the mentor guides the cooperative and is not one of its members",
                field="mentor_id",
            )
        return cls._create(
            cls.Founded,
            timestamp=at,
            name=_text(name, "name"),
            sector=_text(sector, "sector"),
            members=tuple(members),
            mentor_id=mentor_id,
            rules=rules,
            conversion_id=conversion_id,
            actor=actor,
            reason=reason,
        )

    # ---- guards -------------------------------------------------------------------

    def mentor_is_active(self, at: datetime) -> bool:
        return (
            self.mentor_id is not None
            and not self.mentorship_ended
            and self.mentor_until is not None
            and at < self.mentor_until
        )

    def check_is_member(self, person_id: UUID, field: str = "actor") -> None:
        if person_id not in self.members:
            raise NotAMember(f"{person_id} is not a member of this cooperative", field=field)

    def check_has_room(self, joining: int = 1) -> None:
        if len(self.members) + joining > self.rules.member_cap:
            raise CooperativeFull(
                f"the cooperative has {len(self.members)} members and a cap of "
                f"{self.rules.member_cap}; propose a split to make room",
                field="person_id",
            )

    def check_can_join(self, person_id: UUID) -> None:
        check_person_id(person_id, "person_id")
        if person_id in self.members:
            raise AlreadyAMember(f"{person_id} is already a member", field="person_id")
        if person_id == self.mentor_id:
            raise MentorCannotBeMember("the mentor cannot be a member", field="person_id")
        self.check_has_room()

    def check_is_active_mentor(self, actor: UUID, at: datetime) -> None:
        if actor != self.mentor_id:
            raise NoMandate("only the mentor admits founding members", field="actor")
        if not self.mentor_is_active(at):
            raise MentorYearOver(
                "the mentor year is over: new members are admitted by the members' decision",
                field="actor",
            )

    def check_may_invoice(self, actor: UUID, at: datetime) -> None:
        if actor == self.coordinator_id and actor in self.members:
            return
        if actor == self.mentor_id and self.mentor_is_active(at):
            return
        raise NoMandate(
            "invoices are issued by the coordinator (or the mentor during the mentor year)",
            field="actor",
        )

    def check_rules_fit(self, rules: DecisionRules) -> None:
        rules.check()
        if rules.member_cap < len(self.members):
            raise CapBelowMembership(
                f"a cap of {rules.member_cap} is below the {len(self.members)} current members",
                field="member_cap",
            )

    def check_split(self, plan: SplitPlan) -> None:
        _text(plan.new_name, "new_name")
        moving = set(plan.moving_members)
        if not moving:
            raise SplitInvalid("a split names at least one member who moves", field="split")
        if len(moving) != len(plan.moving_members):
            raise SplitInvalid("a moving member is listed twice", field="split")
        for person_id in moving:
            self.check_is_member(person_id, field="split")
        if len(moving) >= len(self.members):
            raise SplitInvalid("both cooperatives keep at least one member", field="split")

    def open_proposal(self, proposal_id: UUID) -> Proposal:
        proposal = self.proposals.get(proposal_id)
        if proposal is not None:
            return proposal
        if proposal_id in self.closed_proposals:
            raise ProposalClosed(f"proposal {proposal_id} is closed", field="proposal_id")
        raise ProposalNotFound(f"no proposal {proposal_id}", field="proposal_id")

    def check_work_known(self, work_id: UUID) -> WorkStatus:
        """The work's status; closed work that left the state is still known by it."""
        work = self.work.get(work_id)
        if work is not None:
            return work.status
        try:
            return self.closed_work[work_id]
        except KeyError:
            raise WorkNotFound(f"no work {work_id}", field="work_id") from None

    def check_holds_open_work(self, actor: UUID, work_id: UUID) -> None:
        if self.check_work_known(work_id) is WorkStatus.COMPLETED:
            raise WorkClosed(f"work {work_id} is completed", field="work_id")
        work = self.work.get(work_id)
        if work is None or work.holder != actor:
            raise NotYourWork("only the member who holds this work acts on it", field="work_id")

    def check_invoice_known(self, number: int) -> InvoiceStatus:
        """The invoice's status; a settled invoice is known by its number alone."""
        if number in self.invoices:
            return InvoiceStatus.ISSUED
        if not isinstance(number, int) or not 0 < number <= self.invoices_issued:
            raise InvoiceNotFound(f"no invoice number {number}", field="number")
        if number in self.credited_invoices:
            return InvoiceStatus.CREDITED
        return InvoiceStatus.PAID

    # ---- membership ---------------------------------------------------------------

    class MemberAdmitted(Event):
        person_id: UUID
        conversation_group: str | None
        decision_id: UUID | None

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.members[self.person_id] = Member(
                self.person_id, self.timestamp, self.conversation_group, self.decision_id
            )
            aggregate.former_members.pop(self.person_id, None)

    def admit_founding_member(
        self,
        person_id: UUID,
        *,
        actor: UUID,
        at: datetime,
        conversation_group: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Admit a founding member: the mentor's authority during the mentor year."""
        self.check_is_active_mentor(actor, at)
        self.check_can_join(person_id)
        self.trigger_event(
            self.MemberAdmitted,
            timestamp=at,
            person_id=person_id,
            conversation_group=conversation_group,
            decision_id=None,
            actor=actor,
            reason=reason,
        )

    class MemberLeft(Event):
        person_id: UUID
        released_work: tuple[UUID, ...]

        def apply(self, aggregate: Cooperative) -> None:
            del aggregate.members[self.person_id]
            aggregate.former_members[self.person_id] = self.timestamp
            for work_id in self.released_work:
                work = aggregate.work[work_id]
                work.holder = None
                work.status = WorkStatus.RELEASED
                work.handover_to = None
            for work in aggregate.work.values():
                if work.handover_to == self.person_id:
                    work.handover_to = None

    def leave(self, *, actor: UUID, at: datetime, reason: str | None = None) -> None:
        """Leave the cooperative on one's own word; open work is released for others to take."""
        self.check_is_member(actor)
        released = tuple(
            w.id for w in self.work.values() if w.holder == actor and w.status is WorkStatus.OPEN
        )
        self.trigger_event(
            self.MemberLeft,
            timestamp=at,
            person_id=actor,
            released_work=released,
            actor=actor,
            reason=reason,
        )
        if self.coordinator_id == actor:
            self.trigger_event(
                self.CoordinatorVacated,
                timestamp=at,
                member_id=actor,
                decision_id=None,
                actor=actor,
                reason="the coordinator left the cooperative",
            )

    # ---- roles --------------------------------------------------------------------

    class CoordinatorAppointed(Event):
        member_id: UUID
        replaces: UUID | None
        decision_id: UUID

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.coordinator_id = self.member_id

    class CoordinatorVacated(Event):
        member_id: UUID
        decision_id: UUID | None

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.coordinator_id = None

    def step_down_as_coordinator(
        self, *, actor: UUID, at: datetime, reason: str | None = None
    ) -> None:
        """Give up the coordinator role and stay a member; the role is vacant until a decision."""
        if actor != self.coordinator_id:
            raise NoMandate("only the coordinator can step down as coordinator", field="actor")
        self.trigger_event(
            self.CoordinatorVacated,
            timestamp=at,
            member_id=actor,
            decision_id=None,
            actor=actor,
            reason=reason,
        )

    class MentorshipEnded(Event):
        mentor_id: UUID
        decision_id: UUID | None
        early: bool

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.mentorship_ended = True

    def complete_mentor_year(self, *, actor: UUID, at: datetime, reason: str | None = None) -> None:
        """Record the handover after the mentor year: the mentor leaves, the members carry on."""
        if self.mentor_id is None or self.mentorship_ended or self.mentor_until is None:
            raise NoMandate("there is no mentorship to end", field="actor")
        if actor != self.mentor_id and actor not in self.members:
            raise NotAMember("only the mentor or a member records the handover", field="actor")
        if at < self.mentor_until:
            raise NoMandate(
                f"the mentor year runs until {self.mentor_until.isoformat()}; "
                "ending it earlier takes a decision",
                field="at",
            )
        self.trigger_event(
            self.MentorshipEnded,
            timestamp=at,
            mentor_id=self.mentor_id,
            decision_id=None,
            early=False,
            actor=actor,
            reason=reason,
        )

    class RulesChanged(Event):
        rules: DecisionRules
        decision_id: UUID

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.rules = self.rules

    # ---- proposals and votes ------------------------------------------------------

    class ProposalRaised(Event):
        proposal_id: UUID
        kind: ProposalKind
        text: str
        electorate: tuple[UUID, ...]
        closes_at: datetime
        subject: UUID | None
        new_rules: DecisionRules | None
        split: SplitPlan | None

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.proposals[self.proposal_id] = Proposal(
                id=self.proposal_id,
                kind=self.kind,
                text=self.text,
                raised_by=self.actor,
                raised_at=self.timestamp,
                closes_at=self.closes_at,
                electorate=self.electorate,
                subject=self.subject,
                new_rules=self.new_rules,
                split=self.split,
            )

    def raise_proposal(
        self,
        kind: ProposalKind,
        text: str,
        *,
        actor: UUID,
        at: datetime,
        closes_at: datetime,
        subject: UUID | None = None,
        new_rules: DecisionRules | None = None,
        split: SplitPlan | None = None,
        proposal_id: UUID | None = None,
        reason: str | None = None,
    ) -> UUID:
        """Put a question to all members; the electorate is the membership right now."""
        self.check_is_member(actor)
        text = _text(text, "text", limit=MAX_TEXT)
        check_moment(closes_at, "closes_at")
        closes_at = closes_at.astimezone(UTC)  # one tzinfo in every event, whoever parsed it
        if closes_at <= at:
            raise InvalidInput("closes_at must lie in the future", field="closes_at")
        self.check_proposal_payload(kind, subject, new_rules, split, at)
        proposal_id = proposal_id or uuid4()
        if proposal_id in self.proposals or proposal_id in self.closed_proposals:
            raise InvalidInput(f"proposal {proposal_id} already exists", field="proposal_id")
        self.trigger_event(
            self.ProposalRaised,
            timestamp=at,
            proposal_id=proposal_id,
            kind=kind,
            text=text,
            electorate=tuple(sorted(self.members, key=str)),
            closes_at=closes_at,
            subject=subject,
            new_rules=new_rules,
            split=split,
            actor=actor,
            reason=reason,
        )
        return proposal_id

    def check_proposal_payload(
        self,
        kind: ProposalKind,
        subject: UUID | None,
        new_rules: DecisionRules | None,
        split: SplitPlan | None,
        at: datetime,
    ) -> None:
        if kind is ProposalKind.ADMIT_MEMBER:
            self.check_can_join(_subject(kind, subject))
        elif kind is ProposalKind.APPOINT_COORDINATOR:
            self.check_is_member(_subject(kind, subject), field="subject")
        elif kind is ProposalKind.END_MENTORSHIP and not self.mentor_is_active(at):
            raise NoMandate(
                "there is no running mentor year to end early; after the year, "
                "the mentor or a member records the handover",
                field="kind",
            )
        elif kind is ProposalKind.CHANGE_RULES:
            if new_rules is None:
                raise InvalidInput("a proposal to change the rules states them", field="rules")
            self.check_rules_fit(new_rules)
        elif kind is ProposalKind.SPLIT:
            if split is None:
                raise InvalidInput("a proposal to split names who moves", field="split")
            self.check_split(split)

    class VoteCast(Event):
        proposal_id: UUID
        choice: VoteChoice

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.proposals[self.proposal_id].votes[self.actor] = self.choice

    class VoteChanged(Event):
        proposal_id: UUID
        choice: VoteChoice
        previous: VoteChoice

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.proposals[self.proposal_id].votes[self.actor] = self.choice

    def vote(
        self,
        proposal_id: UUID,
        choice: VoteChoice,
        *,
        actor: UUID,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """Cast one's one vote, or change it while the proposal is open."""
        proposal = self.open_proposal(proposal_id)
        if at >= proposal.closes_at:
            raise ProposalClosed("voting closed at the proposal's deadline", field="proposal_id")
        if actor not in proposal.electorate or actor not in self.members:
            raise NotEligibleToVote(
                "only members who were members when the proposal was raised vote on it",
                field="actor",
            )
        previous = proposal.votes.get(actor)
        if previous == choice:
            raise InvalidInput(f"the vote is already '{choice.value}'", field="choice")
        common: dict[str, Any] = dict(
            timestamp=at, proposal_id=proposal_id, choice=choice, actor=actor, reason=reason
        )
        if previous is None:
            self.trigger_event(self.VoteCast, **common)
        else:
            self.trigger_event(self.VoteChanged, previous=previous, **common)

    class ProposalDecided(Event):
        """Base of the three outcomes; carries the tally and the rule that was applied."""

        proposal_id: UUID
        tally: Tally
        rule_applied: str

        def apply(self, aggregate: Cooperative) -> None:
            # The events hold the text, the tally and every vote; the state keeps only the
            # id, so it stays the size of the open business (and so does each snapshot).
            del aggregate.proposals[self.proposal_id]
            aggregate.closed_proposals.add(self.proposal_id)

    class ProposalAdopted(ProposalDecided):
        """Adopted: its effect follows in the same write."""

    class ProposalRejected(ProposalDecided):
        """Rejected by the vote."""

    class ProposalExpired(ProposalDecided):
        """Closed without a quorum."""

    class ProposalLapsed(ProposalDecided):
        """Adopted by the vote, but its effect became impossible before closing (e.g. full)."""

        refusal: str

    def everyone_voted(self, proposal: Proposal) -> bool:
        remaining = [m for m in proposal.electorate if m in self.members]
        return all(m in proposal.votes for m in remaining)

    def close_proposal(
        self, proposal_id: UUID, *, actor: UUID, at: datetime, reason: str | None = None
    ) -> Cooperative | None:
        """Close a proposal when everyone voted or its deadline passed.

        An adopted proposal takes effect in the same events as its adoption. A split
        returns the new cooperative, to be saved together with this one.
        """
        if actor not in self.members and not (
            actor == self.mentor_id and self.mentor_is_active(at)
        ):
            raise NotAMember("only members (or the mentor) close a proposal", field="actor")
        proposal = self.open_proposal(proposal_id)
        if at < proposal.closes_at and not self.everyone_voted(proposal):
            raise ProposalStillOpen(
                f"{len(proposal.votes)} of {len(proposal.electorate)} have voted; "
                f"the proposal closes at {proposal.closes_at.isoformat()}",
                field="proposal_id",
            )
        tally = count(proposal.votes.values(), len(proposal.electorate))
        outcome, rule = decide(self.rules, proposal.kind, tally)
        common: dict[str, Any] = dict(
            timestamp=at, proposal_id=proposal_id, tally=tally, actor=actor, reason=reason
        )
        if outcome is Outcome.EXPIRED:
            self.trigger_event(self.ProposalExpired, rule_applied=rule, **common)
            return None
        if outcome is Outcome.REJECTED:
            self.trigger_event(self.ProposalRejected, rule_applied=rule, **common)
            return None
        try:
            self.check_proposal_payload(
                proposal.kind, proposal.subject, proposal.new_rules, proposal.split, at
            )
        except RuleViolation as refusal:
            self.trigger_event(
                self.ProposalLapsed, rule_applied=rule, refusal=refusal.code, **common
            )
            return None
        self.trigger_event(self.ProposalAdopted, rule_applied=rule, **common)
        return self._take_effect(proposal, actor=actor, at=at)

    def _take_effect(self, proposal: Proposal, *, actor: UUID, at: datetime) -> Cooperative | None:
        effect: dict[str, Any] = dict(
            timestamp=at, decision_id=proposal.id, actor=actor, reason=proposal.text
        )
        if proposal.kind is ProposalKind.ADMIT_MEMBER:
            self.trigger_event(
                self.MemberAdmitted, person_id=proposal.subject, conversation_group=None, **effect
            )
        elif proposal.kind is ProposalKind.APPOINT_COORDINATOR:
            self.trigger_event(
                self.CoordinatorAppointed,
                member_id=proposal.subject,
                replaces=self.coordinator_id,
                **effect,
            )
        elif proposal.kind is ProposalKind.END_MENTORSHIP:
            self.trigger_event(self.MentorshipEnded, mentor_id=self.mentor_id, early=True, **effect)
        elif proposal.kind is ProposalKind.CHANGE_RULES:
            self.trigger_event(self.RulesChanged, rules=proposal.new_rules, **effect)
        elif proposal.kind is ProposalKind.SPLIT and proposal.split is not None:
            return self._split(proposal.split, effect)
        return None

    # ---- split --------------------------------------------------------------------

    class Split(Event):
        """The parent's side of a split: who moved, which work went along, and the child."""

        child_id: UUID
        child_name: str
        moving_members: tuple[UUID, ...]
        moved_work: tuple[UUID, ...]
        decision_id: UUID

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.children.append(self.child_id)
            for person_id in self.moving_members:
                del aggregate.members[person_id]
                aggregate.former_members[person_id] = self.timestamp
            moving = set(self.moving_members)
            for work in aggregate.work.values():
                if work.handover_to in moving:
                    work.handover_to = None
            moved = set(self.moved_work)
            for entry_id in [
                e.id
                for e in aggregate.hours.values()
                if e.work_id in moved and e.invoice_number is None
            ]:
                del aggregate.hours[entry_id]
            # Invoiced hours stay with the parent, and so does a record of the work they were for.
            for work_id in moved:
                work = aggregate.work[work_id]
                work.status = WorkStatus.MOVED
                work.holder = None
                work.handover_to = None
            retire_closed_work(aggregate.work, aggregate.closed_work, aggregate.hours, moved)

    def _split(self, plan: SplitPlan, effect: dict[str, Any]) -> Cooperative:
        moving = set(plan.moving_members)
        carried = tuple(
            CarriedWork(
                work=replace(w, handover_to=None),
                entries=tuple(
                    replace(e)
                    for e in self.hours.values()
                    if e.work_id == w.id and e.invoice_number is None
                ),
            )
            for w in self.work.values()
            if w.holder in moving and w.status is WorkStatus.OPEN
        )
        if self.coordinator_id in moving:
            self.trigger_event(self.CoordinatorVacated, member_id=self.coordinator_id, **effect)
        child_id = uuid4()
        at = effect["timestamp"]
        mentor_active = self.mentor_is_active(at)
        child = Cooperative._create(
            Cooperative.SplitOff,
            id=child_id,
            timestamp=at,
            name=plan.new_name,
            sector=self.sector,
            parent_id=self.id,
            decision_id=effect["decision_id"],
            members=tuple(
                FoundingMember(p, self.members[p].conversation_group) for p in plan.moving_members
            ),
            mentor_id=self.mentor_id if mentor_active else None,
            mentor_until=self.mentor_until if mentor_active else None,
            rules=self.rules,
            carried_work=carried,
            actor=effect["actor"],
            reason=effect["reason"],
        )
        self.trigger_event(
            self.Split,
            child_id=child_id,
            child_name=plan.new_name,
            moving_members=plan.moving_members,
            moved_work=tuple(c.work.id for c in carried),
            **effect,
        )
        return child

    # ---- work ---------------------------------------------------------------------

    class WorkTaken(Event):
        work_id: UUID
        client_ref: str
        description: str

        def apply(self, aggregate: Cooperative) -> None:
            work = aggregate.work.get(self.work_id)
            if work is None:
                aggregate.work[self.work_id] = Work(
                    self.work_id, self.client_ref, self.description, self.actor, self.timestamp
                )
            else:
                work.holder = self.actor
                work.since = self.timestamp
                work.status = WorkStatus.OPEN

    def take_work(
        self,
        client_ref: str,
        description: str,
        *,
        actor: UUID,
        at: datetime,
        work_id: UUID | None = None,
        reason: str | None = None,
    ) -> UUID:
        """Take on a piece of client work oneself, or pick up work a leaving member released."""
        self.check_is_member(actor)
        if work_id is not None and (work_id in self.work or work_id in self.closed_work):
            if self.check_work_known(work_id) is not WorkStatus.RELEASED:
                raise NotYourWork(
                    "this work is held by a member; ask for a handover", field="work_id"
                )
            work = self.work[work_id]
            client_ref, description = work.client_ref, work.description
        work_id = work_id or uuid4()
        self.trigger_event(
            self.WorkTaken,
            timestamp=at,
            work_id=work_id,
            client_ref=_text(client_ref, "client_ref"),
            description=_text(description, "description", required=False, limit=MAX_TEXT),
            actor=actor,
            reason=reason,
        )
        return work_id

    class HoursLogged(Event):
        """Version 2 counts minutes; version 1 counted whole hours."""

        class_version = 2

        work_id: UUID
        entry_id: UUID
        minutes: int
        worked_on: date

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["minutes"] = state.pop("hours") * 60

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.hours[self.entry_id] = HoursEntry(
                self.entry_id, self.work_id, self.actor, self.minutes, self.worked_on
            )

    def log_hours(
        self,
        work_id: UUID,
        minutes: int,
        worked_on: date,
        *,
        actor: UUID,
        at: datetime,
        reason: str | None = None,
    ) -> UUID:
        """Log time spent on one's own work."""
        self.check_holds_open_work(actor, work_id)
        if not 0 < minutes <= MAX_MINUTES_PER_ENTRY:
            raise InvalidInput(
                f"minutes must be between 1 and {MAX_MINUTES_PER_ENTRY}", field="minutes"
            )
        if worked_on > at.date():
            raise InvalidInput("hours cannot be logged for a future day", field="worked_on")
        entry_id = uuid4()
        self.trigger_event(
            self.HoursLogged,
            timestamp=at,
            work_id=work_id,
            entry_id=entry_id,
            minutes=minutes,
            worked_on=worked_on,
            actor=actor,
            reason=reason,
        )
        return entry_id

    class WorkHandedOver(Event):
        work_id: UUID
        to_member: UUID

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.work[self.work_id].handover_to = self.to_member

    def hand_over_work(
        self,
        work_id: UUID,
        to_member: UUID,
        *,
        actor: UUID,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """Offer one's work to another member; it moves when they accept."""
        self.check_holds_open_work(actor, work_id)
        self.check_is_member(to_member, field="to_member")
        if to_member == actor:
            raise InvalidInput("work is handed over to another member", field="to_member")
        self.trigger_event(
            self.WorkHandedOver,
            timestamp=at,
            work_id=work_id,
            to_member=to_member,
            actor=actor,
            reason=reason,
        )

    class WorkAccepted(Event):
        work_id: UUID
        from_member: UUID

        def apply(self, aggregate: Cooperative) -> None:
            work = aggregate.work[self.work_id]
            work.holder = self.actor
            work.handover_to = None
            work.since = self.timestamp

    def accept_work(
        self, work_id: UUID, *, actor: UUID, at: datetime, reason: str | None = None
    ) -> None:
        """Accept work handed over to oneself; from now on one is the client's contact."""
        self.check_is_member(actor)
        if self.check_work_known(work_id) is not WorkStatus.OPEN:
            raise WorkClosed(f"work {work_id} is not open", field="work_id")
        work = self.work[work_id]
        if work.handover_to is not None and work.handover_to != actor:
            raise NotYourWork("this work was offered to another member", field="work_id")
        if work.handover_to != actor or work.holder is None:
            raise NoHandoverPending("this work was not handed over to you", field="work_id")
        self.trigger_event(
            self.WorkAccepted,
            timestamp=at,
            work_id=work_id,
            from_member=work.holder,
            actor=actor,
            reason=reason,
        )

    class WorkCompleted(Event):
        work_id: UUID

        def apply(self, aggregate: Cooperative) -> None:
            work = aggregate.work[self.work_id]
            work.status = WorkStatus.COMPLETED
            work.handover_to = None
            retire_closed_work(aggregate.work, aggregate.closed_work, aggregate.hours, [work.id])

    def complete_work(
        self, work_id: UUID, *, actor: UUID, at: datetime, reason: str | None = None
    ) -> None:
        """Mark one's work done; its logged hours can still be invoiced."""
        self.check_holds_open_work(actor, work_id)
        self.trigger_event(
            self.WorkCompleted, timestamp=at, work_id=work_id, actor=actor, reason=reason
        )

    # ---- invoices -----------------------------------------------------------------

    class InvoiceIssued(Event):
        number: int
        client_ref: str
        entry_ids: tuple[UUID, ...]
        hourly_rate_cents: int
        amount_cents: int

        def apply(self, aggregate: Cooperative) -> None:
            aggregate.invoices[self.number] = Invoice(
                self.number,
                self.client_ref,
                self.entry_ids,
                self.hourly_rate_cents,
                self.amount_cents,
                self.timestamp,
                self.actor,
            )
            aggregate.invoices_issued = self.number
            for entry_id in self.entry_ids:
                aggregate.hours[entry_id].invoice_number = self.number

    def uninvoiced_entries(self, client_ref: str) -> list[HoursEntry]:
        return [
            e
            for e in self.hours.values()
            if e.invoice_number is None and self.work[e.work_id].client_ref == client_ref
        ]

    def issue_invoice(
        self,
        client_ref: str,
        hourly_rate_cents: int,
        *,
        actor: UUID,
        at: datetime,
        reason: str | None = None,
    ) -> int:
        """Bill a client for all logged hours not yet invoiced; numbers run without gaps."""
        self.check_may_invoice(actor, at)
        if not 0 < hourly_rate_cents <= 10_000_000:
            raise InvalidInput(
                "hourly_rate_cents must be a positive number of cents", field="hourly_rate_cents"
            )
        entries = self.uninvoiced_entries(client_ref)
        if not entries:
            raise NothingToInvoice(
                f"no logged, uninvoiced hours for client '{client_ref}'", field="client_ref"
            )
        minutes = sum(e.minutes for e in entries)
        number = self.invoices_issued + 1
        self.trigger_event(
            self.InvoiceIssued,
            timestamp=at,
            number=number,
            client_ref=client_ref,
            entry_ids=tuple(e.id for e in entries),
            hourly_rate_cents=hourly_rate_cents,
            # Integer cents, rounded half up: (minutes * rate / 60).
            amount_cents=(minutes * hourly_rate_cents + 30) // 60,
            actor=actor,
            reason=reason,
        )
        return number

    class InvoicePaid(Event):
        number: int
        amount_cents: int

        def apply(self, aggregate: Cooperative) -> None:
            invoice = aggregate.invoices[self.number]
            invoice.paid_cents += self.amount_cents
            if invoice.status is InvoiceStatus.PAID:
                # Paid hours can never be billed or credited again: keep the state (and
                # every snapshot) the size of the open business, not of the whole history.
                del aggregate.invoices[self.number]
                paid = [aggregate.hours.pop(e) for e in invoice.entry_ids if e in aggregate.hours]
                work_ids = {entry.work_id for entry in paid}
                retire_closed_work(aggregate.work, aggregate.closed_work, aggregate.hours, work_ids)

    def register_payment(
        self,
        number: int,
        amount_cents: int,
        *,
        actor: UUID,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """Record a client's payment (in full or in part) against an invoice."""
        self.check_may_invoice(actor, at)
        status = self.check_invoice_known(number)
        if status is not InvoiceStatus.ISSUED:
            raise InvoiceSettled(f"invoice {number} is {status.value}", field="number")
        invoice = self.invoices[number]
        if amount_cents <= 0:
            raise InvalidInput("amount_cents must be positive", field="amount_cents")
        if amount_cents > invoice.outstanding_cents:
            raise PaymentExceedsOutstanding(
                f"{amount_cents} cents exceed the {invoice.outstanding_cents} outstanding",
                field="amount_cents",
            )
        self.trigger_event(
            self.InvoicePaid,
            timestamp=at,
            number=number,
            amount_cents=amount_cents,
            actor=actor,
            reason=reason,
        )

    class InvoiceCredited(Event):
        """A credit note cancels an unpaid invoice; its hours can be invoiced again."""

        number: int
        credit_note_number: int
        amount_cents: int

        def apply(self, aggregate: Cooperative) -> None:
            invoice = aggregate.invoices.pop(self.number)
            aggregate.credited_invoices.add(self.number)
            aggregate.credit_notes = self.credit_note_number
            for entry_id in invoice.entry_ids:
                entry = aggregate.hours.get(entry_id)
                if entry is not None:
                    entry.invoice_number = None

    def credit_invoice(
        self, number: int, *, actor: UUID, at: datetime, reason: str | None = None
    ) -> int:
        """Cancel an unpaid invoice with a credit note; the invoice itself never changes."""
        self.check_may_invoice(actor, at)
        status = self.check_invoice_known(number)
        invoice = self.invoices.get(number)
        if invoice is None or invoice.paid_cents:
            raise InvoiceSettled(
                f"invoice {number} is {status.value} or partly paid; "
                "only an unpaid invoice is credited",
                field="number",
            )
        credit_note_number = self.credit_notes + 1
        self.trigger_event(
            self.InvoiceCredited,
            timestamp=at,
            number=number,
            credit_note_number=credit_note_number,
            amount_cents=invoice.amount_cents,
            actor=actor,
            reason=reason,
        )
        return credit_note_number

    # ---- reading ------------------------------------------------------------------

    def open_work_of(self, member_id: UUID) -> Iterable[Work]:
        return (
            w for w in self.work.values() if w.holder == member_id and w.status is WorkStatus.OPEN
        )
