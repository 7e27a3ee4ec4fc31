"""Rule 8: an adopted split names who moves; both cooperatives keep a member; child and parent
name each other; open work (with its uninvoiced hours) goes with the moving member; invoices
stay with the parent; a moving coordinator vacates the parent's role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import pytest
from helpers import (
    DAY,
    HOUR,
    MENTOR,
    MENTOR_YEAR_END,
    T0,
    appoint_coordinator,
    assert_replays_to_same_state,
    cast,
    close,
    event_names,
    found,
    members,
    raise_,
    refused,
    split,
    vote_all,
    work_with_hours,
)

from ledger.cooperative import Cooperative
from ledger.errors import (
    InvalidInput,
    NotAMember,
    NothingToInvoice,
    NotYourWork,
    RuleViolation,
    SplitInvalid,
    WorkClosed,
)
from ledger.rules import ProposalKind, VoteChoice
from ledger.state import SplitPlan, WorkStatus

SPLIT_AT = T0 + 10 * DAY


@dataclass
class Scenario:
    """Six members; the coordinator and one worker move; work and an invoice before."""

    parent: Cooperative
    child: Cooperative
    decision: UUID
    history: list[object]
    stayer: UUID
    mover: UUID
    coordinator: UUID
    open_work: UUID
    completed_work: UUID
    stayer_work: UUID
    invoiced_entries: list[UUID]
    uninvoiced_entry: UUID
    completed_entry: UUID


def split_scenario(at: datetime = SPLIT_AT) -> Scenario:
    parent = found(6)
    stayer, mover, _, _, coordinator, _ = members(parent)
    appoint_coordinator(parent, coordinator)
    open_work, invoiced = work_with_hours(parent, mover, "family-1", 60, 30, at=T0 + DAY)
    parent.issue_invoice("family-1", 4500, actor=coordinator, at=T0 + 2 * DAY)
    uninvoiced = parent.log_hours(
        open_work, 45, (T0 + 3 * DAY).date(), actor=mover, at=T0 + 3 * DAY
    )
    completed_work, (completed_entry,) = work_with_hours(
        parent, mover, "family-2", 20, at=T0 + 3 * DAY
    )
    parent.complete_work(completed_work, actor=mover, at=T0 + 4 * DAY)
    stayer_work, _ = work_with_hours(parent, stayer, "building-1", 60, at=T0 + 4 * DAY)
    history = list(parent.collect_events())

    decision, child = split(parent, [mover, coordinator], at=at)

    return Scenario(
        parent=parent,
        child=child,
        decision=decision,
        history=history,
        stayer=stayer,
        mover=mover,
        coordinator=coordinator,
        open_work=open_work,
        completed_work=completed_work,
        stayer_work=stayer_work,
        invoiced_entries=invoiced,
        uninvoiced_entry=uninvoiced,
        completed_entry=completed_entry,
    )


def test_an_adopted_split_founds_a_child_that_names_its_parent_and_the_decision() -> None:
    s = split_scenario()

    (split_off,) = s.child.collect_events()
    assert isinstance(split_off, Cooperative.SplitOff)
    assert (split_off.parent_id, split_off.decision_id) == (s.parent.id, s.decision)
    assert s.child.parent_id == s.parent.id
    assert set(s.child.members) == {s.mover, s.coordinator}
    assert {m.decision_id for m in s.child.members.values()} == {s.decision}
    assert s.child.sector == s.parent.sector
    assert s.child.rules == s.parent.rules
    assert s.child.name == "De Tweede"


def test_the_parent_records_its_child_and_who_moved_in_the_same_write_as_the_adoption() -> None:
    s = split_scenario()

    events = s.parent.collect_events()[-3:]
    assert event_names(events) == ["ProposalAdopted", "CoordinatorVacated", "Split"]
    adopted, vacated, split_event = events
    assert isinstance(split_event, Cooperative.Split)
    assert split_event.child_id == s.child.id
    assert split_event.decision_id == vacated.decision_id == adopted.proposal_id == s.decision
    assert split_event.moving_members == (s.mover, s.coordinator)
    assert s.parent.children == [s.child.id]
    assert s.stayer in s.parent.members
    assert s.mover not in s.parent.members
    assert s.parent.former_members[s.mover] == SPLIT_AT


def test_both_cooperatives_keep_their_members_apart() -> None:
    s = split_scenario()

    assert set(s.parent.members).isdisjoint(s.child.members)
    assert len(s.parent.members) + len(s.child.members) == 6


def test_open_work_and_its_uninvoiced_hours_go_with_the_moving_member() -> None:
    s = split_scenario()

    carried = s.child.work[s.open_work]
    assert (carried.status, carried.holder) == (WorkStatus.OPEN, s.mover)
    assert set(s.child.hours) == {s.uninvoiced_entry}
    left_behind = s.parent.work[s.open_work]
    assert (left_behind.status, left_behind.holder) == (WorkStatus.MOVED, None)
    assert s.uninvoiced_entry not in s.parent.hours
    (split_event,) = [e for e in s.parent.collect_events() if isinstance(e, Cooperative.Split)]
    assert split_event.moved_work == (s.open_work,)


def test_the_moving_member_goes_on_working_in_the_child_and_no_longer_in_the_parent() -> None:
    s = split_scenario()
    later = SPLIT_AT + DAY

    s.child.log_hours(s.open_work, 30, later.date(), actor=s.mover, at=later)

    with refused(s.parent, NotYourWork):
        s.parent.log_hours(s.open_work, 30, later.date(), actor=s.mover, at=later)


def test_invoices_and_invoiced_hours_stay_with_the_parent() -> None:
    s = split_scenario()

    assert set(s.parent.invoices) == {1}
    assert s.child.invoices == {}
    for entry_id in s.invoiced_entries:
        assert s.parent.hours[entry_id].invoice_number == 1
    s.parent.register_payment(1, 1000, actor=MENTOR, at=SPLIT_AT + DAY)
    assert s.parent.invoices[1].paid_cents == 1000


def test_completed_work_and_its_hours_stay_with_the_parent_to_be_invoiced_there() -> None:
    s = split_scenario()

    assert s.completed_work not in s.child.work
    assert s.parent.work[s.completed_work].status is WorkStatus.COMPLETED
    number = s.parent.issue_invoice("family-2", 6000, actor=MENTOR, at=SPLIT_AT + DAY)
    assert s.parent.invoices[number].entry_ids == (s.completed_entry,)


def test_the_carried_hours_are_invoiced_by_the_child_not_twice_by_the_parent() -> None:
    s = split_scenario()

    number = s.child.issue_invoice("family-1", 6000, actor=MENTOR, at=SPLIT_AT + DAY)

    assert number == 1
    assert s.child.invoices[1].entry_ids == (s.uninvoiced_entry,)
    assert s.child.invoices[1].amount_cents == 4500
    with refused(s.parent, NothingToInvoice):
        s.parent.issue_invoice("family-1", 6000, actor=MENTOR, at=SPLIT_AT + DAY)


def test_a_moving_coordinator_vacates_the_parents_role_by_the_split_decision() -> None:
    s = split_scenario()

    (vacated,) = [
        e for e in s.parent.collect_events() if isinstance(e, Cooperative.CoordinatorVacated)
    ]
    assert (vacated.member_id, vacated.decision_id) == (s.coordinator, s.decision)
    assert s.parent.coordinator_id is None
    assert s.child.coordinator_id is None


def test_the_mentor_goes_along_with_the_child_for_the_rest_of_the_mentor_year() -> None:
    s = split_scenario()

    assert (s.child.mentor_id, s.child.mentor_until) == (MENTOR, MENTOR_YEAR_END)
    assert s.child.mentor_is_active(MENTOR_YEAR_END - HOUR)
    assert not s.child.mentor_is_active(MENTOR_YEAR_END)


def test_a_child_split_off_after_the_mentor_year_has_no_mentor() -> None:
    s = split_scenario(at=MENTOR_YEAR_END + DAY)

    assert (s.child.mentor_id, s.child.mentor_until) == (None, None)


def test_parent_and_child_replay_to_the_same_state_from_their_events() -> None:
    s = split_scenario()

    assert_replays_to_same_state(s.parent, [*s.history, *s.parent.collect_events()])
    assert_replays_to_same_state(s.child, list(s.child.collect_events()))


def test_a_split_needs_two_thirds_of_the_votes_cast() -> None:
    coop = found(6)
    plan = SplitPlan("De Tweede", tuple(members(coop)[:2]))
    proposal_id = raise_(coop, ProposalKind.SPLIT, split=plan)
    cast(coop, proposal_id, [VoteChoice.FOR] * 3 + [VoteChoice.AGAINST] * 2 + [VoteChoice.ABSTAIN])
    coop.collect_events()

    child = close(coop, proposal_id, at=T0 + HOUR)

    assert child is None
    assert event_names(coop.collect_events()) == ["ProposalRejected"]
    assert proposal_id in coop.closed_proposals
    assert len(coop.members) == 6
    assert coop.children == []


@pytest.mark.parametrize(
    ("moving", "error"),
    [
        pytest.param(lambda m: tuple(m), SplitInvalid, id="everyone moves"),
        pytest.param(lambda m: (), SplitInvalid, id="nobody moves"),
        pytest.param(lambda m: (m[0], m[0]), SplitInvalid, id="listed twice"),
        pytest.param(lambda m: (m[0], MENTOR), NotAMember, id="the mentor moves"),
        pytest.param(lambda m: (uuid4(),), NotAMember, id="a stranger moves"),
    ],
)
def test_a_split_that_would_leave_a_side_empty_or_move_a_non_member_is_refused(
    moving: Callable[[list[UUID]], tuple[UUID, ...]], error: type[RuleViolation]
) -> None:
    coop = found(4)
    plan = SplitPlan("De Tweede", moving(members(coop)))

    with refused(coop, error):
        raise_(coop, ProposalKind.SPLIT, split=plan)


def test_a_split_without_a_name_for_the_new_cooperative_is_refused() -> None:
    coop = found(4)

    with refused(coop, InvalidInput):
        raise_(coop, ProposalKind.SPLIT, split=SplitPlan("  ", (members(coop)[0],)))


def test_a_split_lapses_when_a_moving_member_left_before_the_close() -> None:
    coop = found(4)
    mover = members(coop)[3]
    proposal_id = raise_(coop, ProposalKind.SPLIT, split=SplitPlan("De Tweede", (mover,)))
    vote_all(coop, proposal_id)
    coop.leave(actor=mover, at=T0 + HOUR)
    coop.collect_events()

    child = close(coop, proposal_id, at=T0 + 2 * HOUR)

    assert child is None
    (lapsed,) = coop.collect_events()
    assert isinstance(lapsed, Cooperative.ProposalLapsed)
    assert lapsed.refusal == NotAMember.code
    assert coop.children == []


def test_a_split_lapses_when_everyone_who_would_stay_left_before_the_close() -> None:
    coop = found(3)
    first, second, third = members(coop)
    proposal_id = raise_(coop, ProposalKind.SPLIT, split=SplitPlan("De Tweede", (first, second)))
    vote_all(coop, proposal_id)
    coop.leave(actor=third, at=T0 + HOUR)
    coop.collect_events()

    child = close(coop, proposal_id, at=T0 + 2 * HOUR)

    assert child is None
    (lapsed,) = coop.collect_events()
    assert isinstance(lapsed, Cooperative.ProposalLapsed)
    assert lapsed.refusal == SplitInvalid.code
    assert set(coop.members) == {first, second}


def test_a_handover_offered_by_a_moving_member_cannot_be_accepted_in_the_parent() -> None:
    coop = found(4)
    stayer, mover = members(coop)[:2]
    work_id, _ = work_with_hours(coop, mover, "family-5", 60)
    coop.hand_over_work(work_id, stayer, actor=mover, at=T0 + HOUR)
    _, child = split(coop, [mover], at=T0 + DAY)

    assert child.work[work_id].handover_to is None
    with refused(coop, WorkClosed):
        coop.accept_work(work_id, actor=stayer, at=T0 + 2 * DAY)


def test_a_member_who_moved_cannot_accept_work_offered_to_them_in_the_parent() -> None:
    # A staying member offered work to a member who then moved in a split. The mover is no
    # longer a member of the parent, so the offer must be void there, as it is when the
    # member leaves (MemberLeft.apply clears it); Split.apply does not clear it.
    coop = found(4)
    stayer, mover = members(coop)[:2]
    work_id, _ = work_with_hours(coop, stayer, "family-6", 60)
    coop.hand_over_work(work_id, mover, actor=stayer, at=T0 + HOUR)
    split(coop, [mover], at=T0 + DAY)

    with refused(coop, RuleViolation):  # NoHandoverPending or NotAMember would both do
        coop.accept_work(work_id, actor=mover, at=T0 + 2 * DAY)
    assert coop.work[work_id].holder == stayer
