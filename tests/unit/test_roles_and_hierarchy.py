"""Rule 5 (no hierarchy: mentor and coordinator are the only roles), rule 6 (the mentor
year, its handover and its early end by decision) and rule 7 (at most one coordinator)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from helpers import (
    DAY,
    FACILITATOR,
    HOUR,
    MENTOR,
    MENTOR_YEAR_END,
    T0,
    appoint_coordinator,
    close,
    found,
    members,
    outcome,
    pass_proposal,
    raise_,
    refused,
    vote_all,
    work_with_hours,
)

from ledger.cooperative import Cooperative
from ledger.errors import (
    InvalidInput,
    ManagerRoleDoesNotExist,
    MentorYearOver,
    NoMandate,
    NotAMember,
    ProposalStillOpen,
    UnknownProposalKind,
)
from ledger.rules import Outcome, ProposalKind, VoteChoice, parse_kind

# ---- rule 5: no manager, no chair, no casting vote ------------------------------------


@pytest.mark.parametrize(
    "asked_for",
    [
        "appoint_manager",
        "manager",
        "appoint_chair",
        "appoint_team_lead",
        "Appoint_Boss",
        "make_director",
        "head_of_cleaning",
        "appoint_supervisor",
        "president",
        "chief_of_staff",
    ],
)
def test_asking_for_a_boss_is_refused_because_that_role_does_not_exist(asked_for: str) -> None:
    with pytest.raises(ManagerRoleDoesNotExist, match="mentor and coordinator") as info:
        parse_kind(asked_for)

    assert info.value.field == "kind"


@pytest.mark.parametrize("kind", list(ProposalKind))
def test_every_real_proposal_kind_is_understood(kind: ProposalKind) -> None:
    assert parse_kind(kind.value) is kind


def test_an_unknown_kind_is_refused_as_unknown_not_as_a_hierarchy() -> None:
    with pytest.raises(UnknownProposalKind, match="appoint_coordinator"):
        parse_kind("expel_member")


def test_a_tie_is_no_majority_and_nobody_holds_a_casting_vote() -> None:
    coop = found(4)
    coordinator = members(coop)[0]
    appoint_coordinator(coop, coordinator)
    proposal_id = raise_(coop, ProposalKind.GENERAL, by=coordinator, at=T0 + DAY)
    others = [m for m in members(coop) if m != coordinator]
    choices = [VoteChoice.FOR, VoteChoice.FOR, VoteChoice.AGAINST, VoteChoice.AGAINST]
    for voter, choice in zip([coordinator, *others], choices, strict=True):
        coop.vote(proposal_id, choice, actor=voter, at=T0 + DAY)

    close(coop, proposal_id, at=T0 + DAY + HOUR)

    assert outcome(coop, proposal_id) == Outcome.REJECTED


def test_the_coordinator_has_one_vote_like_everyone_else() -> None:
    coop = found(3)
    coordinator = members(coop)[0]
    appoint_coordinator(coop, coordinator)
    proposal_id = raise_(coop, ProposalKind.GENERAL, at=T0 + DAY)
    coop.vote(proposal_id, VoteChoice.FOR, actor=coordinator, at=T0 + DAY)

    with refused(coop, InvalidInput):
        coop.vote(proposal_id, VoteChoice.FOR, actor=coordinator, at=T0 + DAY)


def test_the_coordinator_cannot_close_a_proposal_early_on_their_own() -> None:
    coop = found(3)
    coordinator = members(coop)[0]
    appoint_coordinator(coop, coordinator)
    proposal_id = raise_(coop, ProposalKind.GENERAL, at=T0 + DAY)
    coop.vote(proposal_id, VoteChoice.FOR, actor=coordinator, at=T0 + DAY)

    with refused(coop, ProposalStillOpen):
        coop.close_proposal(proposal_id, actor=coordinator, at=T0 + DAY + HOUR)


COMMANDS = {
    "found",
    "admit_founding_member",
    "leave",
    "step_down_as_coordinator",
    "complete_mentor_year",
    "raise_proposal",
    "vote",
    "close_proposal",
    "take_work",
    "log_hours",
    "hand_over_work",
    "accept_work",
    "complete_work",
    "issue_invoice",
    "register_payment",
    "credit_invoice",
}
READERS_AND_GUARDS = {
    "init_state",
    "upcast_v1_v2",  # the library's hooks that upcast an older snapshot's state
    "upcast_v2_v3",
    "upcast_v3_v4",
    "mentor_is_active",
    "open_proposal",
    "everyone_voted",
    "uninvoiced_entries",
    "open_work_of",
}


def test_no_command_appoints_admits_changes_rules_or_splits_without_a_decision() -> None:
    # A tripwire for rules 3 and 5: a new public command that gives someone a role or a
    # governance effect directly must be looked at, not slip in.
    public = {
        name
        for name, value in vars(Cooperative).items()
        if callable(value) or isinstance(value, classmethod | staticmethod)
        if not name.startswith("_") and not name.startswith("check_") and not name[0].isupper()
        if name not in dir(Aggregate)  # overriding a library hook adds no command
    }
    assert public - READERS_AND_GUARDS == COMMANDS


# ---- rule 6: the mentor year, its handover, its early end by decision --------------------


def test_after_the_mentor_year_the_handover_is_recorded_as_an_event_of_its_own() -> None:
    coop = found(3)
    coop.collect_events()

    coop.complete_mentor_year(actor=MENTOR, at=MENTOR_YEAR_END, reason="year done")

    (ended,) = coop.collect_events()
    assert isinstance(ended, Cooperative.MentorshipEnded)
    assert (ended.mentor_id, ended.early, ended.decision_id) == (MENTOR, False, None)
    assert not coop.mentor_is_active(MENTOR_YEAR_END)


def test_a_member_may_record_the_handover_after_the_mentor_year() -> None:
    coop = found(3)

    coop.complete_mentor_year(actor=members(coop)[1], at=MENTOR_YEAR_END + DAY)

    assert coop.mentorship_ended


def test_the_handover_cannot_be_recorded_before_the_year_is_over() -> None:
    coop = found(3)

    for actor in (MENTOR, members(coop)[0]):
        with refused(coop, NoMandate):
            coop.complete_mentor_year(actor=actor, at=MENTOR_YEAR_END - HOUR)


def test_the_handover_is_recorded_once_and_by_the_mentor_or_a_member_only() -> None:
    coop = found(3)
    with refused(coop, NotAMember):
        coop.complete_mentor_year(actor=FACILITATOR, at=MENTOR_YEAR_END)
    coop.complete_mentor_year(actor=MENTOR, at=MENTOR_YEAR_END)

    with refused(coop, NoMandate):
        coop.complete_mentor_year(actor=MENTOR, at=MENTOR_YEAR_END + DAY)


def test_the_mentor_year_is_one_calendar_year_from_founding() -> None:
    coop = found(3)

    assert coop.mentor_until == MENTOR_YEAR_END
    assert coop.mentor_is_active(MENTOR_YEAR_END - HOUR)
    assert not coop.mentor_is_active(MENTOR_YEAR_END)


def test_the_members_may_end_the_mentorship_early_by_decision() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.END_MENTORSHIP, at=T0 + 90 * DAY)
    vote_all(coop, proposal_id, at=T0 + 90 * DAY)
    coop.collect_events()

    close(coop, proposal_id, at=T0 + 91 * DAY)

    adopted, ended = coop.collect_events()
    assert isinstance(adopted, Cooperative.ProposalAdopted)
    assert isinstance(ended, Cooperative.MentorshipEnded)
    assert (ended.early, ended.decision_id, ended.mentor_id) == (True, proposal_id, MENTOR)
    assert not coop.mentor_is_active(T0 + 91 * DAY)


def test_after_an_early_end_the_mentor_neither_admits_nor_invoices() -> None:
    coop = found(3)
    work_with_hours(coop, members(coop)[0], "building-9", 120)
    pass_proposal(coop, ProposalKind.END_MENTORSHIP, at=T0 + 90 * DAY)

    with refused(coop, MentorYearOver):
        coop.admit_founding_member(uuid4(), actor=MENTOR, at=T0 + 91 * DAY)
    with refused(coop, NoMandate):
        coop.issue_invoice("building-9", 3000, actor=MENTOR, at=T0 + 91 * DAY)
    with refused(coop, NoMandate):
        coop.complete_mentor_year(actor=MENTOR, at=MENTOR_YEAR_END)


def test_a_mentorship_that_ended_cannot_be_ended_again_by_decision() -> None:
    coop = found(3)
    pass_proposal(coop, ProposalKind.END_MENTORSHIP, at=T0 + 90 * DAY)

    with refused(coop, NoMandate):
        raise_(coop, ProposalKind.END_MENTORSHIP, at=T0 + 91 * DAY)


def test_a_decision_taken_after_the_mentor_year_ran_out_does_not_record_an_early_end() -> None:
    # The year ran out at MENTOR_YEAR_END, but nobody recorded the handover yet. Ending it
    # "early" is no longer possible: refusing the proposal, or recording early=False, both
    # keep the audit trail true. Recording early=True does not.
    coop = found(3)
    at = MENTOR_YEAR_END + 30 * DAY
    try:
        proposal_id = raise_(coop, ProposalKind.END_MENTORSHIP, at=at)
    except NoMandate:
        return
    vote_all(coop, proposal_id, at=at)
    coop.collect_events()

    close(coop, proposal_id, at=at + HOUR)

    ended = [e for e in coop.collect_events() if isinstance(e, Cooperative.MentorshipEnded)]
    assert [e.early for e in ended] in ([], [False])


# ---- rule 7: at most one coordinator, always a current member ----------------------------


def test_the_members_appoint_a_coordinator_by_decision() -> None:
    coop = found(3)
    chosen = members(coop)[2]
    coop.collect_events()

    decision = appoint_coordinator(coop, chosen, at=MENTOR_YEAR_END)

    appointed = coop.collect_events()[-1]
    assert isinstance(appointed, Cooperative.CoordinatorAppointed)
    assert (appointed.member_id, appointed.replaces, appointed.decision_id) == (
        chosen,
        None,
        decision,
    )
    assert coop.coordinator_id == chosen


def test_appointing_a_new_coordinator_replaces_the_old_one_and_records_whom() -> None:
    coop = found(3)
    first, second = members(coop)[:2]
    appoint_coordinator(coop, first)
    coop.collect_events()

    decision = appoint_coordinator(coop, second, at=T0 + DAY)

    appointed = coop.collect_events()[-1]
    assert isinstance(appointed, Cooperative.CoordinatorAppointed)
    assert (appointed.member_id, appointed.replaces, appointed.decision_id) == (
        second,
        first,
        decision,
    )
    assert coop.coordinator_id == second


@pytest.mark.parametrize("who", ["mentor", "stranger", "former member"])
def test_only_a_current_member_can_be_proposed_as_coordinator(who: str) -> None:
    coop = found(3)
    former = members(coop)[2]
    coop.leave(actor=former, at=T0)
    subject = {"mentor": MENTOR, "stranger": uuid4(), "former member": former}[who]

    with refused(coop, NotAMember):
        raise_(coop, ProposalKind.APPOINT_COORDINATOR, at=T0 + HOUR, subject=subject)


def test_the_coordinator_may_step_down_and_stays_a_member() -> None:
    coop = found(3)
    coordinator = members(coop)[0]
    appoint_coordinator(coop, coordinator)
    coop.collect_events()

    coop.step_down_as_coordinator(actor=coordinator, at=T0 + DAY, reason="too busy")

    (vacated,) = coop.collect_events()
    assert isinstance(vacated, Cooperative.CoordinatorVacated)
    assert (vacated.member_id, vacated.decision_id, vacated.reason) == (
        coordinator,
        None,
        "too busy",
    )
    assert coop.coordinator_id is None
    assert coordinator in coop.members


@pytest.mark.parametrize("who", ["member", "mentor", "former coordinator"])
def test_only_the_coordinator_steps_down_as_coordinator(who: str) -> None:
    coop = found(3)
    coordinator, other = members(coop)[:2]
    appoint_coordinator(coop, coordinator)
    actor = {"member": other, "mentor": MENTOR, "former coordinator": coordinator}[who]
    if who == "former coordinator":
        appoint_coordinator(coop, other, at=T0 + DAY)

    with refused(coop, NoMandate):
        coop.step_down_as_coordinator(actor=actor, at=T0 + 2 * DAY)


def test_with_a_vacant_role_nobody_invoices_after_the_mentor_year() -> None:
    coop = found(3)
    worker = members(coop)[1]
    work_with_hours(coop, worker, "family-8", 60, at=MENTOR_YEAR_END)

    for actor in (*members(coop), MENTOR):
        with refused(coop, NoMandate):
            coop.issue_invoice("family-8", 3000, actor=actor, at=MENTOR_YEAR_END + HOUR)
