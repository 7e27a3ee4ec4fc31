"""Time travel equals the state the live system had at that moment, on either store.

A hypothesis-driven history (the random command machine of the rules test) records,
after every step, each changed cooperative's live state (reloaded from storage:
snapshot plus tail) with its version, time and the ledger's head. Afterwards the state
as of each recorded version, position (the cooperative's own and the head then) and
time (exact, and half a second later) must equal what was recorded, and the diff
between consecutive points must account for every difference between them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from ledger import SplitPlan
from ledger.errors import CooperativeNotFound, InvalidInput
from ledger.history import CooperativeState, Moment, describe, diff, settled, state_as_of
from ledger.history_cli import add_parser
from tests.integration.support import Clock, MakeLedger, World
from tests.integration.test_rules_hold_under_random_commands import CooperativeMachine

HALF_SECOND = timedelta(milliseconds=500)


@dataclass(frozen=True)
class Recorded:
    coop_id: UUID
    version: int
    timestamp: datetime
    head: int
    state: CooperativeState


class TimeTravelMachine(CooperativeMachine):
    world: World
    checked: list[int]

    def __init__(self) -> None:
        super().__init__()
        self.points: list[Recorded] = []
        self.first = (self.ledger.recorder.max_notification_id() or 0) + 1

    # The rules test's own checks (replays, projections) are not this test's subject.
    def projections_follow_live(self) -> None:
        pass

    def every_rule_holds_and_storage_agrees(self) -> None:
        pass

    @invariant()
    def record_then_tick(self) -> None:
        head = self.ledger.recorder.max_notification_id() or 0
        for coop_id in self.coop_ids:
            coop = self.ledger.get_cooperative(coop_id)
            seen = [p for p in self.points if p.coop_id == coop_id]
            if not seen or seen[-1].version != coop.version:
                past = settled(self.ledger, coop_id, coop.version)
                self.points.append(
                    Recorded(coop_id, coop.version, coop.modified_on, head, describe(coop, past))
                )
        # The next step's events are a second later: every recorded time names one version.
        self.world.clock.advance(seconds=1)

    def teardown(self) -> None:
        ledger = self.ledger
        notes = ledger.recorder.select_notifications(start=self.first, limit=10**7)
        where = {(UUID(str(n.originator_id)), n.originator_version): n.id for n in notes}
        previous: dict[UUID, Recorded] = {}
        for point in self.points:
            stamp = point.timestamp.isoformat()
            position = where[point.coop_id, point.version]
            as_of = {"version": point.version, "position": position, "timestamp": stamp}
            expected = {"as_of": as_of | {"moment": stamp}, **point.state}
            assert state_as_of(ledger, point.coop_id, version=point.version) == expected
            assert state_as_of(ledger, point.coop_id, position=position) == expected
            assert state_as_of(ledger, point.coop_id, position=point.head) == expected
            assert state_as_of(ledger, point.coop_id, at=point.timestamp) == expected
            later = state_as_of(ledger, point.coop_id, at=point.timestamp + HALF_SECOND)
            assert later.pop("as_of") | {"moment": stamp} == expected.pop("as_of")
            assert later == expected
            if point.coop_id in previous:
                check_diff(diff_between(ledger, previous[point.coop_id], point), where)
                self.checked[0] += 1
            previous[point.coop_id] = point


def diff_between(ledger: Any, before: Recorded, after: Recorded) -> dict[str, Any]:
    changes = diff(ledger, after.coop_id, Moment(version=before.version), f"v{after.version}")
    return {"before": before.state, "after": after.state, **changes}


def check_diff(d: dict[str, Any], where: dict[tuple[UUID, int], int]) -> None:
    """The diff accounts for every difference between the two states, citing its events."""
    before, after = d["before"], d["after"]
    coop_id = UUID(d["cooperative_id"])
    low, high = d["from"]["version"], d["to"]["version"]
    causes = [e for e in _walk(d) if isinstance(e, dict) and "event" in e and "position" in e]
    for cause in causes:
        assert low < cause["version"] <= high
        assert cause["position"] == where[coop_id, cause["version"]]
    # Members: the joins and leaves, in the order they happened, turn one roster into the other.
    members = {m["person_id"] for m in before["members"]}
    moves = [(r["events"][-1]["position"], True, r) for r in d["members"]["joined"]]
    moves += [(r["events"][-1]["position"], False, r) for r in d["members"]["left"]]
    for _, joined, record in sorted(moves, key=lambda m: m[0]):
        (members.add if joined else members.discard)(record["person_id"])
    assert members == {m["person_id"] for m in after["members"]}
    # Invoices issued, proposals raised and decided: exactly the new ones.
    numbers = {i["number"] for i in after["invoices"]} - {i["number"] for i in before["invoices"]}
    assert {i["number"] for i in d["invoices"]["issued"]} == numbers
    decided = {p["id"] for p in after["decisions"]} - {p["id"] for p in before["decisions"]}
    assert {p["proposal_id"] for p in d["decisions"]} == decided
    known = [*before["open_proposals"], *before["decisions"]]
    proposals = {p["id"] for p in [*after["open_proposals"], *after["decisions"]]}
    assert {p["proposal_id"] for p in d["proposals_raised"]} == proposals - {p["id"] for p in known}
    # The coordinator: a change of hands shows as a role started or ended.
    if before["coordinator_id"] != after["coordinator_id"]:
        started = [r for r in d["roles"]["started"] if r["role"] == "coordinator"]
        if after["coordinator_id"] is None:
            assert any(r["role"] == "coordinator" for r in d["roles"]["ended"])
        else:
            assert started[-1]["person_id"] == after["coordinator_id"]
    # Work: whoever the last move handed a piece of open work to holds it now.
    for work in after["open_work"]:
        moves_of = [w for w in d["work"] if w["work_id"] == work["id"]]
        moves_of = [w for w in moves_of if w["change"] != "handover_offered"]
        if moves_of:
            assert moves_of[-1]["to"] == work["holder"]
        else:
            held = {(w["id"], w["holder"]) for w in before["open_work"]}
            assert (work["id"], work["holder"]) in held


def _walk(value: Any) -> Iterator[Any]:
    yield value
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        for child in children:
            yield from _walk(child)


def test_time_travel_equals_the_live_state_at_every_recorded_moment(
    make_ledger: MakeLedger,
) -> None:
    clock = Clock()
    world = World.create(make_ledger(clock=clock, snapshot_interval=7), clock)

    class Machine(TimeTravelMachine):
        pass

    Machine.world = world
    Machine.checked = [0]
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=12,
            stateful_step_count=50,
            deadline=None,
            derandomize=not os.environ.get("COOP_LEDGER_EXPLORE"),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert Machine.checked[0] > 50, Machine.checked
    print(f"diffs checked: {Machine.checked[0]}")


# ---- disputes, one at a time ------------------------------------------------------------


def names(state: CooperativeState) -> set[str]:
    return {m["person_id"] for m in state["members"]}


def ids(people: list[UUID]) -> set[str]:
    return {str(p) for p in people}


def test_who_was_a_member_on_the_day_of_the_split(world: World) -> None:
    ledger, people, clock = world.ledger, world.people, world.clock
    coop = world.found(6)
    movers = tuple(people[4:6])
    clock.advance(days=20)
    proposal = ledger.raise_proposal(
        coop, kind="split", text="Noord", actor=people[0], split=SplitPlan("Noord", movers)
    ).value
    for voter in people[:6]:
        ledger.vote(coop, proposal, "for", actor=voter)
    split_at = clock.advance(hours=3)
    closed = ledger.close_proposal(coop, proposal, actor=people[0])
    child = closed.value
    clock.advance(days=2)
    ledger.leave(coop, actor=people[0])
    ledger.admit_founding_member(coop, people[10], actor=world.mentor)

    morning = state_as_of(ledger, coop, at=split_at - timedelta(hours=1))
    evening = state_as_of(ledger, coop, at=split_at + timedelta(hours=8))
    assert names(morning) == ids(people[:6])
    assert [p["kind"] for p in morning["open_proposals"]] == ["split"]
    assert names(evening) == ids(people[:4])
    assert evening["former_members"] == {str(p): split_at.isoformat() for p in movers}
    assert evening["children"] == [str(child)]
    assert evening["as_of"]["position"] == closed.position - 1  # the Split; SplitOff after it
    split_off = state_as_of(ledger, child, at=split_at + timedelta(hours=8))
    assert names(split_off) == ids(list(movers))
    assert split_off["parent_id"] == str(coop)
    # Today's roster is another answer: one founder left, a newcomer joined since.
    assert names(state_as_of(ledger, coop)) == ids([*people[1:4], people[10]])
    with pytest.raises(InvalidInput) as refused:
        state_as_of(ledger, child, at=split_at - timedelta(seconds=1))
    assert refused.value.field == "at"


def test_was_i_really_outvoted(world: World) -> None:
    ledger, people, clock = world.ledger, world.people, world.clock
    me, coop = people[0], world.found(5)
    proposal = ledger.raise_proposal(coop, kind="general", text="Rooster", actor=people[1]).value
    for voter, choice in zip(people[:4], ["for", "against", "against", "for"], strict=True):
        ledger.vote(coop, proposal, choice, actor=voter)
    before_change = clock.now
    clock.advance(hours=1)
    changed = ledger.vote(coop, proposal, "against", actor=people[3])  # changed their mind
    ledger.vote(coop, proposal, "abstain", actor=people[4])
    clock.advance(hours=1)
    closed = ledger.close_proposal(coop, proposal, actor=me)

    def votes(state: CooperativeState) -> dict[str, str]:
        (open_proposal,) = state["open_proposals"]
        assert open_proposal["electorate"] == sorted(ids(people[:5]))
        return dict(open_proposal["votes"])

    assert votes(state_as_of(ledger, coop, at=before_change))[str(people[3])] == "for"
    last_open = state_as_of(ledger, coop, version=closed.version - 1)
    assert votes(last_open) == {
        str(me): "for",
        str(people[1]): "against",
        str(people[2]): "against",
        str(people[3]): "against",
        str(people[4]): "abstain",
    }
    assert state_as_of(ledger, coop, position=changed.position)["as_of"]["version"] == (
        changed.version
    )
    after = state_as_of(ledger, coop)
    assert after["open_proposals"] == []
    assert after["decisions"] == [{"id": str(proposal), "kind": "general", "outcome": "rejected"}]
    # The live aggregate forgets who voted how once decided: only time travel still knows.
    assert proposal not in ledger.get_cooperative(coop).proposals
    (decision,) = diff(ledger, coop, "v1")["decisions"]
    assert decision["votes_as_of_version"] == last_open["as_of"]["version"]
    assert decision["tally"] == {
        "electorate": 5,
        "votes_for": 1,
        "votes_against": 3,
        "abstentions": 1,
    }


def test_diff_across_a_split_and_an_invoice_cycle(world: World) -> None:
    ledger, people, clock = world.ledger, world.people, world.clock
    coop = world.found(6)
    coordinator, mover = people[1], people[4]
    world.decide(coop, "appoint_coordinator", subject=coordinator)
    start = ledger.get_cooperative(coop).version
    clock.advance(days=1)
    kept = ledger.take_work(coop, client_ref="fam-1", actor=people[2]).value
    ledger.log_hours(coop, kept, minutes=90, actor=people[2])
    moving = ledger.take_work(coop, client_ref="fam-2", actor=mover).value
    ledger.log_hours(coop, moving, minutes=30, actor=mover)
    ledger.hand_over_work(coop, kept, to_member=people[3], actor=people[2])
    ledger.accept_work(coop, kept, actor=people[3])
    first = ledger.issue_invoice(
        coop, client_ref="fam-1", hourly_rate_cents=4000, actor=coordinator
    )
    ledger.register_payment(coop, first.value, amount_cents=1000, actor=coordinator)
    ledger.register_payment(coop, first.value, amount_cents=5000, actor=coordinator)
    second = ledger.issue_invoice(
        coop, client_ref="fam-2", hourly_rate_cents=4000, actor=coordinator
    )
    ledger.credit_invoice(coop, second.value, actor=coordinator)
    clock.advance(days=1)
    split = world.decide(coop, "split", split=SplitPlan("Noord", (mover, people[5])))
    child = ledger.get_cooperative(coop).children[0]

    d = diff(ledger, coop, Moment(version=start))
    # The same moment named by its position gives the same answer.
    assert (
        diff(ledger, coop, f"p{state_as_of(ledger, coop, version=start)['as_of']['position']}") == d
    )
    assert d["from"]["version"] == start
    assert d["to"]["version"] == ledger.get_cooperative(coop).version
    left = {r["person_id"]: r for r in d["members"]["left"]}
    assert set(left) == ids([mover, people[5]])
    assert left[str(mover)]["how"] == "moved_by_split"
    assert left[str(mover)]["to"] == str(child)
    assert [e["event"] for e in left[str(mover)]["events"]] == ["ProposalAdopted", "Split"]
    (decision,) = d["decisions"]
    assert (decision["proposal_id"], decision["outcome"]) == (str(split), "adopted")
    assert [e["event"] for e in decision["events"]] == ["ProposalAdopted", "Split"]
    invoices = d["invoices"]
    assert [(i["number"], i["client_ref"], i["amount_cents"]) for i in invoices["issued"]] == [
        (1, "fam-1", 6000),
        (2, "fam-2", 2000),
    ]
    assert [(p["amount_cents"], p["paid_in_full"]) for p in invoices["paid"]] == [
        (1000, False),
        (5000, True),
    ]
    assert [(c["number"], c["credit_note_number"]) for c in invoices["credited"]] == [(2, 1)]
    assert invoices["issued"][0]["events"][0]["position"] == first.position
    work = [(w["work_id"], w["change"], w["from"], w["to"]) for w in d["work"]]
    assert work == [
        (str(kept), "taken", None, str(people[2])),
        (str(moving), "taken", None, str(mover)),
        (str(kept), "handed_over", str(people[2]), str(people[3])),
        (str(moving), "moved_by_split", str(mover), None),
    ]
    handover = next(w for w in d["work"] if w["change"] == "handed_over")
    assert [e["event"] for e in handover["events"]] == ["WorkHandedOver", "WorkAccepted"]
    assert d["work"][-1]["to_cooperative"] == str(child)
    assert d["roles"] == {"started": [], "ended": []}
    # The coordinator's appointment lies before the diff's start; from the founding it shows.
    whole = diff(ledger, coop, "v1", "latest")
    assert [(r["role"], r["person_id"]) for r in whole["roles"]["started"]] == [
        ("coordinator", str(coordinator))
    ]


def test_diff_names_how_work_and_roles_changed_hands(world: World) -> None:
    ledger, people = world.ledger, world.people
    coop = world.found(4)
    coordinator, taker, peer = (str(p) for p in people[:3])
    world.decide(coop, "appoint_coordinator", subject=people[0])
    start = ledger.get_cooperative(coop).version
    released = ledger.take_work(coop, client_ref="fam-1", actor=people[0]).value
    offered = ledger.take_work(coop, client_ref="fam-2", actor=people[1]).value
    ledger.hand_over_work(coop, offered, to_member=people[2], actor=people[1])
    ledger.leave(coop, actor=people[0])  # the coordinator leaves: work released, role vacant
    ledger.take_work(coop, client_ref="fam-1", actor=people[1], work_id=released)

    d = diff(ledger, coop, f"v{start}")
    assert [(w["work_id"], w["change"], w["from"], w["to"]) for w in d["work"]] == [
        (str(released), "taken", None, coordinator),
        (str(offered), "taken", None, taker),
        (str(released), "released", coordinator, None),
        (str(released), "picked_up", None, taker),
        (str(offered), "handover_offered", taker, peer),
    ]
    assert [(r["person_id"], r["how"]) for r in d["members"]["left"]] == [(coordinator, "left")]
    (ended,) = d["roles"]["ended"]
    assert (ended["role"], ended["person_id"], ended["how"]) == ("coordinator", coordinator, "left")
    assert [e["event"] for e in ended["events"]] == ["CoordinatorVacated"]


def test_moments_that_cannot_be_answered_are_refused_by_name(world: World) -> None:
    ledger, clock = world.ledger, world.clock
    earlier = world.found(3)
    clock.advance(days=1)
    coop = world.found(3)
    founded = ledger.get_cooperative(coop)
    head = ledger.recorder.max_notification_id() or 0
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"version": 0}, "version"),
        ({"version": 2}, "version"),  # not reached yet
        ({"position": head + 1}, "position"),
        ({"position": state_as_of(ledger, earlier)["as_of"]["position"]}, "position"),
        ({"at": founded.modified_on - timedelta(seconds=1)}, "at"),
        ({"at": clock.now + timedelta(seconds=1)}, "at"),  # the future
        ({"at": datetime(2026, 1, 5, 12)}, "at"),  # no zone
        ({"version": 1, "position": head}, "position"),
    ]
    for moment, field in refusals:
        with pytest.raises(InvalidInput) as refused:
            state_as_of(ledger, coop, **moment)
        assert refused.value.field == field, moment
    for moment in ({"version": 1}, {"position": head}, {"at": clock.now}, {}):
        with pytest.raises(CooperativeNotFound):
            state_as_of(ledger, uuid4(), **moment)
    for start, end, field in [("x", "latest", "from"), ("v1", "p-1", "to"), ("v1", "v0", "to")]:
        with pytest.raises(InvalidInput) as refused:
            diff(ledger, coop, start, end)
        assert refused.value.field == field
    world.decide(coop, "general")
    with pytest.raises(InvalidInput) as refused:
        diff(ledger, coop, "latest", "v1")
    assert refused.value.field == "to"


def test_the_cli_prints_state_and_diff_as_json(
    world: World, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    coop = world.found(3)
    world.decide(coop, "appoint_coordinator", subject=world.people[0])
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", database_url)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> Any:
        args = parser.parse_args(argv)
        assert args.run(args) == 0
        return orjson.loads(capsys.readouterr().out)

    assert run("state", str(coop), "--as-of", "v1")["coordinator_id"] is None
    assert run("state", str(coop))["coordinator_id"] == str(world.people[0])
    assert run("state", str(coop), "--as-of", "p1")["as_of"]["version"] == 1
    stamp = world.clock.now.isoformat().replace("+00:00", "Z")
    latest = world.ledger.get_cooperative(coop).version
    assert run("state", str(coop), "--as-of", stamp)["as_of"]["version"] == latest
    changes = run("diff", str(coop), "v1", "latest")
    assert [r["role"] for r in changes["roles"]["started"]] == ["coordinator"]
