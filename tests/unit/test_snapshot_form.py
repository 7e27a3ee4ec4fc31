"""Snapshots of version 4 write members and work in columns and the decided proposals' ids
as one string; snapshots of version 3 (a dict per member and per piece of work, a list of
ids) still load, to exactly the same cooperative."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Annotated, Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import Mapper, StoredEvent
from helpers import DAY, T0, members
from test_event_contract import tour
from test_typed_mapper import assert_exactly

from ledger.application import make_transcoder
from ledger.cooperative import STATE_TYPES, Cooperative
from ledger.hours import Hours
from ledger.idset import IdSet
from ledger.mapper import TypedMapper
from ledger.state import Member, Work
from ledger.typed import Columns

# What version 3 declared for the attributes version 4 writes in another form.
V3_STATE_TYPES = STATE_TYPES | {
    "members": dict[UUID, Member],
    "closed_proposals": set[UUID],
    "work": dict[UUID, Work],
}


def busy() -> Cooperative:
    """The tour's parent (decided proposals, members who came and went) with open work."""
    coop = tour().parent
    at = T0 + 30 * DAY
    a, b = members(coop)[:2]
    held = coop.take_work("client-0099", "garden", actor=a, at=at)
    coop.log_hours(held, 60, at.date(), actor=a, at=at)
    coop.hand_over_work(held, b, actor=a, at=at)
    coop.complete_work(coop.take_work("client-0100", "", actor=b, at=at), actor=b, at=at)
    coop.take_work("client-0101", "windows", actor=b, at=at)
    coop.collect_events()
    return coop


def as_version_3(coop: Cooperative, mapper: Mapper[UUID]) -> StoredEvent:
    """A snapshot of ``coop`` in the form version 3 wrote, through ``mapper``."""
    snapshot = Cooperative.Snapshot.take(coop)
    snapshot.state["class_version"] = 3
    snapshot.state["closed_proposals"] = set(coop.closed_proposals)
    snapshot.state["members"] = dict(coop.members.items())
    snapshot.state["work"] = dict(coop.work.items())
    return mapper.to_stored_event(snapshot)


def v3_hours_columns(hours: Hours) -> dict[str, Any]:
    """The hours' columns as version 3 wrote them: lists, and the refs a list of hex ids."""
    columns = hours.to_columns()
    refs = columns["refs"]
    return {
        "ids": columns["ids"],
        "refs": [refs[n : n + 32] for n in range(0, len(refs), 32)],
        **{name: orjson.loads(columns[name]) for name in ("work", "member", "minutes", "day")},
        "invoice": orjson.loads(columns["invoice"]),
    }


def v3_typed() -> TypedMapper:
    transcoder = make_transcoder()
    transcoder.declare(Cooperative, V3_STATE_TYPES)
    transcoder.register_value(Hours, "ledger.hours:Hours", v3_hours_columns, Hours.from_columns)
    return TypedMapper(transcoder)


def restore(stored: StoredEvent) -> Any:
    return TypedMapper(make_transcoder()).to_domain_event(stored).mutate(None)


def snapshot_state(coop: Cooperative) -> dict[str, Any]:
    stored = TypedMapper(make_transcoder()).to_stored_event(Cooperative.Snapshot.take(coop))
    state: dict[str, Any] = orjson.loads(stored.state)["state"]
    return state


def test_a_version_3_snapshot_loads_to_exactly_the_same_cooperative() -> None:
    coop = busy()
    assert coop.closed_proposals
    assert len(coop.work) == 2
    for coop in (busy(), tour().child):
        stored = as_version_3(coop, v3_typed())
        state = orjson.loads(stored.state)["state"]
        assert state["class_version"] == 3
        assert isinstance(state["closed_proposals"], list)
        assert {m["_"] for m in state["members"].values()} == {"C"}  # a dict per member
        assert isinstance(state["hours"]["day"], list)

        restored = restore(stored)

        assert_exactly(vars(restored), vars(coop))


def test_a_version_3_snapshot_in_the_older_tagged_form_loads_to_the_same_cooperative() -> None:
    coop = busy()
    stored = as_version_3(coop, Mapper(transcoder=make_transcoder()))

    restored = restore(stored)

    assert isinstance(restored.closed_proposals, IdSet)
    assert_exactly(vars(restored), vars(coop))


def test_members_and_work_are_written_in_columns_and_decided_ids_as_one_string() -> None:
    coop = busy()

    state = snapshot_state(coop)

    assert state["class_version"] == 4
    assert state["members"]["person_id"] == [m.hex for m in coop.members]
    assert state["members"]["since"] == [m.since.isoformat() for m in coop.members.values()]
    assert state["work"]["id"] == [w.hex for w in coop.work]
    assert state["work"]["status"] == [w.status.value for w in coop.work.values()]
    assert state["closed_proposals"] == "".join(p.hex for p in coop.closed_proposals)


def test_members_and_work_of_odd_types_or_keys_still_read_back_exactly() -> None:
    coop = busy()
    first, second = list(coop.members.values())[:2]
    first.since = first.since.astimezone(timezone(timedelta(hours=1), "CET"))
    first.conversation_group = 7  # type: ignore[assignment]
    second.decision_id = str(uuid4())  # type: ignore[assignment]
    work = next(iter(coop.work.values()))
    work.holder = 2**70  # type: ignore[assignment]
    restored = restore(
        TypedMapper(make_transcoder()).to_stored_event(Cooperative.Snapshot.take(coop))
    )
    assert_exactly(vars(restored), vars(coop))

    # A member filed under another id than its own: the per-value form, as written before.
    coop.members[uuid4()] = coop.members.pop(first.person_id)
    assert "person_id" not in snapshot_state(coop)["members"]
    restored = restore(
        TypedMapper(make_transcoder()).to_stored_event(Cooperative.Snapshot.take(coop))
    )
    assert_exactly(vars(restored), vars(coop))


def test_columns_of_different_lengths_are_refused() -> None:
    coop = busy()
    snapshot = Cooperative.Snapshot.take(coop)
    stored = TypedMapper(make_transcoder()).to_stored_event(snapshot)
    data = orjson.loads(stored.state)
    data["state"]["members"]["since"].pop()
    broken = StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(data)
    )

    with pytest.raises(ValueError, match="columns of Member"):
        restore(broken)


def test_a_plain_dict_declared_in_columns_reads_back_as_the_same_dict() -> None:
    class Owner:
        pass

    transcoder = make_transcoder()
    transcoder.declare(Owner, {"people": Annotated[dict[UUID, Member], Columns("person_id")]})
    people = {
        m.person_id: m for m in (Member(uuid4(), T0, "g", None), Member(uuid4(), T0, None, uuid4()))
    }

    data = orjson.loads(orjson.dumps(transcoder.dump_fields(Owner, {"people": people})))

    assert data["people"]["person_id"] == [k.hex for k in people]
    assert_exactly(transcoder.load_fields(Owner, data), {"people": people})
