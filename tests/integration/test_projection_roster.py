"""The roster projection on both stores: events in through the real Ledger, rows out."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from ledger import DecisionRules, FoundingMember, SplitPlan
from ledger.cooperative import one_year_after
from ledger.storage import Database
from projections.framework import iso
from projections.roster import Roster, roster
from projections.runner import ProjectionRunner
from tests.integration.projection_support import assert_live_equals_fresh_rebuild
from tests.integration.support import World


def caught_up(world: World) -> Database:
    """The roster brought up to the ledger's last event; the database to query."""
    runner = ProjectionRunner(world.ledger, [Roster()])
    runner.catch_up()
    (status,) = runner.status()
    # A poison event stops the projection quietly; say so instead of asserting on stale rows.
    assert status.error is None, status.error
    return world.ledger.db


def roster_of(world: World, coop_id: UUID) -> dict[str, Any]:
    view = roster(caught_up(world), coop_id)
    assert view is not None
    return view


def now(world: World) -> str | None:
    return iso(world.clock.now)


def member(
    person_id: UUID,
    name: str,
    since: str | None,
    group: str | None = "group 1",
    decision: UUID | None = None,
    role: str = "member",
    **left: str | None,
) -> dict[str, Any]:
    return {
        "person_id": str(person_id),
        "name": name,
        "since": since,
        "conversation_group": group,
        "admitted_by_decision": None if decision is None else str(decision),
        "role": role,
        **left,
    }


def in_roster_order(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(members, key=lambda m: (m["since"], m["person_id"]))


def names(members: list[dict[str, Any]]) -> list[str]:
    return sorted(m["name"] for m in members)


def terms(view: dict[str, Any], role: str) -> list[tuple[str, str | None, str | None, str | None]]:
    """(person, started_at, ended_at, decision_id) of each term of ``role``, oldest first."""
    return [
        (r["name"], r["started_at"], r["ended_at"], r["decision_id"])
        for r in view["roles"]
        if r["role"] == role
    ]


def test_founding_members_are_listed_with_their_names_and_conversation_groups(
    world: World,
) -> None:
    founded_at = world.clock.now
    coop_id = world.ledger.found_cooperative(
        name="De Schoonmakers",
        sector="cleaning",
        members=[
            *(FoundingMember(p, "group 1") for p in world.people[:3]),
            *(FoundingMember(p, "group 2") for p in world.people[3:5]),
        ],
        mentor_id=world.mentor,
        actor=world.facilitator,
    ).cooperative_id
    assert roster_of(world, coop_id) == {
        "cooperative_id": str(coop_id),
        "member_cap": 20,
        "member_count": 5,
        "members": in_roster_order(
            [
                member(p, f"Worker {n}", iso(founded_at), "group 1" if n < 3 else "group 2")
                for n, p in enumerate(world.people[:5])
            ]
        ),
        "former_members": [],
        "roles": [
            {
                "role": "mentor",
                "person_id": str(world.mentor),
                "name": "Mo the mentor",
                "started_at": iso(founded_at),
                "planned_end": iso(one_year_after(founded_at)),
                "ended_at": None,
                "decision_id": None,
                "ended_by_decision": None,
            }
        ],
    }


def test_a_member_admitted_by_decision_shows_the_decision(world: World) -> None:
    coop_id = world.found(size=3)
    world.clock.advance(days=10)
    decision = world.decide(coop_id, "admit_member", subject=world.people[10])
    view = roster_of(world, coop_id)
    assert view["member_count"] == 4
    assert view["members"][-1] == member(world.people[10], "Worker 10", now(world), None, decision)


def test_a_founding_member_the_mentor_admits_later_has_no_decision(world: World) -> None:
    coop_id = world.found(size=3)
    world.clock.advance(days=2)
    world.ledger.admit_founding_member(
        coop_id, world.people[11], actor=world.mentor, conversation_group="group 2"
    )
    view = roster_of(world, coop_id)
    assert view["members"][-1] == member(world.people[11], "Worker 11", now(world), "group 2")


def test_a_member_who_left_is_listed_among_former_members_with_when(world: World) -> None:
    coop_id = world.found(size=3)
    founded_at = now(world)
    world.clock.advance(days=30)
    world.ledger.leave(coop_id, actor=world.people[1], reason="moving away")
    view = roster_of(world, coop_id)
    assert view["member_count"] == 2
    assert names(view["members"]) == ["Worker 0", "Worker 2"]
    assert view["former_members"] == [
        member(world.people[1], "Worker 1", founded_at, left_at=now(world))
    ]


def test_coordinator_terms_run_from_appointment_to_replacement_to_vacancy(
    world: World,
) -> None:
    coop_id = world.found(size=4)
    world.clock.advance(days=400)
    first = world.decide(coop_id, "appoint_coordinator", subject=world.people[0])
    appointed = now(world)
    view = roster_of(world, coop_id)
    assert [m["name"] for m in view["members"] if m["role"] == "coordinator"] == ["Worker 0"]

    world.clock.advance(days=90)
    second = world.decide(coop_id, "appoint_coordinator", subject=world.people[1])
    replaced = now(world)
    view = roster_of(world, coop_id)
    assert [m["name"] for m in view["members"] if m["role"] == "coordinator"] == ["Worker 1"]

    world.clock.advance(days=30)
    world.ledger.step_down_as_coordinator(coop_id, actor=world.people[1])
    view = roster_of(world, coop_id)
    assert terms(view, "coordinator") == [
        ("Worker 0", appointed, replaced, str(first)),
        ("Worker 1", replaced, now(world), str(second)),
    ]
    assert {m["role"] for m in view["members"]} == {"member"}


def test_a_coordinator_who_leaves_ends_their_term_with_their_membership(world: World) -> None:
    coop_id = world.found(size=3)
    world.clock.advance(days=400)
    world.decide(coop_id, "appoint_coordinator", subject=world.people[2])
    world.clock.advance(days=1)
    world.ledger.leave(coop_id, actor=world.people[2])
    view = roster_of(world, coop_id)
    assert [(name, ended) for name, _, ended, _ in terms(view, "coordinator")] == [
        ("Worker 2", now(world))
    ]
    assert view["former_members"][0]["role"] == "member"


def test_a_mentorship_ended_early_by_decision_ends_the_mentor_term(world: World) -> None:
    coop_id = world.found(size=3)
    founded_at = world.clock.now
    world.clock.advance(days=100)
    world.decide(coop_id, "end_mentorship")
    (mentor,) = [r for r in roster_of(world, coop_id)["roles"] if r["role"] == "mentor"]
    assert (mentor["started_at"], mentor["ended_at"]) == (iso(founded_at), now(world))
    # The plan stays on record next to what happened.
    assert mentor["planned_end"] == iso(one_year_after(founded_at))


def test_the_count_is_shown_against_a_cap_lowered_by_decision(world: World) -> None:
    coop_id = world.found(size=5)
    world.decide(coop_id, "change_rules", new_rules=DecisionRules(member_cap=8))
    world.ledger.admit_founding_member(coop_id, world.people[12], actor=world.mentor)
    view = roster_of(world, coop_id)
    assert (view["member_count"], view["member_cap"]) == (6, 8)


def test_members_who_move_in_a_split_leave_the_parent_and_join_the_child(world: World) -> None:
    parent_id = world.found(size=6)
    founded = world.clock.now
    founded_at = iso(founded)
    world.clock.advance(days=30)
    world.decide(parent_id, "appoint_coordinator", subject=world.people[5])
    world.clock.advance(days=30)
    movers = (world.people[4], world.people[5])
    decision = world.decide(parent_id, "split", split=SplitPlan("Noord", movers))
    (child_id,) = world.ledger.get_cooperative(parent_id).children

    parent = roster_of(world, parent_id)
    assert parent["member_count"] == 4
    assert names(parent["members"]) == ["Worker 0", "Worker 1", "Worker 2", "Worker 3"]
    assert parent["former_members"] == in_roster_order(
        [member(p, f"Worker {n}", founded_at, left_at=now(world)) for n, p in enumerate(movers, 4)]
    )
    # The coordinator moved, so the parent's role is vacant from the moment of the split.
    assert [ended for _, _, ended, _ in terms(parent, "coordinator")] == [now(world)]

    child = roster_of(world, child_id)
    assert child["member_count"] == 2
    assert child["members"] == in_roster_order(
        [member(p, f"Worker {n}", now(world), "group 1", decision) for n, p in enumerate(movers, 4)]
    )
    assert child["former_members"] == []
    # The child keeps the parent's mentor until the parent's mentor year ends.
    assert [(r["name"], r["started_at"], r["planned_end"]) for r in child["roles"]] == [
        ("Mo the mentor", now(world), iso(one_year_after(founded)))
    ]


def test_erasing_a_person_removes_their_name_from_the_roster_at_once(world: World) -> None:
    coop_id = world.found(size=3)
    world.ledger.leave(coop_id, actor=world.people[2])
    db = caught_up(world)
    for person_id in (world.people[0], world.people[2], world.mentor):
        world.ledger.erase_person(person_id)
    # No catch-up: names are joined from the people registry when the roster is read.
    view = roster(db, coop_id)
    assert view is not None
    by_id = {m["person_id"]: m["name"] for m in view["members"] + view["former_members"]}
    assert by_id == {
        str(world.people[0]): None,
        str(world.people[1]): "Worker 1",
        str(world.people[2]): None,
    }
    assert [(r["person_id"], r["name"]) for r in view["roles"]] == [(str(world.mentor), None)]


def test_a_roster_caught_up_one_event_at_a_time_equals_a_fresh_rebuild(world: World) -> None:
    # Batches of one put a split's two sides (Split, SplitOff) in separate transactions.
    coop_id = world.found(size=6)
    world.clock.advance(days=1)
    world.decide(coop_id, "appoint_coordinator", subject=world.people[5])
    world.clock.advance(days=1)
    world.decide(coop_id, "split", split=SplitPlan("Noord", (world.people[4], world.people[5])))
    world.clock.advance(days=1)
    world.decide(coop_id, "admit_member", subject=world.people[20])
    world.ledger.leave(coop_id, actor=world.people[0])
    world.clock.advance(days=1)
    world.decide(coop_id, "end_mentorship")
    runner = ProjectionRunner(world.ledger, [Roster()], batch_size=1)
    runner.catch_up()
    assert [s.error for s in runner.status()] == [None]
    assert_live_equals_fresh_rebuild(world.ledger, [Roster()])
    for cooperative in (coop_id, *world.ledger.get_cooperative(coop_id).children):
        view = roster(world.ledger.db, cooperative)
        assert view is not None
        members = world.ledger.get_cooperative(cooperative).members
        assert view["member_count"] == len(members)
        assert {m["person_id"] for m in view["members"]} == {str(p) for p in members}


def test_an_unknown_cooperative_has_no_roster(world: World) -> None:
    world.found(size=2)
    assert roster(caught_up(world), uuid4()) is None


def test_a_coordinator_replaced_in_the_same_instant_as_appointed_does_not_stop_the_roster(
    world: World,
) -> None:
    coop_id = world.found(size=3)
    world.decide(coop_id, "appoint_coordinator", subject=world.people[0])
    world.decide(coop_id, "appoint_coordinator", subject=world.people[1])
    view = roster_of(world, coop_id)
    assert [name for name, *_ in terms(view, "coordinator")] == ["Worker 0", "Worker 1"]


def test_a_member_readmitted_in_the_same_instant_as_they_left_does_not_stop_the_roster(
    world: World,
) -> None:
    coop_id = world.found(size=3)
    world.ledger.leave(coop_id, actor=world.people[2])
    world.ledger.admit_founding_member(coop_id, world.people[2], actor=world.mentor)
    view = roster_of(world, coop_id)
    assert view["member_count"] == 3
