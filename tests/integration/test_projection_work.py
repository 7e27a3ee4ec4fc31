"""The work projection: events in through the real Ledger, rows out, on both stores."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger import SplitPlan
from projections.runner import ProjectionRunner
from projections.work import (
    WorkAllocation,
    client_contacts,
    evenness,
    handovers,
    work_allocation,
)
from tests.integration.projection_support import assert_live_equals_fresh_rebuild
from tests.integration.support import World


def project(world: World) -> None:
    ProjectionRunner(world.ledger, [WorkAllocation()]).catch_up()


def allocation(world: World, coop_id: UUID) -> dict[str, Any]:
    found = work_allocation(world.ledger.db, coop_id)
    assert found is not None
    return found


def row(world: World, coop_id: UUID, person: UUID) -> dict[str, Any]:
    """One person's allocation row, whether a current member or not."""
    found = allocation(world, coop_id)
    return next(r for r in found["members"] + found["others"] if r["person_id"] == str(person))


def take(world: World, coop_id: UUID, member: UUID, client: str, minutes: int = 0) -> UUID:
    work_id: UUID = world.ledger.take_work(coop_id, client_ref=client, actor=member).value
    if minutes:
        world.ledger.log_hours(coop_id, work_id, minutes=minutes, actor=member)
    return work_id


def test_a_member_who_takes_work_holds_it_and_is_its_clients_contact(world: World) -> None:
    coop_id = world.found(size=3)
    ana = world.people[0]
    work_id = take(world, coop_id, ana, "client-1")
    project(world)
    at = world.clock().isoformat()
    members = allocation(world, coop_id)["members"]
    assert [m["person_id"] for m in members] == sorted(str(p) for p in world.people[:3])
    assert row(world, coop_id, ana) == {
        "person_id": str(ana),
        "name": "Worker 0",
        "open_work": [{"work_id": str(work_id), "client_ref": "client-1", "since": at}],
        "minutes_by_week": {},
        "minutes_by_month": {},
        "logged_minutes": 0,
        "uninvoiced_minutes": 0,
    }
    assert client_contacts(world.ledger.db, coop_id) == [
        {
            "client_ref": "client-1",
            "contacts": [{"person_id": str(ana), "name": "Worker 0", "since": at}],
            "released_work": [],
        }
    ]


def test_an_unknown_cooperative_has_no_allocation(world: World) -> None:
    project(world)
    assert work_allocation(world.ledger.db, uuid4()) is None


def test_minutes_are_summed_per_iso_week_and_per_month_across_their_boundaries(
    world: World,
) -> None:
    coop_id = world.found(size=2)
    ana = world.people[0]
    work_id = take(world, coop_id, ana, "client-1")
    # Monday 5 January 2026 is in 2026-W02; Wednesday 31 December 2025 already in 2026-W01.
    world.ledger.log_hours(coop_id, work_id, minutes=60, worked_on=date(2025, 12, 31), actor=ana)
    world.ledger.log_hours(coop_id, work_id, minutes=30, actor=ana)
    world.clock.advance(days=6)  # Sunday 11 January: still 2026-W02
    world.ledger.log_hours(coop_id, work_id, minutes=45, actor=ana)
    world.clock.advance(days=1)  # Monday 12 January: 2026-W03
    world.ledger.log_hours(coop_id, work_id, minutes=15, actor=ana)
    project(world)
    ana_row = row(world, coop_id, ana)
    assert ana_row["minutes_by_week"] == {"2026-W01": 60, "2026-W02": 75, "2026-W03": 15}
    assert ana_row["minutes_by_month"] == {"2025-12": 60, "2026-01": 90}
    assert (ana_row["logged_minutes"], ana_row["uninvoiced_minutes"]) == (150, 150)


def test_handed_over_work_moves_to_the_member_who_accepts_it(world: World) -> None:
    coop_id = world.found(size=3)
    ana, ben = world.people[0], world.people[1]
    work_id = take(world, coop_id, ana, "client-1", minutes=60)
    offered_at = world.clock().isoformat()
    world.ledger.hand_over_work(coop_id, work_id, to_member=ben, actor=ana)
    project(world)
    (offer,) = handovers(world.ledger.db, coop_id)
    assert offer["status"] == "offered"
    assert client_contacts(world.ledger.db, coop_id)[0]["contacts"][0]["person_id"] == str(ana)

    accepted_at = world.clock.advance(hours=2).isoformat()
    world.ledger.accept_work(coop_id, work_id, actor=ben)
    project(world)
    assert handovers(world.ledger.db, coop_id) == [
        {
            "work_id": str(work_id),
            "client_ref": "client-1",
            "from_member": str(ana),
            "from_name": "Worker 0",
            "to_member": str(ben),
            "to_name": "Worker 1",
            "offered_at": offered_at,
            "accepted_at": accepted_at,
            "lapsed_at": None,
            "status": "accepted",
        }
    ]
    assert row(world, coop_id, ben)["open_work"] == [
        {"work_id": str(work_id), "client_ref": "client-1", "since": accepted_at}
    ]
    assert row(world, coop_id, ana)["open_work"] == []
    assert row(world, coop_id, ana)["logged_minutes"] == 60, "logged time stays with who logged"
    (contact,) = client_contacts(world.ledger.db, coop_id)[0]["contacts"]
    assert (contact["person_id"], contact["name"]) == (str(ben), "Worker 1")


def test_a_newer_offer_replaces_the_pending_one(world: World) -> None:
    coop_id = world.found(size=3)
    ana, ben, cas = world.people[:3]
    work_id = take(world, coop_id, ana, "client-1")
    world.ledger.hand_over_work(coop_id, work_id, to_member=ben, actor=ana)
    world.ledger.hand_over_work(coop_id, work_id, to_member=cas, actor=ana)
    world.ledger.accept_work(coop_id, work_id, actor=cas)
    project(world)
    offers = handovers(world.ledger.db, coop_id)
    assert [(o["to_name"], o["status"]) for o in offers] == [
        ("Worker 1", "lapsed"),
        ("Worker 2", "accepted"),
    ]


def test_completed_work_is_no_longer_open_but_its_minutes_still_count(world: World) -> None:
    coop_id = world.found(size=2)
    ana, ben = world.people[0], world.people[1]
    work_id = take(world, coop_id, ana, "client-1", minutes=90)
    world.ledger.hand_over_work(coop_id, work_id, to_member=ben, actor=ana)
    world.ledger.complete_work(coop_id, work_id, actor=ana)
    project(world)
    ana_row = row(world, coop_id, ana)
    assert ana_row["open_work"] == []
    assert (ana_row["logged_minutes"], ana_row["uninvoiced_minutes"]) == (90, 90)
    assert client_contacts(world.ledger.db, coop_id) == []
    assert [o["status"] for o in handovers(world.ledger.db, coop_id)] == ["lapsed"]


def test_a_member_who_leaves_releases_their_work_until_another_takes_it(world: World) -> None:
    coop_id = world.found(size=3)
    ana, ben = world.people[0], world.people[1]
    work_id = take(world, coop_id, ana, "client-1", minutes=30)
    world.ledger.hand_over_work(coop_id, work_id, to_member=ben, actor=ana)
    world.ledger.leave(coop_id, actor=ana)
    project(world)
    found = allocation(world, coop_id)
    assert str(ana) not in [m["person_id"] for m in found["members"]]
    assert [(o["name"], o["logged_minutes"]) for o in found["others"]] == [("Worker 0", 30)]
    assert client_contacts(world.ledger.db, coop_id) == [
        {"client_ref": "client-1", "contacts": [], "released_work": [str(work_id)]}
    ]
    assert [o["status"] for o in handovers(world.ledger.db, coop_id)] == ["lapsed"]

    world.ledger.take_work(coop_id, client_ref="client-1", work_id=work_id, actor=ben)
    project(world)
    (client,) = client_contacts(world.ledger.db, coop_id)
    assert [c["person_id"] for c in client["contacts"]] == [str(ben)]
    assert client["released_work"] == []


def test_an_offer_to_a_member_who_leaves_lapses(world: World) -> None:
    coop_id = world.found(size=3)
    ana, ben = world.people[0], world.people[1]
    work_id = take(world, coop_id, ana, "client-1")
    world.ledger.hand_over_work(coop_id, work_id, to_member=ben, actor=ana)
    world.ledger.leave(coop_id, actor=ben)
    project(world)
    assert [o["status"] for o in handovers(world.ledger.db, coop_id)] == ["lapsed"]
    assert row(world, coop_id, ana)["open_work"][0]["work_id"] == str(work_id)


def split_with_billed_and_unbilled_time(world: World) -> tuple[UUID, UUID, UUID]:
    """Noor moves to a child with client-9's work: 60 minutes billed, then 30 more unbilled.

    Ana stays with client-1, and had offered it to Noor before the split.
    """
    coop_id = world.found(size=4)
    ana, noor = world.people[0], world.people[3]
    moved = take(world, coop_id, noor, "client-9", minutes=60)
    world.ledger.issue_invoice(
        coop_id, client_ref="client-9", hourly_rate_cents=4000, actor=world.mentor
    )
    world.ledger.log_hours(coop_id, moved, minutes=30, actor=noor)
    stays = take(world, coop_id, ana, "client-1", minutes=45)
    world.ledger.hand_over_work(coop_id, stays, to_member=noor, actor=ana)
    world.decide(coop_id, "split", split=SplitPlan("De Schoonmakers Noord", (noor,)))
    (child_id,) = world.ledger.get_cooperative(coop_id).children
    project(world)
    return coop_id, child_id, moved


def test_in_a_split_moved_work_and_its_unbilled_minutes_follow_the_member(world: World) -> None:
    coop_id, child_id, moved = split_with_billed_and_unbilled_time(world)
    ana, noor = world.people[0], world.people[3]
    parent = allocation(world, coop_id)
    assert [m["person_id"] for m in parent["members"]] == sorted(str(p) for p in world.people[:3])
    noor_in_parent = row(world, coop_id, noor)
    assert noor_in_parent["open_work"] == []
    assert (noor_in_parent["logged_minutes"], noor_in_parent["uninvoiced_minutes"]) == (60, 0)
    assert [c["client_ref"] for c in client_contacts(world.ledger.db, coop_id)] == ["client-1"]
    assert row(world, coop_id, ana)["open_work"][0]["client_ref"] == "client-1"
    assert [o["status"] for o in handovers(world.ledger.db, coop_id)] == ["lapsed"]

    child = allocation(world, child_id)
    (noor_in_child,) = child["members"]
    assert [w["work_id"] for w in noor_in_child["open_work"]] == [str(moved)]
    assert (noor_in_child["logged_minutes"], noor_in_child["uninvoiced_minutes"]) == (30, 30)
    (client,) = client_contacts(world.ledger.db, child_id)
    assert (client["client_ref"], client["contacts"][0]["name"]) == ("client-9", "Worker 3")


def test_the_projection_agrees_with_the_cooperatives_own_state(world: World) -> None:
    coop_id, child_id, _ = split_with_billed_and_unbilled_time(world)
    world.ledger.credit_invoice(coop_id, 1, actor=world.mentor)
    project(world)
    for cid in (coop_id, child_id):
        coop = world.ledger.get_cooperative(cid)
        rows = {r["person_id"]: r for r in allocation(world, cid)["members"]}
        rows |= {r["person_id"]: r for r in allocation(world, cid)["others"]}
        for person, r in rows.items():
            hours = [e for e in coop.hours.values() if str(e.member_id) == person]
            assert r["logged_minutes"] == sum(e.minutes for e in hours)
            assert r["uninvoiced_minutes"] == sum(e.minutes for e in hours if not e.invoice_number)
            assert {w["work_id"] for w in r["open_work"]} == {
                str(w.id) for w in coop.open_work_of(UUID(person))
            }
    assert_live_equals_fresh_rebuild(world.ledger, [WorkAllocation()])


def test_invoicing_lowers_the_uninvoiced_minutes_and_a_credit_note_raises_them(
    world: World,
) -> None:
    coop_id = world.found(size=2)
    ana, ben = world.people[0], world.people[1]
    take(world, coop_id, ana, "client-1", minutes=120)
    take(world, coop_id, ben, "client-2", minutes=60)

    def uninvoiced() -> tuple[int, int]:
        project(world)
        return (
            row(world, coop_id, ana)["uninvoiced_minutes"],
            row(world, coop_id, ben)["uninvoiced_minutes"],
        )

    assert uninvoiced() == (120, 60)
    number = world.ledger.issue_invoice(
        coop_id, client_ref="client-1", hourly_rate_cents=4000, actor=world.mentor
    ).value
    assert uninvoiced() == (0, 60)
    world.ledger.credit_invoice(coop_id, number, actor=world.mentor)
    assert uninvoiced() == (120, 60)
    world.ledger.issue_invoice(
        coop_id, client_ref="client-1", hourly_rate_cents=3500, actor=world.mentor
    )
    assert uninvoiced() == (0, 60)
    assert row(world, coop_id, ana)["logged_minutes"] == 120


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        ([60, 60, 60, 60], 1.0),
        ([120, 60, 60, 0], 0.5),
        ([180, 60, 0], 0.25),
        ([240, 0, 0, 0], 0.0),
    ],
    ids=["even", "uneven", "more-uneven", "one-does-all"],
)
def test_evenness_is_one_minus_the_scaled_gini_of_minutes_per_current_member(
    world: World, minutes: list[int], expected: float
) -> None:
    coop_id = world.found(size=len(minutes))
    for member, logged in zip(world.people, minutes, strict=False):
        if logged:
            take(world, coop_id, member, f"client-{member}", minutes=logged)
    project(world)
    assert evenness(world.ledger.db, coop_id) == {
        "cooperative_id": str(coop_id),
        "evenness": expected,
        "members": len(minutes),
        "logged_minutes": sum(minutes),
    }


def test_evenness_is_undefined_before_any_time_is_logged_and_ignores_former_members(
    world: World,
) -> None:
    coop_id = world.found(size=3)
    project(world)
    assert evenness(world.ledger.db, coop_id)["evenness"] is None
    for member in world.people[:2]:
        take(world, coop_id, member, "client-1", minutes=60)
    take(world, coop_id, world.people[2], "client-2", minutes=600)
    world.ledger.leave(coop_id, actor=world.people[2])
    project(world)
    assert evenness(world.ledger.db, coop_id)["evenness"] == 1.0


def test_erasing_a_person_removes_their_name_from_every_work_query(world: World) -> None:
    coop_id = world.found(size=3)
    ana, ben = world.people[0], world.people[1]
    handed = take(world, coop_id, ana, "client-1", minutes=30)
    world.ledger.hand_over_work(coop_id, handed, to_member=ben, actor=ana)
    world.ledger.accept_work(coop_id, handed, actor=ben)
    take(world, coop_id, ana, "client-2", minutes=15)
    world.ledger.leave(coop_id, actor=ana)  # so Ana is also among the others
    world.ledger.take_work(coop_id, client_ref="client-3", actor=ben)
    project(world)

    def everything() -> str:
        db = world.ledger.db
        return json.dumps(
            [
                work_allocation(db, coop_id),
                client_contacts(db, coop_id),
                handovers(db, coop_id),
                evenness(db, coop_id),
            ]
        )

    assert "Worker 0" in everything()
    world.ledger.erase_person(ana)
    after = everything()
    assert "Worker 0" not in after
    assert str(ana) in after, "the pseudonymous id stays"
    assert "Worker 1" in after
