"""The command mix every writer runs: mostly hours and votes, admissions while there is room.

A writer founds a cooperative of 12 (one command), each founder takes a piece of work
(12 commands), then: members log hours on their own work (two commands in three), raise
a general proposal, vote on it one by one and close it once all voted, and the mentor
admits a new member every 25th command until there are 20. After ``COMMANDS_PER_COOP``
commands the writer founds the next cooperative, so an aggregate's history (and the cost
of loading or copying it) is the same however long the run. Every step is one command,
run through the ``Ledger``'s public methods or a stock ``eventsourcing`` app (``stock``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

from ledger.application import CommandResult, Ledger
from ledger.cooperative import Cooperative
from ledger.rules import DecisionRules, ProposalKind, VoteChoice
from ledger.state import FoundingMember

FOUNDERS = 12
CANDIDATES = 8
ADMIT_EVERY = 25
COMMANDS_PER_COOP = 200
TEXT = "buy a second van"

Kind = Literal["found", "take_work", "log_hours", "vote", "raise", "close", "admit"]


@dataclass(frozen=True)
class Step:
    kind: Kind
    actor: UUID
    target: UUID  # the new work, the work, the proposal or the person admitted


@dataclass(frozen=True)
class Cast:
    """The people a writer's cooperatives are made of (registered once per writer)."""

    facilitator: UUID
    mentor: UUID
    people: list[UUID]

    @classmethod
    def anonymous(cls) -> Cast:
        return cls(uuid4(), uuid4(), [uuid4() for _ in range(FOUNDERS + CANDIDATES)])

    @classmethod
    def registered(cls, ledger: Ledger) -> Cast:
        facilitator = ledger.register_person("Facilitator").id
        mentor = ledger.register_person("Mentor").id
        people = [ledger.register_person(f"Worker {n}").id for n in range(FOUNDERS + CANDIDATES)]
        return cls(facilitator, mentor, people)

    @property
    def founders(self) -> list[UUID]:
        return self.people[:FOUNDERS]

    def founding_members(self) -> list[FoundingMember]:
        return [FoundingMember(p, f"group {n % 2}") for n, p in enumerate(self.founders)]


@dataclass
class Mix:
    cast: Cast
    coop_id: UUID | None = None
    count: int = 0
    members: list[UUID] = field(default_factory=list)
    works: dict[UUID, UUID] = field(default_factory=dict)
    candidates: list[UUID] = field(default_factory=list)
    proposal: UUID | None = None
    voters: list[UUID] = field(default_factory=list)

    def next(self) -> Step:
        if self.coop_id is None or self.count >= COMMANDS_PER_COOP:
            self.coop_id, self.count, self.proposal = None, 0, None
            self.members, self.works = list(self.cast.founders), {}
            self.candidates = self.cast.people[FOUNDERS:]
            return Step("found", self.cast.facilitator, uuid4())
        if len(self.works) < FOUNDERS:
            return Step("take_work", self.cast.founders[len(self.works)], uuid4())
        n, self.count = self.count, self.count + 1
        if self.candidates and n % ADMIT_EVERY == ADMIT_EVERY - 1:
            person, self.candidates = self.candidates[-1], self.candidates[:-1]
            return Step("admit", self.cast.mentor, person)
        if n % 3 == 2:
            if self.proposal is None:
                return Step("raise", self.members[n % len(self.members)], uuid4())
            if self.voters:
                return Step("vote", self.voters.pop(), self.proposal)
            proposal, self.proposal = self.proposal, None
            return Step("close", self.members[0], proposal)
        member = self.cast.founders[n % FOUNDERS]
        return Step("log_hours", member, self.works[member])

    def done(self, step: Step, value: Any) -> None:
        """Learn from a step that succeeded; ``value`` is what its command returned."""
        if step.kind == "found":
            self.coop_id = value
        elif step.kind == "take_work":
            self.works[step.actor] = step.target
        elif step.kind == "admit":
            self.members.append(step.target)
        elif step.kind == "raise":
            self.proposal = value
            self.voters = list(self.members)

    @property
    def cooperative(self) -> UUID:
        if self.coop_id is None:
            raise RuntimeError("found the cooperative first")
        return self.coop_id


def found_aggregate(cast: Cast, at: datetime) -> Cooperative:
    return Cooperative.found(
        name="De Schoonmakers",
        sector="cleaning",
        members=cast.founding_members(),
        mentor_id=cast.mentor,
        rules=DecisionRules(),
        actor=cast.facilitator,
        at=at,
    )


def act(step: Step, coop: Cooperative, at: datetime) -> Any:
    """Run ``step`` (not a founding) on a loaded aggregate: the stock path."""
    if step.kind == "take_work":
        return coop.take_work("client-1", "", actor=step.actor, at=at, work_id=step.target)
    if step.kind == "log_hours":
        return coop.log_hours(step.target, 30, at.date(), actor=step.actor, at=at)
    if step.kind == "vote":
        return coop.vote(step.target, VoteChoice.FOR, actor=step.actor, at=at)
    if step.kind == "raise":
        closes_at = at + timedelta(days=7)
        return coop.raise_proposal(
            ProposalKind.GENERAL, TEXT, actor=step.actor, at=at, closes_at=closes_at,
            proposal_id=step.target,
        )  # fmt: skip
    if step.kind == "close":
        return coop.close_proposal(step.target, actor=step.actor, at=at)
    return coop.admit_founding_member(step.target, actor=step.actor, at=at)


def ledger_step(ledger: Ledger, mix: Mix, step: Step) -> CommandResult:
    """Run ``step`` through the Ledger's public command."""
    if step.kind == "found":
        return ledger.found_cooperative(
            name="De Schoonmakers",
            sector="cleaning",
            members=mix.cast.founding_members(),
            mentor_id=mix.cast.mentor,
            actor=mix.cast.facilitator,
        )
    cid = mix.cooperative
    if step.kind == "take_work":
        return ledger.take_work(cid, client_ref="client-1", actor=step.actor, work_id=step.target)
    if step.kind == "log_hours":
        return ledger.log_hours(cid, step.target, minutes=30, actor=step.actor)
    if step.kind == "vote":
        return ledger.vote(cid, step.target, VoteChoice.FOR, actor=step.actor)
    if step.kind == "raise":
        return ledger.raise_proposal(cid, kind=ProposalKind.GENERAL, text=TEXT, actor=step.actor)
    if step.kind == "close":
        return ledger.close_proposal(cid, step.target, actor=step.actor)
    return ledger.admit_founding_member(cid, step.target, actor=step.actor)


class LedgerWriter:
    """One writer on the Ledger: ``step()`` runs the mix's next command."""

    def __init__(self, ledger: Ledger, cast: Cast | None = None) -> None:
        self.ledger = ledger
        self.mix = Mix(cast or Cast.registered(ledger))

    def command(self) -> CommandResult:
        step = self.mix.next()
        result = ledger_step(self.ledger, self.mix, step)
        self.mix.done(step, result.cooperative_id if step.kind == "found" else result.value)
        return result

    def step(self) -> int:
        self.command()
        return 1
