"""The aggregate's state is the size of its open business, not of its history.

A decided proposal, a settled invoice and closed work leave only what a refusal still
needs; the events keep the rest. So a snapshot of a long history stays as small (and as
quick to load) as one of a short history with the same open business, and a version 1
snapshot (which kept everything) is upcast to what replaying the events gives.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Mapper
from helpers import (
    DAY,
    HOUR,
    MENTOR,
    MENTOR_YEAR_END,
    T0,
    assert_replays_to_same_state,
    close,
    found,
    members,
    pass_proposal,
    raise_,
    refused,
    replay,
    split,
    vote_all,
    work_with_hours,
)

from ledger.application import Ledger, make_transcoder
from ledger.cooperative import Cooperative
from ledger.errors import (
    InvalidInput,
    InvoiceNotFound,
    InvoiceSettled,
    NotYourWork,
    ProposalClosed,
    ProposalNotFound,
    RuleViolation,
    WorkClosed,
    WorkNotFound,
)
from ledger.loadgen import long_history
from ledger.rules import Outcome, ProposalKind, VoteChoice
from ledger.state import InvoiceStatus, WorkStatus

# ---- invoices ----------------------------------------------------------------------------


def test_an_invoice_paid_in_full_leaves_the_state_with_its_hours() -> None:
    coop = found(3)
    worker = members(coop)[0]
    work_id, entries = work_with_hours(coop, worker, "family-1", 60, 30)
    number = coop.issue_invoice("family-1", 6000, actor=MENTOR, at=T0 + HOUR)

    coop.register_payment(number, 4000, actor=MENTOR, at=T0 + DAY)
    assert coop.invoices[number].entry_ids == tuple(entries)
    assert set(coop.hours) == set(entries)
    coop.register_payment(number, 5000, actor=MENTOR, at=T0 + 2 * DAY)

    assert coop.invoices == {}
    assert coop.hours == {}
    assert coop.invoices_issued == 1
    assert coop.check_invoice_known(number) is InvoiceStatus.PAID
    assert coop.work[work_id].status is WorkStatus.OPEN  # open work stays whole


def test_a_credited_invoice_leaves_the_state_and_its_hours_wait_for_the_next_invoice() -> None:
    coop = found(3)
    _, entries = work_with_hours(coop, members(coop)[0], "family-1", 60, 30)
    number = coop.issue_invoice("family-1", 6000, actor=MENTOR, at=T0 + HOUR)

    coop.credit_invoice(number, actor=MENTOR, at=T0 + DAY)

    assert coop.invoices == {}
    assert coop.credited_invoices == {number}
    assert [coop.hours[e].invoice_number for e in entries] == [None, None]
    again = coop.issue_invoice("family-1", 6000, actor=MENTOR, at=T0 + 2 * DAY)
    assert (again, coop.invoices[again].entry_ids) == (number + 1, tuple(entries))


def test_refusals_on_a_settled_invoice_are_the_same_as_when_it_was_kept_whole() -> None:
    coop = found(3)
    worker = members(coop)[0]
    work_with_hours(coop, worker, "family-1", 60)
    paid = coop.issue_invoice("family-1", 6000, actor=MENTOR, at=T0 + HOUR)
    coop.register_payment(paid, 6000, actor=MENTOR, at=T0 + HOUR)
    work_with_hours(coop, worker, "family-2", 60)
    credited = coop.issue_invoice("family-2", 6000, actor=MENTOR, at=T0 + HOUR)
    coop.credit_invoice(credited, actor=MENTOR, at=T0 + HOUR)

    refusals = [
        (lambda: coop.register_payment(paid, 1, actor=MENTOR, at=T0 + DAY), InvoiceSettled),
        (lambda: coop.credit_invoice(paid, actor=MENTOR, at=T0 + DAY), InvoiceSettled),
        (lambda: coop.register_payment(credited, 1, actor=MENTOR, at=T0 + DAY), InvoiceSettled),
        (lambda: coop.credit_invoice(credited, actor=MENTOR, at=T0 + DAY), InvoiceSettled),
        (lambda: coop.register_payment(3, 1, actor=MENTOR, at=T0 + DAY), InvoiceNotFound),
        (lambda: coop.credit_invoice(0, actor=MENTOR, at=T0 + DAY), InvoiceNotFound),
    ]
    caught = []
    for command, error in refusals:
        with refused(coop, error) as refusal:
            command()
        caught.append(refusal.error)

    assert {getattr(e, "field", None) for e in caught} == {"number"}
    assert [str(e) for e in caught[:4]] == [
        "invoice 1 is paid",
        "invoice 1 is paid or partly paid; only an unpaid invoice is credited",
        "invoice 2 is credited",
        "invoice 2 is credited or partly paid; only an unpaid invoice is credited",
    ]


# ---- proposals ---------------------------------------------------------------------------


def test_a_decided_proposal_leaves_only_its_id_not_its_text_votes_or_electorate() -> None:
    coop = found(4)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    vote_all(coop, proposal_id, VoteChoice.FOR)
    assert coop.proposals[proposal_id].votes

    close(coop, proposal_id, at=T0 + HOUR)

    assert coop.proposals == {}
    assert coop.closed_proposals == {proposal_id}
    (decided,) = [e for e in coop.pending_events if isinstance(e, Cooperative.ProposalDecided)]
    assert isinstance(decided, Cooperative.ProposalAdopted)  # the event keeps the outcome
    assert decided.tally.votes_for == 4


def test_refusals_on_a_decided_proposal_are_the_same_as_when_it_was_kept_whole() -> None:
    coop = found(3)
    voter = members(coop)[0]
    decided = pass_proposal(coop, ProposalKind.GENERAL)

    with refused(coop, ProposalClosed) as vote:
        coop.vote(decided, VoteChoice.AGAINST, actor=voter, at=T0 + HOUR)
    with refused(coop, ProposalClosed) as closing:
        close(coop, decided, at=T0 + HOUR)
    with refused(coop, InvalidInput) as reuse:
        raise_(coop, ProposalKind.GENERAL, at=T0 + HOUR, proposal_id=decided)
    with refused(coop, ProposalNotFound):
        coop.vote(uuid4(), VoteChoice.FOR, actor=voter, at=T0 + HOUR)

    assert str(vote.error) == str(closing.error) == f"proposal {decided} is closed"
    fields = {getattr(r.error, "field", None) for r in (vote, closing, reuse)}
    assert fields == {"proposal_id"}


# ---- work --------------------------------------------------------------------------------


def test_completed_work_keeps_its_record_until_its_hours_are_paid_then_only_its_status() -> None:
    coop = found(3)
    holder = members(coop)[0]
    work_id, _ = work_with_hours(coop, holder, "family-1", 60)
    coop.complete_work(work_id, actor=holder, at=T0 + HOUR)
    assert coop.work[work_id].status is WorkStatus.COMPLETED  # its hours are still to bill
    number = coop.issue_invoice("family-1", 6000, actor=MENTOR, at=T0 + DAY)
    assert work_id in coop.work

    coop.register_payment(number, 6000, actor=MENTOR, at=T0 + 2 * DAY)

    assert work_id not in coop.work
    assert coop.closed_work == {work_id: WorkStatus.COMPLETED}


def test_refusals_on_closed_work_are_the_same_as_when_it_was_kept_whole() -> None:
    coop = found(4)
    holder, other, mover, _ = members(coop)
    completed = coop.take_work("family-1", "", actor=holder, at=T0)
    coop.complete_work(completed, actor=holder, at=T0 + HOUR)
    moved = coop.take_work("family-2", "", actor=mover, at=T0)
    split(coop, [mover], at=T0 + HOUR)
    assert coop.closed_work == {completed: WorkStatus.COMPLETED, moved: WorkStatus.MOVED}
    at, day = T0 + DAY, T0.date()

    expected: list[tuple[Any, type[RuleViolation]]] = [
        (lambda: coop.log_hours(completed, 30, day, actor=holder, at=at), WorkClosed),
        (lambda: coop.hand_over_work(completed, other, actor=holder, at=at), WorkClosed),
        (lambda: coop.complete_work(completed, actor=holder, at=at), WorkClosed),
        (lambda: coop.accept_work(completed, actor=other, at=at), WorkClosed),
        (lambda: coop.take_work("x", "", actor=other, at=at, work_id=completed), NotYourWork),
        (lambda: coop.log_hours(moved, 30, day, actor=holder, at=at), NotYourWork),
        (lambda: coop.complete_work(moved, actor=holder, at=at), NotYourWork),
        (lambda: coop.accept_work(moved, actor=other, at=at), WorkClosed),
        (lambda: coop.take_work("x", "", actor=other, at=at, work_id=moved), NotYourWork),
        (lambda: coop.log_hours(uuid4(), 30, day, actor=holder, at=at), WorkNotFound),
    ]
    fields = set()
    for command, error in expected:
        with refused(coop, error) as refusal:
            command()
        fields.add(getattr(refusal.error, "field", None))
    assert fields == {"work_id"}


# ---- snapshots: bounded, and version 1 upcast ----------------------------------------------


@dataclass
class InMemoryLedger:
    """What ``long_history`` uses of a Ledger, without storage: the events are dropped."""

    coop: Cooperative | None = None

    def clock(self) -> datetime:
        return T0

    def found_cooperative(self, **kwargs: Any) -> Any:
        self.coop = Cooperative.found(at=T0, **kwargs)
        return SimpleNamespace(cooperative_id=self.coop.id)

    def get_cooperative(self, _: UUID) -> Cooperative:
        assert self.coop is not None
        return self.coop

    def save(self, *aggregates: Cooperative) -> None:
        for aggregate in aggregates:
            aggregate.collect_events()


def snapshot_of_long_history(events: int) -> bytes:
    ledger = InMemoryLedger()
    long_history(cast(Ledger, ledger), events, uuid4(), [uuid4() for _ in range(20)])
    coop = ledger.get_cooperative(uuid4())
    return make_transcoder().encode(Cooperative.Snapshot.take(coop).state)


def test_a_long_history_snapshots_to_the_size_of_its_open_business_not_its_history() -> None:
    at_5000, at_10000 = snapshot_of_long_history(5_000), snapshot_of_long_history(10_000)

    # Twice the history, the same open business: only the ids of decided proposals grow.
    assert len(at_10000) < 1.2 * len(at_5000)
    assert len(at_10000) < 150_000  # it was 220 KB when the whole history was kept


def test_a_version_one_snapshot_is_upcast_to_the_state_its_events_replay_to() -> None:
    coop = found(4)
    worker, other, coordinator, _ = members(coop)
    # What version 1 kept of what is settled, copied before it settles.
    work_id, (paid_entry,) = work_with_hours(coop, worker, "family-1", 60)
    paid = coop.issue_invoice("family-1", 6000, actor=MENTOR, at=T0 + HOUR)
    v1_paid = copy.deepcopy(coop.invoices[paid])
    v1_paid_entry = copy.deepcopy(coop.hours[paid_entry])
    coop.register_payment(paid, 6000, actor=MENTOR, at=T0 + DAY)
    _, (freed,) = work_with_hours(coop, worker, "family-2", 30, at=T0 + DAY)
    credited = coop.issue_invoice("family-2", 6000, actor=MENTOR, at=T0 + DAY)
    v1_credited = copy.deepcopy(coop.invoices[credited])
    coop.credit_invoice(credited, actor=MENTOR, at=T0 + DAY)
    open_invoice = coop.issue_invoice("family-2", 5000, actor=MENTOR, at=T0 + 2 * DAY)
    coop.register_payment(open_invoice, 100, actor=MENTOR, at=T0 + 2 * DAY)
    v1_work = copy.deepcopy(coop.work[work_id])
    coop.complete_work(work_id, actor=worker, at=T0 + 2 * DAY)
    decided = raise_(coop, ProposalKind.APPOINT_COORDINATOR, subject=coordinator)
    vote_all(coop, decided, at=T0 + 2 * DAY)
    v1_decided = copy.deepcopy(coop.proposals[decided])
    close(coop, decided, at=T0 + 2 * DAY)
    still_open = raise_(coop, ProposalKind.GENERAL, at=T0 + 3 * DAY)
    coop.vote(still_open, VoteChoice.FOR, actor=other, at=T0 + 3 * DAY)
    history = coop.collect_events()

    snapshot = Cooperative.Snapshot.take(coop)
    state = snapshot.state
    assert state.pop("class_version") == 4
    for new in ("closed_proposals", "closed_work", "invoices_issued", "credited_invoices"):
        del state[new]
    v1_decided.outcome, v1_decided.votes, v1_decided.electorate = Outcome.ADOPTED, {}, ()
    state["proposals"] = {decided: v1_decided, **state["proposals"]}
    v1_paid.paid_cents = 6000  # an older version 1 kept the paid hours too
    v1_credited.credit_note_number = 1
    state["invoices"] = {paid: v1_paid, credited: v1_credited, **state["invoices"]}
    state["hours"] = {paid_entry: v1_paid_entry, **state["hours"]}
    v1_work.status = WorkStatus.COMPLETED
    state["work"] = {work_id: v1_work, **state["work"]}
    mapper: Mapper[UUID] = Mapper(transcoder=make_transcoder())

    restored = mapper.to_domain_event(mapper.to_stored_event(snapshot)).mutate(None)

    assert vars(restored) == vars(replay(history))
    assert set(restored.hours) == {freed}
    assert_replays_to_same_state(coop, history)
    with pytest.raises(ProposalClosed):
        restored.vote(decided, VoteChoice.FOR, actor=other, at=MENTOR_YEAR_END)
