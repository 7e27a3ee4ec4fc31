"""Rule 1 (size), rule 5 (leaving on one's own word), rule 6 (the mentor admits founding
members during the mentor year only) and rule 7 (a leaving coordinator vacates the role)."""

from __future__ import annotations

import inspect
from datetime import timedelta
from uuid import uuid4

import pytest
from helpers import (
    DAY,
    FACILITATOR,
    HOUR,
    MENTOR,
    MENTOR_YEAR_END,
    T0,
    appoint_coordinator,
    event_names,
    found,
    members,
    pass_proposal,
    raise_,
    refused,
    vote_all,
    work_with_hours,
)

from ledger.cooperative import Cooperative
from ledger.errors import (
    AlreadyAMember,
    CapAboveMaximum,
    CapBelowMembership,
    CooperativeFull,
    MentorCannotBeMember,
    MentorYearOver,
    NoMandate,
    NotAMember,
)
from ledger.rules import MAX_MEMBERS, DecisionRules, ProposalKind
from ledger.state import FoundingMember, WorkStatus

# ---- rule 1: at most 20 members -------------------------------------------------------


def test_a_cooperative_is_founded_with_twenty_members_at_most() -> None:
    coop = found(MAX_MEMBERS)

    assert len(coop.members) == 20
    assert event_names(coop.collect_events()) == ["Founded"]


def test_founding_with_twenty_one_members_is_refused_with_a_pointer_to_two_cooperatives() -> None:
    with pytest.raises(CooperativeFull, match="two cooperatives"):
        found(MAX_MEMBERS + 1)


def test_the_mentor_admits_founding_members_up_to_the_twentieth() -> None:
    coop = found(18)

    for _ in range(2):
        coop.admit_founding_member(uuid4(), actor=MENTOR, at=T0 + DAY)

    assert len(coop.members) == 20


def test_a_twenty_first_member_is_refused_with_a_pointer_to_splitting() -> None:
    coop = found(MAX_MEMBERS)

    with refused(coop, CooperativeFull) as refusal:
        coop.admit_founding_member(uuid4(), actor=MENTOR, at=T0 + DAY)

    assert "split" in str(refusal.error)


def test_a_proposal_to_admit_a_twenty_first_member_is_refused_when_it_is_raised() -> None:
    coop = found(MAX_MEMBERS)

    with refused(coop, CooperativeFull) as refusal:
        raise_(coop, ProposalKind.ADMIT_MEMBER, subject=uuid4())

    assert "split" in str(refusal.error)


def test_an_admission_decided_after_the_cooperative_filled_up_lapses_and_admits_nobody() -> None:
    coop = found(19)
    newcomer = uuid4()
    proposal_id = raise_(coop, ProposalKind.ADMIT_MEMBER, subject=newcomer)
    vote_all(coop, proposal_id)
    coop.admit_founding_member(uuid4(), actor=MENTOR, at=T0 + HOUR)  # the twentieth
    coop.collect_events()

    coop.close_proposal(proposal_id, actor=members(coop)[0], at=T0 + 2 * HOUR)

    events = coop.collect_events()
    assert event_names(events) == ["ProposalLapsed"]
    assert events[0].refusal == CooperativeFull.code
    assert newcomer not in coop.members
    assert len(coop.members) == 20


def test_a_cooperative_may_lower_its_cap_by_decision_and_is_then_full_sooner() -> None:
    coop = found(5)
    decision = pass_proposal(coop, ProposalKind.CHANGE_RULES, new_rules=DecisionRules(member_cap=6))
    assert coop.rules.member_cap == 6
    coop.admit_founding_member(uuid4(), actor=MENTOR, at=T0 + DAY)

    with refused(coop, CooperativeFull):
        coop.admit_founding_member(uuid4(), actor=MENTOR, at=T0 + DAY)
    assert decision in coop.closed_proposals


def test_a_cap_above_twenty_is_refused_at_founding() -> None:
    with pytest.raises(CapAboveMaximum):
        found(5, rules=DecisionRules(member_cap=MAX_MEMBERS + 1))


def test_a_proposal_to_raise_the_cap_above_twenty_is_refused() -> None:
    coop = found(5)

    with refused(coop, CapAboveMaximum):
        raise_(coop, ProposalKind.CHANGE_RULES, new_rules=DecisionRules(member_cap=21))


def test_a_proposal_to_set_the_cap_below_the_current_membership_is_refused() -> None:
    coop = found(5)

    with refused(coop, CapBelowMembership):
        raise_(coop, ProposalKind.CHANGE_RULES, new_rules=DecisionRules(member_cap=4))


# ---- rule 5: a member may leave at any time on their own word ----------------------------


def test_a_member_leaves_on_their_own_word_and_their_open_work_is_released() -> None:
    coop = found(3)
    leaver = members(coop)[1]
    work_id, _ = work_with_hours(coop, leaver, "family-17", 60)
    coop.collect_events()

    coop.leave(actor=leaver, at=T0 + DAY, reason="moving abroad")

    (left,) = coop.collect_events()
    assert isinstance(left, Cooperative.MemberLeft)
    assert (left.person_id, left.actor, left.reason) == (leaver, leaver, "moving abroad")
    assert left.released_work == (work_id,)
    assert leaver not in coop.members
    assert coop.former_members[leaver] == T0 + DAY
    assert coop.work[work_id].status is WorkStatus.RELEASED
    assert coop.work[work_id].holder is None


def test_the_last_member_may_leave_too() -> None:
    coop = found(1)

    coop.leave(actor=members(coop)[0], at=T0 + DAY)

    assert coop.members == {}


def test_leaving_takes_nobody_but_the_actor_so_no_one_can_be_made_to_leave() -> None:
    assert list(inspect.signature(Cooperative.leave).parameters) == [
        "self",
        "actor",
        "at",
        "reason",
    ]


def test_someone_who_is_not_a_member_cannot_leave() -> None:
    coop = found(3)

    with refused(coop, NotAMember):
        coop.leave(actor=MENTOR, at=T0 + DAY)


def test_a_member_who_left_cannot_leave_again_or_raise_proposals() -> None:
    coop = found(3)
    leaver = members(coop)[2]
    coop.leave(actor=leaver, at=T0 + DAY)

    with refused(coop, NotAMember):
        coop.leave(actor=leaver, at=T0 + 2 * DAY)
    with refused(coop, NotAMember):
        raise_(coop, ProposalKind.GENERAL, by=leaver, at=T0 + 2 * DAY)


def test_a_former_member_comes_back_only_by_a_new_admission() -> None:
    coop = found(3)
    leaver = members(coop)[2]
    coop.leave(actor=leaver, at=T0 + DAY)

    coop.admit_founding_member(leaver, actor=MENTOR, at=T0 + 2 * DAY)

    assert coop.members[leaver].since == T0 + 2 * DAY
    assert leaver not in coop.former_members


# ---- rule 6: the mentor admits founding members during the mentor year only --------------


def test_the_mentor_admits_a_founding_member_without_a_decision_during_the_mentor_year() -> None:
    coop = found(3)
    newcomer = uuid4()
    coop.collect_events()
    last_moment = MENTOR_YEAR_END - timedelta(microseconds=1)

    coop.admit_founding_member(newcomer, actor=MENTOR, at=last_moment, conversation_group="g2")

    (admitted,) = coop.collect_events()
    assert isinstance(admitted, Cooperative.MemberAdmitted)
    assert (admitted.person_id, admitted.decision_id, admitted.actor) == (newcomer, None, MENTOR)
    assert coop.members[newcomer].conversation_group == "g2"


def test_the_mentor_cannot_admit_founding_members_once_the_mentor_year_is_over() -> None:
    coop = found(3)

    with refused(coop, MentorYearOver):
        coop.admit_founding_member(uuid4(), actor=MENTOR, at=MENTOR_YEAR_END)


def test_the_mentor_cannot_admit_after_the_members_ended_the_mentorship_early() -> None:
    coop = found(3)
    pass_proposal(coop, ProposalKind.END_MENTORSHIP, at=T0 + 30 * DAY)

    with refused(coop, MentorYearOver):
        coop.admit_founding_member(uuid4(), actor=MENTOR, at=T0 + 31 * DAY)


def test_neither_a_member_nor_the_coordinator_nor_the_facilitator_admits_founding_members() -> None:
    coop = found(3)
    coordinator = members(coop)[0]
    appoint_coordinator(coop, coordinator)

    for actor in (coordinator, members(coop)[1], FACILITATOR):
        with refused(coop, NoMandate) as refusal:
            coop.admit_founding_member(uuid4(), actor=actor, at=T0 + DAY)
        assert not isinstance(refusal.error, MentorYearOver)


def test_after_the_mentor_year_a_newcomer_is_admitted_by_the_members_decision() -> None:
    coop = found(3)
    newcomer = uuid4()

    decision = pass_proposal(
        coop, ProposalKind.ADMIT_MEMBER, at=MENTOR_YEAR_END + DAY, subject=newcomer
    )

    assert coop.members[newcomer].decision_id == decision


def test_the_mentor_is_never_a_member() -> None:
    with pytest.raises(MentorCannotBeMember):
        Cooperative.found(
            name="De Schoonmakers",
            sector="cleaning",
            members=[FoundingMember(uuid4()), FoundingMember(MENTOR)],
            mentor_id=MENTOR,
            rules=DecisionRules(),
            actor=FACILITATOR,
            at=T0,
        )
    coop = found(3)
    with refused(coop, MentorCannotBeMember):
        coop.admit_founding_member(MENTOR, actor=MENTOR, at=T0 + DAY)
    with refused(coop, MentorCannotBeMember):
        raise_(coop, ProposalKind.ADMIT_MEMBER, subject=MENTOR)


def test_a_member_is_not_admitted_twice() -> None:
    coop = found(3)

    with refused(coop, AlreadyAMember):
        coop.admit_founding_member(members(coop)[1], actor=MENTOR, at=T0 + DAY)


# ---- rule 7: a coordinator who leaves vacates the role ---------------------------------


def test_a_coordinator_who_leaves_vacates_the_role_until_a_new_decision() -> None:
    coop = found(4)
    first, second = members(coop)[:2]
    appoint_coordinator(coop, first, at=MENTOR_YEAR_END)
    coop.collect_events()

    coop.leave(actor=first, at=MENTOR_YEAR_END + DAY)

    left, vacated = coop.collect_events()
    assert isinstance(left, Cooperative.MemberLeft)
    assert isinstance(vacated, Cooperative.CoordinatorVacated)
    assert (vacated.member_id, vacated.decision_id, vacated.actor) == (first, None, first)
    assert coop.coordinator_id is None

    decision = appoint_coordinator(coop, second, at=MENTOR_YEAR_END + 2 * DAY)
    appointed = coop.collect_events()[-1]
    assert isinstance(appointed, Cooperative.CoordinatorAppointed)
    assert (appointed.member_id, appointed.replaces, appointed.decision_id) == (
        second,
        None,
        decision,
    )


def test_an_ordinary_member_leaving_leaves_the_coordinator_in_place() -> None:
    coop = found(4)
    coordinator, other = members(coop)[:2]
    appoint_coordinator(coop, coordinator)
    coop.collect_events()

    coop.leave(actor=other, at=T0 + DAY)

    assert event_names(coop.collect_events()) == ["MemberLeft"]
    assert coop.coordinator_id == coordinator


def test_a_coordinator_who_left_has_no_mandate_left_to_invoice() -> None:
    coop = found(4)
    coordinator, worker = members(coop)[:2]
    appoint_coordinator(coop, coordinator, at=MENTOR_YEAR_END)
    work_with_hours(coop, worker, "family-3", 90, at=MENTOR_YEAR_END)
    coop.leave(actor=coordinator, at=MENTOR_YEAR_END + DAY)

    with refused(coop, NoMandate):
        coop.issue_invoice("family-3", 4500, actor=coordinator, at=MENTOR_YEAR_END + DAY)
