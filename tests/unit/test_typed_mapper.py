"""Events and snapshots written by declared types read back exactly, and so does the older
all-tagged form (stores written before the typed form keep their bytes)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import Mapper
from helpers import T0, found, members
from test_event_contract import tour

from ledger.application import make_transcoder
from ledger.cooperative import STATE_TYPES, Cooperative
from ledger.hours import Hours
from ledger.idset import IdSet
from ledger.mapper import TypedMapper
from ledger.records import Records
from ledger.state import HoursEntry, Member
from ledger.typed import uuid_from_hex


def typed() -> TypedMapper:
    return TypedMapper(make_transcoder())


def tagged() -> Mapper[UUID]:
    """The library's Mapper on the same transcoder: the form stores held before."""
    return Mapper(transcoder=make_transcoder())


def assert_exactly(actual: Any, expected: Any, where: str = "") -> None:
    """Equal, and of exactly the same types all the way down (== alone takes 1 for True)."""
    assert type(actual) is type(expected), (where, actual, expected)
    if isinstance(expected, Records | Hours):  # mappings made lazily: compare what they hold
        assert_exactly(dict(actual.items()), dict(expected.items()), where)
    elif isinstance(expected, IdSet):
        assert_exactly(set(actual), set(expected), where)
    elif isinstance(expected, dict):
        assert set(actual) == set(expected), where
        for key, value in expected.items():
            assert_exactly(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected), where
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_exactly(a, e, f"{where}[{n}]")
    elif isinstance(expected, set | frozenset):
        assert {(type(x), x) for x in actual} == {(type(x), x) for x in expected}, where
    elif is_dataclass(expected) and not isinstance(expected, type):
        for f in fields(expected):
            assert_exactly(getattr(actual, f.name), getattr(expected, f.name), f"{where}.{f.name}")
    elif isinstance(expected, datetime):
        assert (actual, actual.tzinfo, actual.fold) == (expected, expected.tzinfo, expected.fold)
    elif isinstance(expected, Enum):
        assert actual is expected, where
    else:
        assert actual == expected, where


def test_every_event_of_the_tour_reads_back_exactly() -> None:
    mapper = typed()
    for event in tour().events:
        read_back = mapper.to_domain_event(mapper.to_stored_event(event))
        assert_exactly(vars(read_back), vars(event), type(event).__name__)


def test_snapshots_of_the_tour_read_back_to_exactly_the_same_cooperative() -> None:
    mapper, t = typed(), tour()
    for coop in (t.parent, t.child):
        snapshot = Cooperative.Snapshot.take(coop)
        restored = mapper.to_domain_event(mapper.to_stored_event(snapshot)).mutate(None)
        assert_exactly(vars(restored), vars(coop))


def test_events_and_snapshots_stored_in_the_older_tagged_form_read_back_the_same() -> None:
    old, new, t = tagged(), typed(), tour()
    for event in t.events:
        stored = old.to_stored_event(event)
        assert_exactly(vars(new.to_domain_event(stored)), vars(event), type(event).__name__)
    snapshot = Cooperative.Snapshot.take(t.parent)
    restored = new.to_domain_event(old.to_stored_event(snapshot)).mutate(None)
    assert_exactly(vars(restored), vars(t.parent))


def test_declared_values_are_written_bare_without_type_tags() -> None:
    coop = found(3)
    worker = members(coop)[0]
    work_id = coop.take_work("client-1", "", actor=worker, at=T0)
    coop.log_hours(work_id, 30, T0.date(), actor=worker, at=T0)
    logged = typed().to_stored_event(coop.collect_events()[-1])

    state = orjson.loads(logged.state)

    assert state["work_id"] == work_id.hex
    assert state["worked_on"] == T0.date().isoformat()
    assert state["timestamp"] == T0.isoformat()
    assert b'"_":"u"' not in logged.state


def test_a_value_that_is_not_of_its_declared_type_still_reads_back_exactly() -> None:
    coop = found(3)
    worker = members(coop)[0]
    work_id = coop.take_work("client-1", "", actor=worker, at=T0)
    coop.log_hours(work_id, 30, T0.date(), actor=worker, at=T0)
    event = coop.collect_events()[-1]
    odd = vars(event)
    cet = timezone(timedelta(hours=1), "CET")
    # A str where a UUID is declared, a bool for an int, a datetime for a date, another zone.
    odd |= {
        "work_id": work_id.hex,
        "minutes": True,
        "worked_on": T0,
        "timestamp": T0.astimezone(cet),
    }
    odd["reason"] = 2**70
    mapper = typed()

    read_back = mapper.to_domain_event(mapper.to_stored_event(event))

    assert_exactly(vars(read_back), vars(event))


def test_a_dataclass_value_with_odd_field_values_reads_back_exactly() -> None:
    transcoder = make_transcoder()
    entry = HoursEntry(uuid4(), uuid4(), uuid4(), 2**65, date(2026, 1, 2), invoice_number=None)
    member = Member(uuid4(), datetime(2026, 1, 2, tzinfo=UTC), None, None)
    odd_member = Member(str(uuid4()), datetime(2026, 1, 2, fold=1, tzinfo=UTC), "g", uuid4())  # type: ignore[arg-type]

    for value in (entry, member, odd_member, {uuid4(): entry}, [member, odd_member]):
        assert_exactly(transcoder.decode(transcoder.encode(value)), value)


def test_every_attribute_of_a_cooperative_has_a_declared_type() -> None:
    t = tour()
    kept_by_the_library = {"_id", "_version", "_pending_events"}

    for coop in (t.parent, t.child):
        assert set(vars(coop)) - kept_by_the_library == set(STATE_TYPES)


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 31, "g" * 32])
def test_a_malformed_uuid_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        uuid_from_hex(bad)


def test_uuids_read_from_hex_equal_and_hash_like_the_standard_ones() -> None:
    for _ in range(100):
        expected = uuid4()
        made = uuid_from_hex(expected.hex)
        assert made == expected
        assert hash(made) == hash(expected)
        assert str(made) == str(expected)
        assert made.version == 4
