"""Decision rules and the tally, as pure values.

Defaults (domain.md rule 4, a product choice): quorum is more than half of the
electorate; a proposal is adopted when votes for exceed votes against; a split
or a change of rules needs two thirds of the votes cast. In consent mode a
proposal is adopted when nobody objects. Abstentions count towards the quorum,
never towards a majority.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ledger.errors import (
    CapAboveMaximum,
    InvalidInput,
    ManagerRoleDoesNotExist,
    UnknownProposalKind,
)

MAX_MEMBERS = 20


class DecisionMode(StrEnum):
    MAJORITY = "majority"
    CONSENT = "consent"


class ProposalKind(StrEnum):
    GENERAL = "general"
    ADMIT_MEMBER = "admit_member"
    APPOINT_COORDINATOR = "appoint_coordinator"
    END_MENTORSHIP = "end_mentorship"
    SPLIT = "split"
    CHANGE_RULES = "change_rules"


class VoteChoice(StrEnum):
    FOR = "for"
    AGAINST = "against"
    ABSTAIN = "abstain"


class Outcome(StrEnum):
    ADOPTED = "adopted"
    REJECTED = "rejected"
    EXPIRED = "expired"


SUPERMAJORITY_KINDS = frozenset({ProposalKind.SPLIT, ProposalKind.CHANGE_RULES})

# Words people reach for when they want a boss. The cooperative has none of these roles.
_HIERARCHY = re.compile(r"manager|chair|boss|lead|director|head|supervisor|president|chief")


@dataclass(frozen=True)
class DecisionRules:
    """How a cooperative decides. Set at founding, changed only by decision."""

    quorum_numerator: int = 1
    quorum_denominator: int = 2
    supermajority_numerator: int = 2
    supermajority_denominator: int = 3
    mode: DecisionMode = DecisionMode.MAJORITY
    member_cap: int = MAX_MEMBERS

    def check(self) -> None:
        """Refuse rules that could not work or that break the size rule."""
        if self.member_cap > MAX_MEMBERS:
            raise CapAboveMaximum(
                f"member_cap {self.member_cap} is above the maximum of {MAX_MEMBERS}; "
                "a larger group splits into two cooperatives",
                field="member_cap",
            )
        if self.member_cap < 1:
            raise InvalidInput("member_cap must be at least 1", field="member_cap")
        # The quorum is a line turnout must pass: at n/n no proposal could ever pass it.
        if not 0 <= self.quorum_numerator < self.quorum_denominator:
            raise InvalidInput(
                "quorum must be a fraction from 0 up to (not including) 1, got "
                f"{self.quorum_numerator}/{self.quorum_denominator}",
                field="quorum_numerator",
            )
        if not 0 < self.supermajority_numerator <= self.supermajority_denominator:
            raise InvalidInput(
                "supermajority must be a fraction above 0 and at most 1, got "
                f"{self.supermajority_numerator}/{self.supermajority_denominator}",
                field="supermajority_numerator",
            )


@dataclass(frozen=True)
class Tally:
    electorate: int
    votes_for: int
    votes_against: int
    abstentions: int

    @property
    def turnout(self) -> int:
        return self.votes_for + self.votes_against + self.abstentions


def parse_kind(value: str) -> ProposalKind:
    """The proposal kind named by ``value``; a request for a boss is refused by name."""
    try:
        return ProposalKind(value)
    except ValueError:
        pass
    if _HIERARCHY.search(value.lower()):
        raise ManagerRoleDoesNotExist(
            f"'{value}': the only roles are mentor and coordinator; "
            "in a cooperative, equals discuss what needs solving",
            field="kind",
        )
    kinds = ", ".join(k.value for k in ProposalKind)
    raise UnknownProposalKind(f"unknown proposal kind '{value}' (one of: {kinds})", field="kind")


def count(votes: Iterable[VoteChoice], electorate: int) -> Tally:
    choices = list(votes)
    return Tally(
        electorate=electorate,
        votes_for=choices.count(VoteChoice.FOR),
        votes_against=choices.count(VoteChoice.AGAINST),
        abstentions=choices.count(VoteChoice.ABSTAIN),
    )


def decide(rules: DecisionRules, kind: ProposalKind, tally: Tally) -> tuple[Outcome, str]:
    """The outcome of a closed proposal and a readable statement of the rule applied."""
    quorum = f"quorum: turnout {tally.turnout} of {tally.electorate} must exceed "
    quorum += f"{rules.quorum_numerator}/{rules.quorum_denominator}"
    if tally.turnout * rules.quorum_denominator <= tally.electorate * rules.quorum_numerator:
        return Outcome.EXPIRED, quorum + " (not met)"
    if rules.mode is DecisionMode.CONSENT:
        adopted = tally.votes_against == 0
        return _outcome(adopted), f"{quorum}; consent: adopted when nobody objects"
    cast = tally.votes_for + tally.votes_against
    if kind in SUPERMAJORITY_KINDS:
        num, den = rules.supermajority_numerator, rules.supermajority_denominator
        adopted = tally.votes_for > 0 and tally.votes_for * den >= cast * num
        return _outcome(adopted), f"{quorum}; supermajority: at least {num}/{den} of votes cast"
    adopted = tally.votes_for > tally.votes_against
    return _outcome(adopted), f"{quorum}; majority: votes for exceed votes against"


def _outcome(adopted: bool) -> Outcome:
    return Outcome.ADOPTED if adopted else Outcome.REJECTED
