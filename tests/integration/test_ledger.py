"""The Ledger on SQLite and on PostgreSQL: every test runs on both stores."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import OperationalError, StoredEvent

from ledger import Cooperative, FoundingMember, SplitPlan
from ledger.chain import chain_links
from ledger.errors import (
    CooperativeFull,
    CooperativeNotFound,
    NotAMember,
    PersonNotFound,
    StaleVersion,
)
from ledger.verify import verify
from tests.integration.support import MakeLedger, World


def state(coop: Aggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(coop).items() if k != "_pending_events"}


def replayed(world: World, coop_id: UUID) -> Cooperative:
    """The cooperative rebuilt from every stored event, ignoring snapshots."""
    coop: Cooperative | None = None
    for event in world.ledger.events.get(coop_id):
        coop = event.mutate(coop)  # type: ignore[attr-defined]
    assert coop is not None
    return coop


def stored_event_count(world: World) -> int:
    return world.ledger.recorder.max_notification_id() or 0


def test_a_founded_cooperative_reloads_with_its_members_and_mentor(world: World) -> None:
    coop_id = world.found(size=5)
    coop = world.ledger.get_cooperative(coop_id)
    assert set(coop.members) == set(world.people[:5])
    assert coop.mentor_id == world.mentor
    assert coop.members[world.people[0]].conversation_group == "group 1"


def test_a_member_admitted_by_decision_is_saved_with_the_adoption(world: World) -> None:
    coop_id = world.found(size=3)
    decision = world.decide(coop_id, "admit_member", subject=world.people[10])
    coop = world.ledger.get_cooperative(coop_id)
    assert coop.members[world.people[10]].decision_id == decision
    names = [type(e).__name__ for e in world.ledger.events.get(coop_id)]
    assert names[-2:] == ["ProposalAdopted", "MemberAdmitted"]


def test_every_command_returns_the_new_version_and_the_position_of_its_last_event(
    world: World,
) -> None:
    coop_id = world.found(size=3)
    result = world.ledger.take_work(coop_id, client_ref="client-7", actor=world.people[0])
    assert result.version == 2
    assert result.position == stored_event_count(world)
    assert [e.name for e in result.events] == ["WorkTaken"]


def test_a_refused_command_stores_nothing(world: World) -> None:
    coop_id = world.found(size=20)
    before = stored_event_count(world)
    with pytest.raises(CooperativeFull):
        world.ledger.admit_founding_member(coop_id, world.people[25], actor=world.mentor)
    with pytest.raises(NotAMember):
        world.ledger.take_work(coop_id, client_ref="c", actor=world.people[25])
    assert stored_event_count(world) == before
    assert world.ledger.get_cooperative(coop_id).version == 1


def test_unknown_people_and_cooperatives_are_refused_by_name(world: World) -> None:
    with pytest.raises(PersonNotFound) as refused:
        world.ledger.found_cooperative(
            name="X",
            sector="cleaning",
            members=[FoundingMember(uuid4())],
            mentor_id=world.mentor,
            actor=world.facilitator,
        )
    assert refused.value.field == "members"
    with pytest.raises(CooperativeNotFound):
        world.ledger.get_cooperative(uuid4())
    assert stored_event_count(world) == 0


def test_converting_200_employees_founds_10_cooperatives_of_20_in_one_write(
    make_ledger: MakeLedger,
) -> None:
    ledger = make_ledger()
    facilitator = ledger.register_person("Fatima").id
    mentor = ledger.register_person("Mo").id
    employees = [ledger.register_person(f"Employee {n}").id for n in range(200)]
    results = ledger.convert_company(
        company="Schoon BV",
        sector="cleaning",
        employees=employees,
        mentor_id=mentor,
        actor=facilitator,
    )
    coops = [ledger.get_cooperative(r.cooperative_id) for r in results]
    assert [len(c.members) for c in coops] == [20] * 10
    assert set().union(*(c.members for c in coops)) == set(employees)
    assert len({c.conversion_id for c in coops}) == 1
    assert {r.position for r in results} == set(range(1, 11))
    # Groups of about six inside each: 20 members make groups of 5.
    groups = {m.conversation_group for m in coops[0].members.values()}
    assert groups == {"group 1", "group 2", "group 3", "group 4"}


def test_converting_45_employees_balances_three_cooperatives(make_ledger: MakeLedger) -> None:
    ledger = make_ledger()
    mentor = ledger.register_person("Mo").id
    employees = [ledger.register_person(f"E{n}").id for n in range(45)]
    results = ledger.convert_company(
        company="Zorg", sector="youth care", employees=employees, mentor_id=mentor, actor=mentor
    )
    sizes = [len(ledger.get_cooperative(r.cooperative_id).members) for r in results]
    assert sizes == [15, 15, 15]


def test_a_conversion_with_one_unknown_employee_founds_nothing(make_ledger: MakeLedger) -> None:
    ledger = make_ledger()
    mentor = ledger.register_person("Mo").id
    employees = [ledger.register_person(f"E{n}").id for n in range(30)] + [uuid4()]
    with pytest.raises(PersonNotFound):
        ledger.convert_company(
            company="Zorg", sector="care", employees=employees, mentor_id=mentor, actor=mentor
        )
    assert (ledger.recorder.max_notification_id() or 0) == 0


def test_a_split_saves_parent_and_child_together_naming_each_other(world: World) -> None:
    coop_id = world.found(size=6)
    mover = world.people[5]
    work_id = world.ledger.take_work(coop_id, client_ref="client-1", actor=mover).value
    world.ledger.log_hours(coop_id, work_id, minutes=120, actor=mover)
    decision = world.decide(coop_id, "split", split=SplitPlan("De Schoonmakers Noord", (mover,)))
    parent = world.ledger.get_cooperative(coop_id)
    (child_id,) = parent.children
    child = world.ledger.get_cooperative(child_id)
    assert child.parent_id == coop_id
    assert set(child.members) == {mover}
    assert child.members[mover].decision_id == decision
    assert work_id in child.work
    assert sum(e.minutes for e in child.hours.values()) == 120
    assert mover not in parent.members
    split_event = list(world.ledger.events.get(coop_id))[-1]
    child_founding = next(iter(world.ledger.events.get(child_id)))
    assert type(split_event).__name__ == "Split"
    assert type(child_founding).__name__ == "SplitOff"
    assert split_event.timestamp == child_founding.timestamp


def snapshot_versions(world: World, coop_id: UUID) -> list[int]:
    store = world.ledger.snapshots
    assert store is not None
    return [s.originator_version for s in store.get(coop_id)]


def test_a_load_that_replays_an_interval_of_events_snapshots_and_equals_a_full_replay(
    world: World,
) -> None:
    coop_id = world.found(size=4)
    work_id = world.ledger.take_work(coop_id, client_ref="c-1", actor=world.people[0]).value
    for _ in range(35):
        world.ledger.log_hours(coop_id, work_id, minutes=30, actor=world.people[0])
    assert snapshot_versions(world, coop_id) == [], "commands on a cached copy snapshot rarely"

    loaded = world.ledger.get_cooperative(coop_id)  # replays 37 events: 10 or more

    assert snapshot_versions(world, coop_id) == [loaded.version]
    again = world.ledger.get_cooperative(coop_id)  # from that snapshot
    assert state(again) == state(loaded) == state(replayed(world, coop_id))
    world.ledger.log_hours(coop_id, work_id, minutes=30, actor=world.people[0])
    world.ledger.get_cooperative(coop_id)  # one event after the snapshot: none new
    assert snapshot_versions(world, coop_id) == [loaded.version]


def test_saves_alone_snapshot_every_eighth_interval(world: World) -> None:
    """So that a load never replays more than that, however long nobody loaded."""
    coop_id = world.found(size=4)
    work_id = world.ledger.take_work(coop_id, client_ref="c-1", actor=world.people[0]).value
    for _ in range(85):
        world.ledger.log_hours(coop_id, work_id, minutes=30, actor=world.people[0])

    assert snapshot_versions(world, coop_id) == [80]  # interval 10 in these tests


def test_an_old_version_1_hours_event_is_upcast_to_minutes_when_loaded(world: World) -> None:
    coop_id = world.found(size=2)
    member = world.people[0]
    work_id = world.ledger.take_work(coop_id, client_ref="c-1", actor=member).value
    entry_id = uuid4()
    # A version 1 record, as the first release stored it: whole hours, no class_version.
    v1_state = {
        "timestamp": world.clock(),
        "actor": member,
        "reason": None,
        "work_id": work_id,
        "entry_id": entry_id,
        "hours": 3,
        "worked_on": date(2026, 1, 5),
    }
    record = StoredEvent(
        originator_id=coop_id,
        originator_version=3,
        topic="ledger.cooperative:Cooperative.HoursLogged",
        state=world.ledger.mapper.transcoder.encode(v1_state),
    )
    links = chain_links([record], {coop_id: world.ledger.chain_head(coop_id, 2)}, {})
    world.ledger.recorder.insert_events([record], chain_links=links)
    coop = world.ledger.get_cooperative(coop_id)
    assert coop.hours[entry_id].minutes == 180
    invoice = world.ledger.issue_invoice(
        coop_id, client_ref="c-1", hourly_rate_cents=4000, actor=world.mentor
    )
    assert world.ledger.get_cooperative(coop_id).invoices[invoice.value].amount_cents == 12000


def test_an_if_match_with_a_stale_version_is_refused(world: World) -> None:
    coop_id = world.found(size=2)
    with pytest.raises(StaleVersion):
        world.ledger.take_work(coop_id, client_ref="c", actor=world.people[0], expected_version=7)
    result = world.ledger.take_work(
        coop_id, client_ref="c", actor=world.people[0], expected_version=1
    )
    assert result.version == 2


def test_concurrent_commands_on_one_cooperative_all_succeed_by_retrying(
    world: World, make_ledger: MakeLedger
) -> None:
    coop_id = world.found(size=8)
    writers = [make_ledger(clock=world.clock) for _ in range(4)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        ledger = writers[n % len(writers)]
        member = world.people[n]
        try:
            work_id = ledger.take_work(coop_id, client_ref=f"c-{n}", actor=member).value
            for _ in range(5):
                ledger.log_hours(coop_id, work_id, minutes=15, actor=member)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    coop = world.ledger.get_cooperative(coop_id)
    assert coop.version == 1 + 8 * 6
    assert len(coop.hours) == 40
    versions = [e.originator_version for e in world.ledger.events.get(coop_id)]
    assert versions == list(range(1, coop.version + 1))


def test_erasing_a_person_keeps_their_id_in_the_history(world: World) -> None:
    coop_id = world.found(size=3)
    person = world.people[0]
    world.ledger.erase_person(person)
    erased = world.ledger.people.get(person)
    assert erased.erased
    assert "Worker" not in erased.name
    assert person in world.ledger.get_cooperative(coop_id).members


def test_a_second_process_acts_on_what_the_first_wrote_despite_its_cache(
    world: World, make_ledger: MakeLedger
) -> None:
    """Two Ledgers stand for two processes: each caches, neither may act on a stale copy."""
    coop_id = world.found(size=3)
    other = make_ledger(clock=world.clock)
    other.take_work(coop_id, client_ref="c-0", actor=world.people[0])  # other caches v2
    world.ledger.admit_founding_member(coop_id, world.people[9], actor=world.mentor)  # v3
    # Not refused as "not a member" by other's stale copy, nor as a stale If-Match.
    result = other.take_work(coop_id, client_ref="c-9", actor=world.people[9], expected_version=3)
    assert result.version == 4
    world.ledger.leave(coop_id, actor=world.people[9])  # v5, behind other's back
    with pytest.raises(NotAMember):
        other.take_work(coop_id, client_ref="c-9", actor=world.people[9])


def test_a_contended_cooperatives_cached_copy_catches_up_and_chains_on_from_the_store(
    world: World, make_ledger: MakeLedger
) -> None:
    """While a cooperative is contended, commands bring their cached copy up to date (and
    their chain head with it) instead of failing on a stale version and reloading."""
    coop_id = world.found(size=3)
    other = make_ledger(clock=world.clock)
    work_id = other.take_work(coop_id, client_ref="c-0", actor=world.people[0]).value  # cached
    for _ in range(3):  # written behind other's back
        world.ledger.log_hours(coop_id, work_id, minutes=10, actor=world.people[0])
    saves: list[int] = []
    save = other._save

    def counted(*objs: Any, **kwargs: Any) -> Any:
        saves.append(1)
        return save(*objs, **kwargs)

    other._save = counted  # type: ignore[method-assign]
    other._contended[coop_id] = float("inf")
    result = other.log_hours(coop_id, work_id, minutes=20, actor=world.people[0])
    assert result.version == 6
    assert len(saves) == (1 if world.ledger.config.kind == "postgresql" else 2)
    assert result.receipt.chain_head == world.ledger.receipt(coop_id, 6).chain_head
    report = verify(world.ledger, coop_id, [result.receipt])
    assert report.breaks == []
    assert report.receipt_failures == []


def test_a_command_or_load_whose_snapshot_cannot_be_written_still_succeeds_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its events are recorded: failing it now would have its caller run it a second time."""
    coop_id = world.found(size=3)
    member = world.people[0]
    snapshots = world.ledger.snapshots
    assert snapshots is not None

    def store_gone(*_: Any, **__: Any) -> None:
        raise OperationalError("the snapshot store went away")

    monkeypatch.setattr(snapshots, "put", store_gone)
    versions = [
        world.ledger.take_work(coop_id, client_ref=f"c{n}", actor=member).version
        for n in range(82)  # past a save's snapshot (every 80 events here)
    ]

    assert versions == list(range(versions[0], versions[0] + 82))
    assert world.ledger.get_cooperative(coop_id).version == versions[-1]  # a load's, too
    assert len(world.ledger.get_cooperative(coop_id).work) == 82
