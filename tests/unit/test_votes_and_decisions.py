"""Rule 2 (equal votes, a frozen electorate), rule 3 (decisions decide, in the same write)
and rule 4 (decision rules: quorum, majority, two thirds, consent), and how proposals close."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from helpers import (
    DAY,
    FACILITATOR,
    HOUR,
    MENTOR,
    MENTOR_YEAR_END,
    T0,
    VOTING_PERIOD,
    cast,
    close,
    event_names,
    found,
    members,
    outcome,
    pass_proposal,
    raise_,
    refused,
    vote_all,
)

from ledger.cooperative import Cooperative
from ledger.errors import (
    InvalidInput,
    NotAMember,
    NotEligibleToVote,
    ProposalClosed,
    ProposalNotFound,
    ProposalStillOpen,
    RuleViolation,
)
from ledger.rules import (
    DecisionMode,
    DecisionRules,
    Outcome,
    ProposalKind,
    Tally,
    VoteChoice,
    decide,
)

FOR, AGAINST, ABSTAIN = VoteChoice.FOR, VoteChoice.AGAINST, VoteChoice.ABSTAIN
CONSENT = DecisionRules(mode=DecisionMode.CONSENT)


def outcome_event(coop: Cooperative) -> Any:
    """The one ProposalDecided event among the pending events."""
    (decided,) = [e for e in coop.collect_events() if isinstance(e, Cooperative.ProposalDecided)]
    return decided


# ---- rule 2: one member, one vote; the electorate is frozen when the proposal is raised --


def test_the_electorate_is_the_membership_at_the_moment_the_proposal_is_raised() -> None:
    coop = found(4)

    proposal_id = raise_(coop, ProposalKind.GENERAL)

    assert set(coop.proposals[proposal_id].electorate) == set(members(coop))
    assert MENTOR not in coop.proposals[proposal_id].electorate


def test_every_member_of_the_electorate_casts_one_vote() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    coop.collect_events()

    vote_all(coop, proposal_id, AGAINST, at=T0 + HOUR)

    votes = coop.collect_events()
    assert event_names(votes) == ["VoteCast"] * 3
    assert {v.actor for v in votes} == set(members(coop))
    assert set(coop.proposals[proposal_id].votes.values()) == {AGAINST}


def test_a_member_who_joined_after_the_proposal_was_raised_cannot_vote_on_it() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    newcomer = uuid4()
    coop.admit_founding_member(newcomer, actor=MENTOR, at=T0 + HOUR)

    with refused(coop, NotEligibleToVote):
        coop.vote(proposal_id, FOR, actor=newcomer, at=T0 + 2 * HOUR)


def test_the_mentor_cannot_vote() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)

    with refused(coop, NotEligibleToVote):
        coop.vote(proposal_id, FOR, actor=MENTOR, at=T0 + HOUR)


def test_the_facilitator_cannot_vote() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)

    with refused(coop, NotEligibleToVote):
        coop.vote(proposal_id, FOR, actor=FACILITATOR, at=T0 + HOUR)


def test_a_member_who_left_after_the_proposal_was_raised_cannot_vote_any_more() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    leaver = members(coop)[2]
    coop.leave(actor=leaver, at=T0 + HOUR)

    with refused(coop, NotEligibleToVote):
        coop.vote(proposal_id, FOR, actor=leaver, at=T0 + 2 * HOUR)


def test_a_member_may_change_their_vote_while_the_proposal_is_open() -> None:
    coop = found(3)
    voter = members(coop)[0]
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    coop.vote(proposal_id, FOR, actor=voter, at=T0 + HOUR)
    coop.collect_events()

    coop.vote(proposal_id, AGAINST, actor=voter, at=T0 + 2 * HOUR)

    (changed,) = coop.collect_events()
    assert isinstance(changed, Cooperative.VoteChanged)
    assert (changed.previous, changed.choice) == (FOR, AGAINST)
    assert coop.proposals[proposal_id].votes == {voter: AGAINST}


def test_a_changed_vote_counts_once_with_its_last_choice() -> None:
    coop = found(3)
    first, second, third = members(coop)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    coop.vote(proposal_id, FOR, actor=first, at=T0 + HOUR)
    coop.vote(proposal_id, AGAINST, actor=first, at=T0 + 2 * HOUR)
    coop.vote(proposal_id, FOR, actor=second, at=T0 + 2 * HOUR)
    coop.vote(proposal_id, AGAINST, actor=third, at=T0 + 2 * HOUR)
    coop.collect_events()

    close(coop, proposal_id, at=T0 + 3 * HOUR)

    decided = outcome_event(coop)
    assert isinstance(decided, Cooperative.ProposalRejected)
    assert decided.tally == Tally(electorate=3, votes_for=1, votes_against=2, abstentions=0)


def test_casting_the_same_vote_twice_is_refused() -> None:
    coop = found(3)
    voter = members(coop)[0]
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    coop.vote(proposal_id, FOR, actor=voter, at=T0 + HOUR)

    with refused(coop, InvalidInput):
        coop.vote(proposal_id, FOR, actor=voter, at=T0 + 2 * HOUR)


def test_a_vote_cannot_change_once_the_proposal_is_closed() -> None:
    coop = found(3)
    voter = members(coop)[0]
    proposal_id = pass_proposal(coop, ProposalKind.GENERAL)

    with refused(coop, ProposalClosed):
        coop.vote(proposal_id, AGAINST, actor=voter, at=T0 + HOUR)


def test_a_vote_at_the_deadline_is_refused_even_before_anyone_closes_the_proposal() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)

    with refused(coop, ProposalClosed):
        coop.vote(proposal_id, FOR, actor=members(coop)[0], at=T0 + VOTING_PERIOD)


def test_a_vote_on_an_unknown_proposal_is_refused() -> None:
    coop = found(3)

    with refused(coop, ProposalNotFound):
        coop.vote(uuid4(), FOR, actor=members(coop)[0], at=T0)


# ---- rule 3: effects only through an adopted proposal, recorded right after it ----------


def _admit(coop: Cooperative) -> dict[str, Any]:
    return {"subject": uuid4()}


def _appoint(coop: Cooperative) -> dict[str, Any]:
    return {"subject": members(coop)[1]}


def _end_mentorship(coop: Cooperative) -> dict[str, Any]:
    return {}


def _change_rules(coop: Cooperative) -> dict[str, Any]:
    return {"new_rules": DecisionRules(member_cap=12)}


GOVERNANCE_EFFECTS = [
    pytest.param(ProposalKind.ADMIT_MEMBER, _admit, Cooperative.MemberAdmitted, id="admit"),
    pytest.param(
        ProposalKind.APPOINT_COORDINATOR, _appoint, Cooperative.CoordinatorAppointed, id="appoint"
    ),
    pytest.param(
        ProposalKind.END_MENTORSHIP, _end_mentorship, Cooperative.MentorshipEnded, id="mentorship"
    ),
    pytest.param(ProposalKind.CHANGE_RULES, _change_rules, Cooperative.RulesChanged, id="rules"),
]


@pytest.mark.parametrize(("kind", "payload", "effect_class"), GOVERNANCE_EFFECTS)
def test_an_adopted_proposal_takes_effect_right_after_its_adoption_naming_the_decision(
    kind: ProposalKind, payload: Any, effect_class: type[Any]
) -> None:
    coop = found(4)
    proposal_id = raise_(coop, kind, at=T0 + DAY, **payload(coop))
    vote_all(coop, proposal_id, at=T0 + DAY)
    coop.collect_events()
    text = coop.proposals[proposal_id].text

    close(coop, proposal_id, at=T0 + DAY + HOUR)

    adopted, effect = coop.collect_events()
    assert isinstance(adopted, Cooperative.ProposalAdopted)
    assert type(effect) is effect_class
    assert adopted.proposal_id == effect.decision_id == proposal_id
    assert effect.originator_version == adopted.originator_version + 1
    assert effect.timestamp == adopted.timestamp
    assert effect.reason == text


@pytest.mark.parametrize(("kind", "payload", "effect_class"), GOVERNANCE_EFFECTS)
def test_a_rejected_governance_proposal_changes_nothing(
    kind: ProposalKind, payload: Any, effect_class: type[Any]
) -> None:
    coop = found(4)
    proposal_id = raise_(coop, kind, **payload(coop))
    vote_all(coop, proposal_id, AGAINST)
    coop.collect_events()
    proposal_state = ("proposals", "closed_proposals", "_version")
    before = {k: v for k, v in vars(coop).items() if k not in proposal_state}

    close(coop, proposal_id, at=T0 + HOUR)

    assert event_names(coop.collect_events()) == ["ProposalRejected"]
    after = {k: v for k, v in vars(coop).items() if k not in proposal_state}
    assert after | {"_modified_on": None} == before | {"_modified_on": None}
    assert proposal_id in coop.closed_proposals


def test_a_general_proposal_records_only_its_outcome() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    vote_all(coop, proposal_id)
    coop.collect_events()

    close(coop, proposal_id, at=T0 + HOUR)

    assert event_names(coop.collect_events()) == ["ProposalAdopted"]
    assert proposal_id in coop.closed_proposals


def test_a_proposal_that_names_no_subject_to_admit_or_appoint_is_refused() -> None:
    coop = found(3)

    for kind in (ProposalKind.ADMIT_MEMBER, ProposalKind.APPOINT_COORDINATOR):
        with refused(coop, InvalidInput):
            raise_(coop, kind)
    with refused(coop, InvalidInput):
        raise_(coop, ProposalKind.CHANGE_RULES)
    with refused(coop, InvalidInput):
        raise_(coop, ProposalKind.SPLIT)


def test_only_members_raise_proposals() -> None:
    coop = found(3)

    for outsider in (MENTOR, FACILITATOR):
        with refused(coop, NotAMember):
            raise_(coop, ProposalKind.GENERAL, by=outsider)


def test_a_proposal_whose_deadline_is_not_in_the_future_is_refused() -> None:
    coop = found(3)

    with refused(coop, InvalidInput):
        raise_(coop, ProposalKind.GENERAL, at=T0, closes_at=T0)


def test_a_proposal_may_be_raised_under_an_id_the_caller_chose() -> None:
    coop = found(3)
    chosen = uuid4()

    proposal_id = raise_(coop, ProposalKind.GENERAL, proposal_id=chosen)

    assert proposal_id == chosen
    assert coop.proposals[chosen].is_open


def test_raising_a_proposal_under_the_id_of_an_existing_one_is_refused() -> None:
    # Otherwise ProposalRaised.apply replaces the earlier proposal: an adopted admission
    # loses its votes and outcome, and the new member's decision_id then names an open
    # general proposal. (The Ledger always passes a fresh uuid4; the aggregate accepts any.)
    coop = found(3)
    newcomer = uuid4()
    decision = pass_proposal(coop, ProposalKind.ADMIT_MEMBER, subject=newcomer)

    with refused(coop, RuleViolation):
        raise_(coop, ProposalKind.GENERAL, at=T0 + HOUR, proposal_id=decision)
    assert decision in coop.closed_proposals
    assert decision not in coop.proposals


# ---- rule 4: the decision rules --------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "kind", "votes", "expected"),
    [
        # Quorum: more than half of the electorate of 6 must turn out; abstaining counts.
        pytest.param(DecisionRules(), ProposalKind.GENERAL, (3, 0, 0), Outcome.EXPIRED, id="q=3/6"),
        pytest.param(DecisionRules(), ProposalKind.GENERAL, (2, 1, 1), Outcome.ADOPTED, id="q=4/6"),
        pytest.param(DecisionRules(), ProposalKind.GENERAL, (0, 0, 4), Outcome.REJECTED, id="abst"),
        # Majority: votes for exceed votes against; a tie is no majority.
        pytest.param(DecisionRules(), ProposalKind.GENERAL, (2, 2, 0), Outcome.REJECTED, id="tie"),
        pytest.param(DecisionRules(), ProposalKind.GENERAL, (3, 2, 1), Outcome.ADOPTED, id="3:2"),
        # Two thirds of the votes cast for a split or a change of rules.
        pytest.param(DecisionRules(), ProposalKind.SPLIT, (3, 2, 1), Outcome.REJECTED, id="split"),
        pytest.param(
            DecisionRules(), ProposalKind.CHANGE_RULES, (3, 2, 1), Outcome.REJECTED, id="rules"
        ),
        pytest.param(DecisionRules(), ProposalKind.SPLIT, (4, 2, 0), Outcome.ADOPTED, id="2/3"),
        pytest.param(DecisionRules(), ProposalKind.SPLIT, (0, 0, 6), Outcome.REJECTED, id="none"),
        # Consent: adopted when nobody objects, whatever the kind.
        pytest.param(CONSENT, ProposalKind.GENERAL, (5, 1, 0), Outcome.REJECTED, id="objection"),
        pytest.param(CONSENT, ProposalKind.SPLIT, (2, 0, 2), Outcome.ADOPTED, id="consent"),
        pytest.param(CONSENT, ProposalKind.GENERAL, (3, 0, 0), Outcome.EXPIRED, id="consent-q"),
    ],
)
def test_the_decision_rules_decide_a_tally(
    rules: DecisionRules, kind: ProposalKind, votes: tuple[int, int, int], expected: Outcome
) -> None:
    votes_for, votes_against, abstentions = votes

    outcome, rule_applied = decide(rules, kind, Tally(6, votes_for, votes_against, abstentions))

    assert outcome is expected
    assert "quorum" in rule_applied


def test_a_proposal_adopted_by_a_simple_majority_is_recorded_with_its_tally_and_rule() -> None:
    coop = found(6)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    cast(coop, proposal_id, [FOR, FOR, FOR, AGAINST, AGAINST, ABSTAIN])
    coop.collect_events()

    close(coop, proposal_id, at=T0 + HOUR)

    decided = outcome_event(coop)
    assert isinstance(decided, Cooperative.ProposalAdopted)
    assert decided.tally == Tally(6, 3, 2, 1)
    assert "majority" in decided.rule_applied


def test_a_change_of_rules_with_a_simple_majority_short_of_two_thirds_is_rejected() -> None:
    coop = found(6)
    proposal_id = raise_(coop, ProposalKind.CHANGE_RULES, new_rules=CONSENT)
    cast(coop, proposal_id, [FOR, FOR, FOR, AGAINST, AGAINST, ABSTAIN])
    coop.collect_events()

    close(coop, proposal_id, at=T0 + HOUR)

    decided = outcome_event(coop)
    assert isinstance(decided, Cooperative.ProposalRejected)
    assert "2/3" in decided.rule_applied
    assert coop.rules == DecisionRules()


def test_a_change_of_rules_with_two_thirds_of_the_votes_cast_is_adopted() -> None:
    coop = found(6)
    proposal_id = raise_(coop, ProposalKind.CHANGE_RULES, new_rules=CONSENT)
    cast(coop, proposal_id, [FOR, FOR, FOR, FOR, AGAINST, AGAINST])

    close(coop, proposal_id, at=T0 + HOUR)

    assert outcome(coop, proposal_id) == Outcome.ADOPTED
    assert coop.rules == CONSENT


def test_under_consent_one_objection_rejects_what_a_majority_would_adopt() -> None:
    coop = found(6, rules=CONSENT)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    cast(coop, proposal_id, [FOR, FOR, FOR, FOR, FOR, AGAINST])
    coop.collect_events()

    close(coop, proposal_id, at=T0 + HOUR)

    decided = outcome_event(coop)
    assert isinstance(decided, Cooperative.ProposalRejected)
    assert "consent" in decided.rule_applied


def test_under_consent_a_proposal_nobody_objects_to_is_adopted() -> None:
    coop = found(4, rules=CONSENT)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    cast(coop, proposal_id, [FOR, ABSTAIN, ABSTAIN, ABSTAIN])

    close(coop, proposal_id, at=T0 + HOUR)

    assert outcome(coop, proposal_id) == Outcome.ADOPTED


def test_rules_changed_by_decision_decide_the_next_proposal() -> None:
    coop = found(6)
    pass_proposal(coop, ProposalKind.CHANGE_RULES, new_rules=CONSENT)
    proposal_id = raise_(coop, ProposalKind.GENERAL, at=T0 + DAY)
    cast(coop, proposal_id, [FOR, FOR, FOR, FOR, FOR, AGAINST], at=T0 + DAY)

    close(coop, proposal_id, at=T0 + DAY + HOUR)

    assert outcome(coop, proposal_id) == Outcome.REJECTED


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param(DecisionRules(quorum_numerator=3, quorum_denominator=2), id="quorum>1"),
        pytest.param(DecisionRules(quorum_denominator=0), id="quorum/0"),
        pytest.param(DecisionRules(supermajority_numerator=-1), id="supermajority<0"),
        pytest.param(DecisionRules(member_cap=0), id="cap=0"),
    ],
)
def test_decision_rules_that_could_not_work_are_refused(rules: DecisionRules) -> None:
    with pytest.raises(InvalidInput):
        found(3, rules=rules)
    coop = found(3)
    with refused(coop, InvalidInput):
        raise_(coop, ProposalKind.CHANGE_RULES, new_rules=rules)


def test_every_set_of_rules_that_is_accepted_lets_a_unanimous_full_turnout_adopt() -> None:
    # "Refuse rules that could not work" (DecisionRules.check): the quorum is turnout MORE
    # than quorum x electorate (rules.decide), so a quorum of n/n can never be met. Such
    # rules would make every later proposal expire, a proposal to change them back too.
    deadlocked: set[str] = set()
    for denominator in range(1, 5):
        for numerator in range(denominator + 1):
            rules = DecisionRules(quorum_numerator=numerator, quorum_denominator=denominator)
            try:
                rules.check()
            except InvalidInput:
                continue
            for kind in ProposalKind:
                outcome, _ = decide(rules, kind, Tally(5, 5, 0, 0))
                if outcome is not Outcome.ADOPTED:
                    deadlocked.add(f"quorum {numerator}/{denominator} ({outcome.value})")
    assert sorted(deadlocked) == []


def test_a_cooperative_with_a_whole_electorate_quorum_can_still_decide_unanimously() -> None:
    whole = DecisionRules(quorum_numerator=1, quorum_denominator=1)
    try:
        coop = found(3, rules=whole)
    except InvalidInput:
        return  # refusing such rules at founding is one way to hold rule 4
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    vote_all(coop, proposal_id)

    close(coop, proposal_id, at=T0 + HOUR)

    assert outcome(coop, proposal_id) == Outcome.ADOPTED


# ---- closing: early only when everyone voted; expired; lapsed ----------------------------


def test_a_proposal_closes_before_its_deadline_once_everyone_voted() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    vote_all(coop, proposal_id)

    close(coop, proposal_id, at=T0 + HOUR)

    assert outcome(coop, proposal_id) == Outcome.ADOPTED
    assert proposal_id not in coop.proposals


def test_closing_before_the_deadline_while_someone_has_not_voted_is_refused() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    cast(coop, proposal_id, [FOR, FOR])

    with refused(coop, ProposalStillOpen):
        close(coop, proposal_id, at=T0 + VOTING_PERIOD - HOUR)


def test_at_its_deadline_a_proposal_closes_with_the_votes_cast() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    cast(coop, proposal_id, [FOR, FOR])

    close(coop, proposal_id, at=T0 + VOTING_PERIOD)

    assert outcome(coop, proposal_id) == Outcome.ADOPTED


def test_a_proposal_expires_when_the_quorum_is_not_met_by_the_deadline() -> None:
    coop = found(4)
    proposal_id = raise_(coop, ProposalKind.ADMIT_MEMBER, subject=uuid4())
    cast(coop, proposal_id, [FOR, FOR])
    coop.collect_events()

    close(coop, proposal_id, at=T0 + VOTING_PERIOD)

    decided = outcome_event(coop)
    assert isinstance(decided, Cooperative.ProposalExpired)
    assert "not met" in decided.rule_applied
    assert proposal_id in coop.closed_proposals
    assert len(coop.members) == 4


def test_a_proposal_is_closed_only_once() -> None:
    coop = found(3)
    proposal_id = pass_proposal(coop, ProposalKind.GENERAL)

    with refused(coop, ProposalClosed):
        close(coop, proposal_id, at=T0 + HOUR)


def test_closing_an_unknown_proposal_is_refused() -> None:
    coop = found(3)

    with refused(coop, ProposalNotFound):
        close(coop, uuid4(), at=T0 + HOUR)


def test_the_mentor_may_close_a_proposal_during_the_mentor_year_but_not_after_it() -> None:
    coop = found(3)
    during = raise_(coop, ProposalKind.GENERAL)
    vote_all(coop, during)
    coop.close_proposal(during, actor=MENTOR, at=T0 + HOUR)
    assert outcome(coop, during) == Outcome.ADOPTED

    after = raise_(coop, ProposalKind.GENERAL, at=MENTOR_YEAR_END)
    vote_all(coop, after, at=MENTOR_YEAR_END)
    with refused(coop, NotAMember):
        coop.close_proposal(after, actor=MENTOR, at=MENTOR_YEAR_END + HOUR)


def test_the_facilitator_cannot_close_a_proposal() -> None:
    coop = found(3)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    vote_all(coop, proposal_id)

    with refused(coop, NotAMember):
        coop.close_proposal(proposal_id, actor=FACILITATOR, at=T0 + HOUR)


def test_an_adopted_appointment_lapses_when_its_subject_left_before_the_close() -> None:
    coop = found(4)
    subject = members(coop)[3]
    proposal_id = raise_(coop, ProposalKind.APPOINT_COORDINATOR, subject=subject)
    vote_all(coop, proposal_id)
    coop.leave(actor=subject, at=T0 + HOUR)
    coop.collect_events()

    close(coop, proposal_id, at=T0 + 2 * HOUR)

    (lapsed,) = coop.collect_events()
    assert isinstance(lapsed, Cooperative.ProposalLapsed)
    assert lapsed.refusal == NotAMember.code
    assert lapsed.tally.votes_for == 4
    assert coop.coordinator_id is None
    assert proposal_id in coop.closed_proposals
    assert proposal_id not in coop.proposals


def test_a_lapsed_proposal_cannot_be_closed_again() -> None:
    coop = found(4)
    subject = members(coop)[3]
    proposal_id = raise_(coop, ProposalKind.APPOINT_COORDINATOR, subject=subject)
    vote_all(coop, proposal_id)
    coop.leave(actor=subject, at=T0 + HOUR)
    close(coop, proposal_id, at=T0 + 2 * HOUR)

    with refused(coop, ProposalClosed):
        close(coop, proposal_id, at=T0 + 3 * HOUR)


def test_votes_of_members_who_left_still_count_in_the_frozen_electorate() -> None:
    coop = found(4)
    proposal_id = raise_(coop, ProposalKind.GENERAL)
    cast(coop, proposal_id, [FOR, FOR, FOR])
    leaver: UUID = coop.proposals[proposal_id].electorate[0]
    coop.leave(actor=leaver, at=T0 + HOUR)
    coop.collect_events()

    close(coop, proposal_id, at=T0 + VOTING_PERIOD)

    decided = outcome_event(coop)
    assert decided.tally == Tally(4, 3, 0, 0)
    assert isinstance(decided, Cooperative.ProposalAdopted)
