"""The governance projection: real Ledger events in, audit rows, register and indicators out.

Every test runs on SQLite and on PostgreSQL. Hand-made events (saved with the
ledger's guards bypassed) show that the projection judges mandates on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger import Cooperative, DecisionRules, SplitPlan
from ledger.errors import InvalidInput
from ledger.storage import Database
from projections.governance import Governance
from projections.governance_queries import audit_trail, decision, decisions, equality
from projections.runner import ProjectionRunner
from tests.integration.support import World


class WorkPaused(Cooperative.Event):
    """An event kind the projection was not written for (as a later release might add)."""

    work_id: UUID


def project(world: World) -> Database:
    """Bring the governance projection up to date with every stored event."""
    ProjectionRunner(world.ledger, [Governance()]).catch_up()
    return world.ledger.db


def kinds(trail: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in trail["entries"]]


def forge(world: World, coop_id: UUID, event_class: Any, **fields: Any) -> None:
    """Record an event the ledger's guards would have refused, as a bug or an intruder might."""
    coop = world.ledger.get_cooperative(coop_id)
    coop.trigger_event(event_class, timestamp=world.clock(), reason=None, **fields)
    world.ledger.save(coop)


def vote(world: World, coop_id: UUID, proposal_id: UUID, choices: dict[int, str]) -> None:
    """Worker n votes choices[n]."""
    for n, choice in choices.items():
        world.ledger.vote(coop_id, proposal_id, choice, actor=world.people[n])


def raise_general(world: World, coop_id: UUID, by: int = 0) -> UUID:
    proposal_id: UUID = world.ledger.raise_proposal(
        coop_id, kind="general", text="Buy a new vacuum cleaner", actor=world.people[by]
    ).value
    return proposal_id


def close_after_deadline(world: World, coop_id: UUID, proposal_id: UUID) -> None:
    world.clock.advance(days=8)
    world.ledger.close_proposal(coop_id, proposal_id, actor=world.people[0])


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a query result."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


# ---- audit trail ------------------------------------------------------------------------


def test_every_event_gets_an_audit_row_with_a_readable_summary(world: World) -> None:
    coop_id = world.found(size=3)
    worker = world.people[0]
    work_id = world.ledger.take_work(coop_id, client_ref="client-7", actor=worker).value
    world.ledger.log_hours(coop_id, work_id, minutes=90, actor=worker)
    world.ledger.issue_invoice(
        coop_id, client_ref="client-7", hourly_rate_cents=4000, actor=world.mentor
    )
    decision_id = world.decide(coop_id, "admit_member", subject=world.people[10])

    trail = audit_trail(project(world), coop_id)

    stored = list(world.ledger.events.get(coop_id))
    assert kinds(trail) == [type(e).__name__ for e in stored]
    assert [e["version"] for e in trail["entries"]] == list(range(1, len(stored) + 1))
    assert trail["next_after_position"] is None
    by_kind = {e["kind"]: e for e in trail["entries"]}
    founded = by_kind["Founded"]
    assert founded["actor_name"] == "Fatima the facilitator"
    assert founded["summary"] == (
        f"Founded 'De Schoonmakers' (cleaning) with 3 founding members and mentor {world.mentor};"
        " rules: quorum more than 1/2, majority (2/3 for splits and rule changes),"
        " at most 20 members"
    )
    assert by_kind["WorkTaken"]["actor_name"] == "Worker 0"
    assert by_kind["WorkTaken"]["summary"] == f"Took on work {work_id} for client client-7"
    assert (
        by_kind["HoursLogged"]["summary"] == f"Logged 1 h 30 min on work {work_id} for 2026-01-05"
    )
    assert by_kind["InvoiceIssued"]["actor_name"] == "Mo the mentor"
    assert by_kind["InvoiceIssued"]["summary"] == (
        "Issued invoice 1 to client client-7 for €60.00 (1 entry of logged hours at €40.00 an hour)"
    )
    assert by_kind["ProposalRaised"]["summary"].startswith(
        f'Raised proposal {decision_id} to admit {world.people[10]}: "proposal to admit_member";'
        " electorate 3, closes 2026-01-12T09:00:00+00:00"
    )
    assert by_kind["ProposalAdopted"]["summary"] == (
        f"Proposal {decision_id} was adopted (3 for, 0 against, 0 abstaining; turnout 3 of 3)"
    )
    admitted = by_kind["MemberAdmitted"]
    assert (
        admitted["summary"] == f"Admitted {world.people[10]} as a member by decision {decision_id}"
    )
    assert admitted["decision_id"] == str(decision_id)
    assert admitted["reason"] == "proposal to admit_member"
    assert admitted["at"] == "2026-01-05T09:00:00+00:00"


def test_an_event_kind_added_later_still_gets_an_audit_row_with_its_fields(world: World) -> None:
    coop_id = world.found(size=2)
    work_id = uuid4()
    forge(world, coop_id, WorkPaused, work_id=work_id, actor=world.people[1])

    trail = audit_trail(project(world), coop_id, kind="WorkPaused")

    (entry,) = trail["entries"]
    assert entry["summary"] == f"Work paused: work id {work_id}"
    assert entry["actor_name"] == "Worker 1"


def test_the_audit_trail_keeps_what_a_member_did_or_what_was_about_them(world: World) -> None:
    coop_id = world.found(size=4)
    newcomer = world.people[10]
    world.clock.advance(days=1)
    world.decide(coop_id, "admit_member", subject=newcomer)
    world.ledger.take_work(coop_id, client_ref="client-1", actor=newcomer)

    db = project(world)

    assert kinds(audit_trail(db, coop_id, member=newcomer)) == [
        "ProposalRaised",
        "MemberAdmitted",
        "WorkTaken",
    ]
    # Worker 3 was named as a founding member and voted once.
    assert kinds(audit_trail(db, coop_id, member=world.people[3])) == ["Founded", "VoteCast"]


def test_the_audit_trail_filters_by_kind_and_by_time(world: World) -> None:
    coop_id = world.found(size=4)
    start = world.clock()
    world.clock.advance(days=1)
    world.decide(coop_id, "general")
    world.clock.advance(days=1)
    world.ledger.take_work(coop_id, client_ref="client-1", actor=world.people[0])

    db = project(world)

    assert kinds(audit_trail(db, coop_id, kind="VoteCast")) == ["VoteCast"] * 4
    day_two = audit_trail(
        db, coop_id, since=start + timedelta(days=1), until=start + timedelta(days=2)
    )
    assert kinds(day_two) == ["ProposalRaised", *["VoteCast"] * 4, "ProposalAdopted"]
    assert kinds(audit_trail(db, coop_id, since=start + timedelta(days=2))) == ["WorkTaken"]
    assert kinds(audit_trail(db, coop_id, until=start)) == []


def test_the_audit_trail_pages_by_position_without_gaps_or_repeats(world: World) -> None:
    coop_id = world.found(size=3)
    other = world.found(size=2)
    work_id = world.ledger.take_work(coop_id, client_ref="c", actor=world.people[0]).value
    for _ in range(8):
        world.ledger.log_hours(coop_id, work_id, minutes=30, actor=world.people[0])
    db = project(world)
    everything = audit_trail(db, coop_id)["entries"]
    assert len(everything) == 10

    pages, after = [], None
    while True:
        page = audit_trail(db, coop_id, after_position=after, limit=4)
        pages.append(page["entries"])
        after = page["next_after_position"]
        if after is None:
            break

    assert [len(p) for p in pages] == [4, 4, 2]
    assert [e for p in pages for e in p] == everything
    assert kinds(audit_trail(db, other)) == ["Founded"]


def test_the_audit_trail_refuses_a_silly_page_size_or_a_time_without_zone(world: World) -> None:
    coop_id = world.found(size=2)
    db = project(world)
    with pytest.raises(InvalidInput):
        audit_trail(db, coop_id, limit=0)
    with pytest.raises(InvalidInput):
        audit_trail(db, coop_id, since=world.clock().replace(tzinfo=None))


# ---- decisions register -------------------------------------------------------------------


def test_the_register_shows_adopted_rejected_expired_and_lapsed_proposals_with_tallies(
    world: World,
) -> None:
    coop_id = world.found(size=5)
    adopted = world.decide(coop_id, "general")
    rejected = raise_general(world, coop_id, by=1)
    vote(world, coop_id, rejected, {0: "for", 1: "against", 2: "against", 3: "against"})
    vote(world, coop_id, rejected, {4: "abstain"})
    world.ledger.close_proposal(coop_id, rejected, actor=world.people[4])
    expired = raise_general(world, coop_id)
    vote(world, coop_id, expired, {0: "for", 1: "for"})
    close_after_deadline(world, coop_id, expired)
    lapsed: UUID = world.ledger.raise_proposal(
        coop_id,
        kind="admit_member",
        text="Admit Worker 10",
        actor=world.people[2],
        subject=world.people[10],
    ).value
    vote(world, coop_id, lapsed, dict.fromkeys(range(5), "for"))
    # The mentor admits the same person first, so the adopted admission can no longer happen.
    world.ledger.admit_founding_member(coop_id, world.people[10], actor=world.mentor)
    world.ledger.close_proposal(coop_id, lapsed, actor=world.people[0])

    register = decisions(project(world), coop_id)

    assert [d["proposal_id"] for d in register] == [
        str(p) for p in (adopted, rejected, expired, lapsed)
    ]
    tallies = [
        (
            d["outcome"],
            d["electorate_size"],
            d["turnout"],
            d["votes_for"],
            d["votes_against"],
            d["abstentions"],
        )
        for d in register
    ]
    assert tallies == [
        ("adopted", 5, 5, 5, 0, 0),
        ("rejected", 5, 5, 1, 3, 1),
        ("expired", 5, 2, 2, 0, 0),
        ("lapsed", 5, 5, 5, 0, 0),
    ]
    assert register[0]["rule_applied"].endswith("majority: votes for exceed votes against")
    assert register[2]["rule_applied"] == "quorum: turnout 2 of 5 must exceed 1/2 (not met)"
    assert register[3]["refusal"] == "already_a_member"
    assert register[3]["kind"] == "admit_member"
    assert register[3]["subject_name"] == "Worker 10"
    assert [d["raised_by_name"] for d in register] == [
        "Worker 0",
        "Worker 1",
        "Worker 0",
        "Worker 2",
    ]
    assert register[1]["closed_by_name"] == "Worker 4"
    assert register[2]["closed_at"] == "2026-01-13T09:00:00+00:00"
    assert register[2]["closes_at"] == "2026-01-12T09:00:00+00:00"


def test_an_open_proposal_shows_who_has_voted_so_far(world: World) -> None:
    coop_id = world.found(size=3)
    proposal_id = raise_general(world, coop_id)
    vote(world, coop_id, proposal_id, {1: "against"})

    detail = decision(project(world), coop_id, proposal_id)

    assert detail is not None
    assert detail["outcome"] == "open"
    assert detail["turnout"] is None
    votes = {v["person_id"]: v["vote"] for v in detail["electorate"]}
    assert votes == {
        str(world.people[0]): None,
        str(world.people[1]): "against",
        str(world.people[2]): None,
    }
    assert decision(project(world), coop_id, uuid4()) is None


def test_a_changed_vote_counts_as_the_members_final_choice(world: World) -> None:
    coop_id = world.found(size=3)
    proposal_id = raise_general(world, coop_id)
    vote(world, coop_id, proposal_id, {0: "for", 1: "against", 2: "for"})
    vote(world, coop_id, proposal_id, {1: "for"})
    world.ledger.close_proposal(coop_id, proposal_id, actor=world.people[0])

    db = project(world)
    detail = decision(db, coop_id, proposal_id)

    assert detail is not None
    assert (detail["outcome"], detail["votes_for"], detail["votes_against"]) == ("adopted", 3, 0)
    changer = next(v for v in detail["electorate"] if v["person_id"] == str(world.people[1]))
    assert changer == {
        "person_id": str(world.people[1]),
        "name": "Worker 1",
        "vote": "for",
        "voted_at": "2026-01-05T09:00:00+00:00",
        "changes": 1,
    }
    (changed,) = audit_trail(db, coop_id, kind="VoteChanged")["entries"]
    assert changed["summary"] == (
        f"Changed their vote on proposal {proposal_id} from 'against' to 'for'"
    )
    assert changed["actor_name"] == "Worker 1"


# ---- equality indicators ----------------------------------------------------------------


def test_participation_counts_proposals_voted_on_among_those_a_member_could_vote_on(
    world: World,
) -> None:
    coop_id = world.found(size=4)
    world.decide(coop_id, "general")
    second = raise_general(world, coop_id, by=1)
    vote(world, coop_id, second, {0: "for", 1: "against"})
    vote(world, coop_id, second, {1: "for"})  # a changed vote is still one proposal voted on
    close_after_deadline(world, coop_id, second)
    world.decide(coop_id, "admit_member", subject=world.people[10])

    indicators = equality(project(world), coop_id)

    assert indicators is not None
    rows = {
        m["name"]: (m["proposals_raised"], m["votes_cast"], m["eligible"], m["participation_rate"])
        for m in indicators["members"]
    }
    assert rows == {
        "Worker 0": (2, 3, 3, 1.0),
        "Worker 1": (1, 3, 3, 1.0),
        "Worker 2": (0, 2, 3, pytest.approx(2 / 3)),
        "Worker 3": (0, 2, 3, pytest.approx(2 / 3)),
        "Worker 10": (0, 0, 0, None),
    }
    assert all(m["current_member"] for m in indicators["members"])


def test_the_most_active_members_share_of_proposals_is_shown_with_their_name(world: World) -> None:
    coop_id = world.found(size=3)
    for by in (0, 0, 0, 1):
        raise_general(world, coop_id, by=by)
    db = project(world)

    indicators = equality(db, coop_id)

    assert indicators is not None
    assert indicators["proposals_raised"] == 4
    assert indicators["most_active_share"] == 0.75
    assert indicators["most_active"] == [
        {"person_id": str(world.people[0]), "name": "Worker 0", "proposals_raised": 3}
    ]
    assert equality(db, uuid4()) is None


def test_adoptions_within_one_vote_of_the_quorum_line_are_counted_under_the_rules_in_force(
    world: World,
) -> None:
    coop_id = world.found(size=5)  # quorum: more than 5/2, so at least 3 must vote
    at_the_line = raise_general(world, coop_id)
    vote(world, coop_id, at_the_line, {0: "for", 1: "for", 2: "for"})
    close_after_deadline(world, coop_id, at_the_line)
    one_above = raise_general(world, coop_id)
    vote(world, coop_id, one_above, {0: "for", 1: "for", 2: "for", 3: "against"})
    close_after_deadline(world, coop_id, one_above)
    world.decide(coop_id, "general")  # everyone: two above the line
    rejected = raise_general(world, coop_id)
    vote(world, coop_id, rejected, {0: "against", 1: "against", 2: "for"})
    close_after_deadline(world, coop_id, rejected)
    db = project(world)
    indicators = equality(db, coop_id)
    assert indicators is not None
    assert indicators["adopted_close_to_quorum"] == 2

    # A stricter quorum (more than 3/4: at least 4 of 5) moves the line up.
    world.decide(
        coop_id, "change_rules", new_rules=DecisionRules(quorum_numerator=3, quorum_denominator=4)
    )
    world.decide(coop_id, "general")
    indicators = equality(project(world), coop_id)

    assert indicators is not None
    assert indicators["adopted_close_to_quorum"] == 3
    assert [d["quorum_min"] for d in decisions(db, coop_id)] == [3, 3, 3, 3, 3, 4]


def test_a_normal_history_has_no_action_without_a_mandate(world: World) -> None:
    coop_id = world.found(size=4)
    mentor, worker = world.mentor, world.people[0]
    world.ledger.admit_founding_member(
        coop_id, world.people[4], actor=mentor, conversation_group="group 2"
    )
    work_id = world.ledger.take_work(coop_id, client_ref="client-1", actor=worker).value
    world.ledger.log_hours(coop_id, work_id, minutes=120, actor=worker)
    world.ledger.issue_invoice(coop_id, client_ref="client-1", hourly_rate_cents=4000, actor=mentor)
    world.ledger.register_payment(coop_id, 1, amount_cents=8000, actor=mentor)
    world.decide(coop_id, "admit_member", subject=world.people[10])
    world.decide(coop_id, "change_rules", new_rules=DecisionRules(member_cap=15))
    world.clock.advance(days=366)
    world.ledger.complete_mentor_year(coop_id, actor=mentor)
    world.decide(coop_id, "appoint_coordinator", subject=world.people[1])
    world.ledger.log_hours(coop_id, work_id, minutes=60, actor=worker)
    world.ledger.issue_invoice(
        coop_id, client_ref="client-1", hourly_rate_cents=4000, actor=world.people[1]
    )
    world.ledger.credit_invoice(coop_id, 2, actor=world.people[1])
    world.decide(coop_id, "split", split=SplitPlan("De Schoonmakers Noord", (world.people[1],)))
    child_id = world.ledger.get_cooperative(coop_id).children[0]
    early = world.found(size=3)
    world.decide(early, "end_mentorship")

    db = project(world)

    for cooperative in (coop_id, child_id, early):
        indicators = equality(db, cooperative)
        assert indicators is not None
        assert (indicators["unauthorised_actions"], indicators["unauthorised"]) == (0, [])
    assert kinds(audit_trail(db, coop_id, kind="CoordinatorVacated")) == ["CoordinatorVacated"]


def test_a_member_admitted_by_another_member_without_a_decision_is_counted(world: World) -> None:
    coop_id = world.found(size=3)
    newcomer = world.people[10]
    forge(
        world,
        coop_id,
        Cooperative.MemberAdmitted,
        person_id=newcomer,
        conversation_group=None,
        decision_id=None,
        actor=world.people[0],
    )

    indicators = equality(project(world), coop_id)

    assert indicators is not None
    assert indicators["unauthorised_actions"] == 1
    (action,) = indicators["unauthorised"]
    assert action["kind"] == "MemberAdmitted"
    assert action["actor_name"] == "Worker 0"
    assert action["why"] == (
        f"admitted {newcomer} without a decision, and {world.people[0]} is not the mentor"
    )


def test_each_kind_of_action_without_its_mandate_is_counted(world: World) -> None:
    coop_id = world.found(size=4)
    member, mentor = world.people[0], world.mentor
    refused = raise_general(world, coop_id)
    refused_appointment: UUID = world.ledger.raise_proposal(
        coop_id,
        kind="appoint_coordinator",
        text="Worker 1 coordinates",
        actor=member,
        subject=world.people[1],
    ).value
    vote(world, coop_id, refused_appointment, dict.fromkeys(range(4), "against"))
    world.ledger.close_proposal(coop_id, refused_appointment, actor=member)
    forge(
        world,
        coop_id,
        Cooperative.RulesChanged,
        rules=DecisionRules(),
        decision_id=None,
        actor=member,
    )
    forge(
        world,
        coop_id,
        Cooperative.CoordinatorAppointed,
        member_id=world.people[1],
        replaces=None,
        decision_id=refused_appointment,
        actor=world.people[1],
    )
    forge(
        world,
        coop_id,
        Cooperative.InvoiceIssued,
        number=1,
        client_ref="c",
        entry_ids=(),
        hourly_rate_cents=4000,
        amount_cents=0,
        actor=world.people[2],
    )
    forge(
        world,
        coop_id,
        Cooperative.MentorshipEnded,
        mentor_id=mentor,
        decision_id=None,
        early=True,
        actor=member,
    )
    forge(
        world,
        coop_id,
        Cooperative.MemberAdmitted,
        person_id=world.people[10],
        conversation_group=None,
        decision_id=None,
        actor=mentor,
    )
    forge(
        world,
        coop_id,
        Cooperative.Split,
        child_id=uuid4(),
        child_name="Elsewhere",
        moving_members=(world.people[3],),
        moved_work=(),
        decision_id=refused,
        actor=member,
    )
    later = world.found(size=2)
    world.clock.advance(days=366)
    forge(
        world,
        later,
        Cooperative.MemberAdmitted,
        person_id=world.people[11],
        conversation_group=None,
        decision_id=None,
        actor=mentor,
    )

    db = project(world)
    indicators = equality(db, coop_id)
    after_the_year = equality(db, later)

    assert indicators is not None
    assert after_the_year is not None
    assert [(u["kind"], u["why"]) for u in indicators["unauthorised"]] == [
        ("RulesChanged", "Rules changed without a decision"),
        (
            "CoordinatorAppointed",
            f"Coordinator appointed cites decision {refused_appointment}, which is not an"
            f" adopted proposal to appoint_coordinator {world.people[1]} in this cooperative",
        ),
        (
            "InvoiceIssued",
            f"Invoice issued by {world.people[2]}, who was neither the coordinator"
            " nor the mentor within the mentor year",
        ),
        ("MentorshipEnded", "Mentorship ended without a decision"),
        (
            "MemberAdmitted",
            f"admitted {world.people[10]} without a decision, and the mentorship had ended",
        ),
        (
            "Split",
            f"Split cites decision {refused}, which is not an adopted proposal to split"
            " in this cooperative",
        ),
    ]
    assert indicators["unauthorised_actions"] == 6
    (late,) = after_the_year["unauthorised"]
    assert late["why"] == (
        f"admitted {world.people[11]} without a decision, and the mentor year was over"
        " (2027-01-05T09:00:00+00:00)"
    )


def test_an_invoice_by_a_coordinator_who_is_no_longer_a_member_is_counted(world: World) -> None:
    coop_id = world.found(size=3)
    coordinator = world.people[1]
    world.clock.advance(days=366)
    world.ledger.complete_mentor_year(coop_id, actor=world.mentor)
    world.decide(coop_id, "appoint_coordinator", subject=coordinator)
    # Leaving without the role falling vacant: the ledger never records this pair.
    forge(
        world,
        coop_id,
        Cooperative.MemberLeft,
        person_id=coordinator,
        released_work=(),
        actor=coordinator,
    )
    forge(
        world,
        coop_id,
        Cooperative.InvoiceIssued,
        number=1,
        client_ref="c",
        entry_ids=(),
        hourly_rate_cents=4000,
        amount_cents=0,
        actor=coordinator,
    )

    indicators = equality(project(world), coop_id)

    assert indicators is not None
    assert [u["kind"] for u in indicators["unauthorised"]] == ["InvoiceIssued"]


# ---- personal data ------------------------------------------------------------------------


def test_erasing_a_person_removes_their_name_from_every_query_result(world: World) -> None:
    coop_id = world.found(size=3)
    person = world.people[0]
    decided = world.decide(coop_id, "admit_member", subject=world.people[10])
    forge(
        world,
        coop_id,
        Cooperative.MemberAdmitted,
        person_id=world.people[11],
        conversation_group=None,
        decision_id=None,
        actor=person,
    )
    db = project(world)

    def everything() -> list[Any]:
        return [
            audit_trail(db, coop_id),
            audit_trail(db, coop_id, member=person),
            decisions(db, coop_id),
            decision(db, coop_id, decided),
            equality(db, coop_id),
        ]

    assert "Worker 0" in set(strings(everything()))
    world.ledger.erase_person(person)

    after = everything()
    assert "Worker 0" not in set(strings(after))
    assert str(person) in set(strings(after)), "the pseudonymous id stays"
    assert {e["actor_name"] for e in after[1]["entries"] if e["actor_id"] == str(person)} == {None}
