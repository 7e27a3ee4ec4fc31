"""Builders for unit tests of the Cooperative aggregate alone: no Ledger, no I/O.

Imported by the test modules as ``from helpers import ...``: ``tests/unit`` has no
``__init__.py``, so pytest's default ``prepend`` import mode puts this directory on
``sys.path`` before it imports a test module from it.

Time is explicit: every command gets ``at=``, counted from the fixed moment ``T0``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger.cooperative import Cooperative
from ledger.errors import RuleViolation
from ledger.rules import DecisionRules, ProposalKind, VoteChoice
from ledger.state import FoundingMember, SplitPlan

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
"""The founding moment of every cooperative built here (a Monday morning, UTC)."""

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
VOTING_PERIOD = timedelta(days=7)
MENTOR_YEAR_END = datetime(2027, 1, 5, 9, tzinfo=UTC)
"""One calendar year after ``T0``: the first moment the mentor's authority is over."""

FACILITATOR = UUID("00000000-0000-4000-8000-00000000fac1")
MENTOR = UUID("00000000-0000-4000-8000-0000000003e7")


def found(
    n_members: int = 5,
    *,
    rules: DecisionRules | None = None,
    at: datetime = T0,
    group: str | None = "group 1",
) -> Cooperative:
    """A cooperative of ``n_members`` new members, mentored by ``MENTOR``, founded at ``at``."""
    return Cooperative.found(
        name="De Schoonmakers",
        sector="cleaning",
        members=[FoundingMember(uuid4(), group) for _ in range(n_members)],
        mentor_id=MENTOR,
        rules=rules or DecisionRules(),
        actor=FACILITATOR,
        at=at,
    )


def members(coop: Cooperative) -> list[UUID]:
    """The current members, in the order they joined."""
    return list(coop.members)


def raise_(
    coop: Cooperative,
    kind: ProposalKind,
    *,
    at: datetime = T0,
    by: UUID | None = None,
    closes_at: datetime | None = None,
    **payload: Any,
) -> UUID:
    """Raise a proposal (by the first member unless ``by``); returns its id."""
    return coop.raise_proposal(
        kind,
        f"proposal to {kind.value}",
        actor=by or members(coop)[0],
        at=at,
        closes_at=closes_at or at + VOTING_PERIOD,
        **payload,
    )


def vote_all(
    coop: Cooperative,
    proposal_id: UUID,
    choice: VoteChoice = VoteChoice.FOR,
    *,
    at: datetime = T0,
) -> None:
    """Every member of the proposal's electorate who is still a member votes ``choice``."""
    for voter in coop.proposals[proposal_id].electorate:
        if voter in coop.members:
            coop.vote(proposal_id, choice, actor=voter, at=at)


def cast(
    coop: Cooperative,
    proposal_id: UUID,
    choices: Sequence[VoteChoice],
    *,
    at: datetime = T0,
) -> None:
    """The first ``len(choices)`` members of the electorate vote these choices, in order."""
    electorate = coop.proposals[proposal_id].electorate
    for voter, choice in zip(electorate, choices, strict=False):
        coop.vote(proposal_id, choice, actor=voter, at=at)


def close(coop: Cooperative, proposal_id: UUID, *, at: datetime = T0) -> Cooperative | None:
    """Close a proposal, acting as the first current member."""
    return coop.close_proposal(proposal_id, actor=members(coop)[0], at=at)


def pass_proposal(
    coop: Cooperative, kind: ProposalKind, *, at: datetime = T0, **payload: Any
) -> UUID:
    """Raise a proposal, have everyone vote for it and close it; returns the decision's id."""
    proposal_id = raise_(coop, kind, at=at, **payload)
    vote_all(coop, proposal_id, at=at)
    close(coop, proposal_id, at=at)
    return proposal_id


def appoint_coordinator(coop: Cooperative, member: UUID, *, at: datetime = T0) -> UUID:
    return pass_proposal(coop, ProposalKind.APPOINT_COORDINATOR, at=at, subject=member)


def split(
    coop: Cooperative, moving: Sequence[UUID], *, at: datetime = T0, new_name: str = "De Tweede"
) -> tuple[UUID, Cooperative]:
    """Decide a split unanimously; returns the decision's id and the new cooperative."""
    plan = SplitPlan(new_name, tuple(moving))
    proposal_id = raise_(coop, ProposalKind.SPLIT, at=at, split=plan)
    vote_all(coop, proposal_id, at=at)
    child = close(coop, proposal_id, at=at)
    assert child is not None
    return proposal_id, child


def work_with_hours(
    coop: Cooperative,
    member: UUID,
    client_ref: str,
    *minutes: int,
    at: datetime = T0,
) -> tuple[UUID, list[UUID]]:
    """``member`` takes work for ``client_ref`` and logs one entry per ``minutes`` value."""
    work_id = coop.take_work(client_ref, "weekly support", actor=member, at=at)
    entries = [
        coop.log_hours(work_id, m, worked_on=at.date(), actor=member, at=at) for m in minutes
    ]
    return work_id, entries


def outcome(coop: Cooperative, proposal_id: UUID) -> str:
    """How a decided proposal ended ('adopted', 'rejected', 'expired' or 'lapsed').

    Read from the pending events: the aggregate keeps only a decided proposal's id.
    """
    assert proposal_id in coop.closed_proposals
    (decided,) = [
        e
        for e in coop.pending_events
        if isinstance(e, Cooperative.ProposalDecided) and e.proposal_id == proposal_id
    ]
    return type(decided).__name__.removeprefix("Proposal").lower()


def event_names(events: Iterable[object]) -> list[str]:
    return [type(e).__name__ for e in events]


def replay(events: Iterable[Any]) -> Cooperative:
    """The aggregate rebuilt from its events alone (each event's ``mutate``, in order)."""
    rebuilt = functools.reduce(lambda aggregate, event: event.mutate(aggregate), events, None)
    assert isinstance(rebuilt, Cooperative)
    return rebuilt


def assert_replays_to_same_state(coop: Cooperative, history: Sequence[Any]) -> None:
    """``history`` (every event ``coop`` ever recorded) rebuilds an equal aggregate."""
    assert not coop.pending_events, "collect the pending events into the history first"
    rebuilt = replay(history)
    assert rebuilt.version == coop.version == len(history)
    assert vars(rebuilt) == vars(coop)
    # The rebuilt state is a copy: changing it leaves the recorded events untouched.
    assert rebuilt == replay(history)


@dataclass
class Refusal:
    """What ``refused`` caught: the error, for the test to look at."""

    error: RuleViolation | None = None


@contextmanager
def refused(coop: Cooperative, error: type[RuleViolation]) -> Iterator[Refusal]:
    """Expect the block to raise ``error`` and to record nothing at all.

    Pending events from the setup are collected first, so the check starts from zero
    pending; afterwards the version, the pending events and the whole state are as
    they were.
    """
    coop.collect_events()
    version = coop.version
    before = copy.deepcopy(vars(coop))
    refusal = Refusal()
    with pytest.raises(error) as info:
        yield refusal
    refusal.error = info.value
    assert coop.version == version
    assert coop.collect_events() == []
    assert vars(coop) == before
