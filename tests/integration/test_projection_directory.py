"""The directory projection on both stores: events in through the real Ledger, rows out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger import FoundingMember, SplitPlan
from ledger.errors import InvalidInput
from ledger.storage import Database
from projections.directory import (
    Directory,
    conversion,
    cooperative_summary,
    directory,
    family_tree,
)
from projections.framework import iso
from projections.runner import ProjectionRunner
from tests.integration.projection_support import assert_live_equals_fresh_rebuild
from tests.integration.support import World


def caught_up(world: World, batch_size: int = 500) -> Database:
    """The directory brought up to the ledger's last event; the database to query."""
    ProjectionRunner(world.ledger, [Directory()], batch_size=batch_size).catch_up()
    return world.ledger.db


def now(world: World) -> str | None:
    return iso(world.clock.now)


def found(world: World, name: str, sector: str, members: Sequence[UUID]) -> UUID:
    return world.ledger.found_cooperative(
        name=name,
        sector=sector,
        members=[FoundingMember(p, "group 1") for p in members],
        mentor_id=world.mentor,
        actor=world.facilitator,
    ).cooperative_id


def convert(world: World, company: str, employees: int) -> list[UUID]:
    """A company's employees, registered now, re-housed in cooperatives; their ids."""
    staff = [world.ledger.register_person(f"{company} {n}").id for n in range(employees)]
    results = world.ledger.convert_company(
        company=company,
        sector="youth care",
        employees=staff,
        mentor_id=world.mentor,
        actor=world.facilitator,
    )
    return [r.cooperative_id for r in results]


def split(world: World, coop_id: UUID, name: str, movers: Sequence[UUID]) -> tuple[UUID, UUID]:
    """Split by an adopted decision; the new cooperative's id and the decision's."""
    decision = world.decide(coop_id, "split", split=SplitPlan(name, tuple(movers)))
    return world.ledger.get_cooperative(coop_id).children[-1], decision


def listed(db: Database, **query: Any) -> list[dict[str, Any]]:
    cooperatives: list[dict[str, Any]] = directory(db, **query)["cooperatives"]
    return cooperatives


def counts(db: Database) -> dict[str, tuple[int, str]]:
    return {c["id"]: (c["member_count"], c["status"]) for c in listed(db, limit=500)}


def test_a_founded_cooperative_is_listed_as_active_with_its_members_and_founding_time(
    world: World,
) -> None:
    coop_id = world.found(size=5)
    db = caught_up(world)
    row = {
        "id": str(coop_id),
        "name": "De Schoonmakers",
        "sector": "cleaning",
        "member_count": 5,
        "status": "active",
        "founded_at": "2026-01-05T09:00:00+00:00",
        "conversion_id": None,
        "parent_id": None,
        "split_decision_id": None,
    }
    assert directory(db) == {"cooperatives": [row], "next": None}
    assert cooperative_summary(db, coop_id) == {**row, "parent": None, "children": []}


def test_converting_45_employees_lists_three_cooperatives_of_15_under_one_conversion(
    world: World,
) -> None:
    world.found(size=3)
    world.clock.advance(days=1)
    coop_ids = convert(world, "Zorg", 45)
    conversion_id = world.ledger.get_cooperative(coop_ids[0]).conversion_id
    assert conversion_id is not None
    db = caught_up(world)
    expected = [
        {
            "id": str(coop_id),
            "name": f"Zorg {n}",
            "sector": "youth care",
            "member_count": 15,
            "status": "active",
            "founded_at": now(world),
            "conversion_id": str(conversion_id),
            "parent_id": None,
            "split_decision_id": None,
        }
        for n, coop_id in enumerate(coop_ids, start=1)
    ]
    assert conversion(db, conversion_id) == {
        "conversion_id": str(conversion_id),
        "founded_at": now(world),
        "member_count": 45,
        "cooperatives": expected,
    }
    converted = [c for c in listed(db) if c["conversion_id"] == str(conversion_id)]
    assert sorted(converted, key=lambda c: str(c["name"])) == expected


def node(
    coop_id: UUID, name: str, founded_at: str | None, decision: UUID | None, *children: Any
) -> Any:
    return {
        "id": str(coop_id),
        "name": name,
        "founded_at": founded_at,
        "split_decision_id": None if decision is None else str(decision),
        "children": list(children),
    }


def test_a_split_of_a_split_shows_the_same_three_level_tree_from_every_cooperative_in_it(
    world: World,
) -> None:
    root = found(world, "De Schoonmakers", "cleaning", world.people[:8])
    root_founded = now(world)
    world.clock.advance(days=1)
    north, north_decision = split(world, root, "Noord", world.people[5:8])
    north_founded = now(world)
    world.clock.advance(days=1)
    north_east, north_east_decision = split(world, north, "Noord-Oost", world.people[7:8])
    north_east_founded = now(world)
    world.clock.advance(days=1)
    south, south_decision = split(world, root, "Zuid", world.people[4:5])
    south_founded = now(world)
    unrelated = found(world, "De Glazenwassers", "cleaning", world.people[20:23])
    db = caught_up(world)

    tree = node(
        root,
        "De Schoonmakers",
        root_founded,
        None,
        node(
            north,
            "Noord",
            north_founded,
            north_decision,
            node(north_east, "Noord-Oost", north_east_founded, north_east_decision),
        ),
        node(south, "Zuid", south_founded, south_decision),
    )
    for member_of_the_family in (root, north, north_east, south):
        assert family_tree(db, member_of_the_family) == tree
    assert family_tree(db, unrelated) == node(unrelated, "De Glazenwassers", now(world), None)


def test_a_summary_names_the_parent_and_the_children_with_their_split_decisions(
    world: World,
) -> None:
    root = world.found(size=6)
    world.clock.advance(days=2)
    child, decision = split(world, root, "Noord", world.people[4:6])
    db = caught_up(world)
    summary = cooperative_summary(db, root)
    assert summary is not None
    assert summary["children"] == [
        {
            "id": str(child),
            "name": "Noord",
            "founded_at": now(world),
            "split_decision_id": str(decision),
        }
    ]
    child_summary = cooperative_summary(db, child)
    assert child_summary is not None
    assert child_summary["parent"] == {"id": str(root), "name": "De Schoonmakers"}
    assert child_summary["parent_id"] == str(root)
    assert child_summary["split_decision_id"] == str(decision)
    assert child_summary["founded_at"] == now(world)
    assert (child_summary["sector"], child_summary["member_count"]) == ("cleaning", 2)


def test_member_counts_follow_admissions_leaves_and_splits(world: World) -> None:
    coop_id = world.found(size=5)
    world.decide(coop_id, "admit_member", subject=world.people[10])
    world.ledger.admit_founding_member(coop_id, world.people[11], actor=world.mentor)
    assert counts(caught_up(world)) == {str(coop_id): (7, "active")}
    world.ledger.leave(coop_id, actor=world.people[0])
    child, _ = split(world, coop_id, "Noord", world.people[1:3])
    assert counts(caught_up(world)) == {str(coop_id): (4, "active"), str(child): (2, "active")}
    world.ledger.leave(child, actor=world.people[1])
    assert counts(caught_up(world)) == {str(coop_id): (4, "active"), str(child): (1, "active")}


def test_a_cooperative_whose_last_member_left_is_dormant_until_someone_joins(world: World) -> None:
    coop_id = world.found(size=2)
    world.ledger.leave(coop_id, actor=world.people[0])
    world.ledger.leave(coop_id, actor=world.people[1])
    assert counts(caught_up(world)) == {str(coop_id): (0, "dormant")}
    world.ledger.admit_founding_member(coop_id, world.people[5], actor=world.mentor)
    assert counts(caught_up(world)) == {str(coop_id): (1, "active")}


def test_the_directory_lists_only_the_sector_asked_for(world: World) -> None:
    cleaning = found(world, "De Schoonmakers", "cleaning", world.people[:4])
    care = found(world, "Jeugdzorg Oost", "youth care", world.people[4:8])
    db = caught_up(world)
    assert [c["id"] for c in listed(db, sector="youth care")] == [str(care)]
    assert [c["id"] for c in listed(db, sector="cleaning")] == [str(cleaning)]
    assert directory(db, sector="bakery") == {"cooperatives": [], "next": None}


def test_paging_by_founding_time_then_id_lists_every_cooperative_exactly_once(
    world: World,
) -> None:
    # Three cooperatives founded in one instant: page boundaries fall between equal times.
    convert(world, "Zorg", 45)
    for n in range(3):
        world.clock.advance(hours=1)
        found(world, f"Schoon {n}", "cleaning", world.people[n * 5 : n * 5 + 5])
    db = caught_up(world)
    everything = listed(db, limit=500)
    assert [(c["founded_at"], c["id"]) for c in everything] == sorted(
        (c["founded_at"], c["id"]) for c in everything
    )

    def pages(**query: Any) -> list[list[str]]:
        seen, after = [], None
        while True:
            page = directory(db, after=after, limit=2, **query)
            seen.append([c["id"] for c in page["cooperatives"]])
            if (after := page["next"]) is None:
                return seen

    all_pages = pages()
    assert [len(p) for p in all_pages] == [2, 2, 2]
    assert [i for page in all_pages for i in page] == [c["id"] for c in everything]
    care_pages = pages(sector="youth care")
    assert [len(p) for p in care_pages] == [2, 1]
    assert [i for page in care_pages for i in page] == [
        c["id"] for c in everything if c["sector"] == "youth care"
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"after": "not a cursor"}, "cursor"),
        ({"after": "bm90fGFuIGlk"}, "cursor"),  # "not|an id", well encoded
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
    ],
)
def test_a_malformed_cursor_or_limit_is_refused_by_name(
    world: World, query: dict[str, Any], field: str
) -> None:
    db = caught_up(world)
    with pytest.raises(InvalidInput) as refused:
        directory(db, **query)
    assert refused.value.field == field


def test_an_unknown_id_has_no_summary_tree_or_conversion(world: World) -> None:
    world.found(size=2)
    db = caught_up(world)
    assert cooperative_summary(db, uuid4()) is None
    assert family_tree(db, uuid4()) is None
    assert conversion(db, uuid4()) is None


def test_caught_up_one_event_at_a_time_the_directory_agrees_with_every_cooperative_and_a_rebuild(
    world: World,
) -> None:
    # Batches of one put a split's two sides (Split, SplitOff) in separate transactions.
    root = world.found(size=8)
    child, _ = split(world, root, "Noord", world.people[5:8])
    grandchild, _ = split(world, child, "Noord-Oost", world.people[7:8])
    world.ledger.leave(root, actor=world.people[0])
    converted = convert(world, "Zorg", 21)
    db = caught_up(world, batch_size=1)
    for coop_id in (root, child, grandchild, *converted):
        coop = world.ledger.get_cooperative(coop_id)
        summary = cooperative_summary(db, coop_id)
        assert summary is not None
        assert summary["member_count"] == len(coop.members)
        assert summary["parent_id"] == (None if coop.parent_id is None else str(coop.parent_id))
        assert [c["id"] for c in summary["children"]] == [str(c) for c in coop.children]
        assert summary["conversion_id"] == (
            None if coop.conversion_id is None else str(coop.conversion_id)
        )
    assert_live_equals_fresh_rebuild(world.ledger, [Directory()])
