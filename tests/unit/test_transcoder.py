"""OrjsonTranscoder round-trips every supported type exactly: same type, same value."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.domain import Aggregate, Snapshot, event
from eventsourcing.persistence import Mapper
from hypothesis import given
from hypothesis import strategies as st

from ledger.transcoder import OrjsonTranscoder


class Role(StrEnum):
    MEMBER = "member"
    STEWARD = "steward"


class Vote(IntEnum):
    AGAINST = -1
    ABSTAIN = 0
    FOR = 1


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclass
class Entry:
    entry_id: UUID
    amount: Money
    tags: list[str]
    notes: dict[UUID, Any]
    checked: bool = field(default=False, init=False)


@dataclass(frozen=True)
class Pair:
    """A frozen, hashable wrapper of any two hashable values, for the property test."""

    left: Any
    right: Any


@dataclass
class Box:
    """A mutable wrapper of any value, for the property test."""

    value: Any


class Unregistered(Enum):
    A = "a"


def make_transcoder() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    for cls in (Role, Vote, Money, Entry, Pair, Box):
        transcoder.register(cls)
    return transcoder


@pytest.fixture
def transcoder() -> OrjsonTranscoder:
    return make_transcoder()


def assert_same(actual: Any, expected: Any) -> None:
    """Recursive check that ``actual`` has exactly the type and value of ``expected``."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, float | Decimal):  # repr/str keep NaN, -0.0 and exponents
        assert str(actual) == str(expected)
    elif isinstance(expected, Enum):
        assert actual is expected
    elif isinstance(expected, datetime):
        assert repr(actual) == repr(expected)  # same wall time, tzinfo offset and name
        assert (actual.tzinfo is UTC) == (expected.tzinfo is UTC)
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, dict):
        assert len(actual) == len(expected)
        for (ak, av), (ek, ev) in zip(actual.items(), expected.items(), strict=True):
            assert_same(ak, ek)
            assert_same(av, ev)
    elif isinstance(expected, set | frozenset):
        assert {(type(x), x) for x in actual} == {(type(x), x) for x in expected}
    elif isinstance(expected, Money | Entry | Pair | Box):
        assert_same(vars(actual), vars(expected))
    else:
        assert actual == expected


def round_trip(transcoder: OrjsonTranscoder, value: Any) -> Any:
    data = transcoder.encode(value)
    assert isinstance(data, bytes)
    decoded = transcoder.decode(data)
    assert_same(decoded, value)
    return decoded


@pytest.mark.parametrize("value", [None, True, False])
def test_round_trips_none_and_bools(transcoder: OrjsonTranscoder, value: Any) -> None:
    round_trip(transcoder, value)


@pytest.mark.parametrize("value", [0, -1, 2**63 - 1, -(2**63), 2**63, 2**64, -(2**200), 3**300])
def test_round_trips_ints_including_ints_beyond_64_bits(
    transcoder: OrjsonTranscoder, value: int
) -> None:
    round_trip(transcoder, value)


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 0.1, 1e16, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan]
)
def test_round_trips_floats_including_non_finite_ones(
    transcoder: OrjsonTranscoder, value: float
) -> None:
    round_trip(transcoder, value)


@pytest.mark.parametrize("value", ["", "plain", "_", "ünïcødé ✓ 𝄞", '{"_": "u"}'])
def test_round_trips_strings(transcoder: OrjsonTranscoder, value: str) -> None:
    round_trip(transcoder, value)


def test_round_trips_lists_and_tuples_without_confusing_them(
    transcoder: OrjsonTranscoder,
) -> None:
    round_trip(transcoder, [1, (2, [3, ()]), [], ("x",)])
    round_trip(transcoder, ((), (1,), [(2, 3)]))


def test_round_trips_a_dict_with_str_keys(transcoder: OrjsonTranscoder) -> None:
    round_trip(transcoder, {"a": 1, "b": {"c": [None]}, "": "empty key"})


def test_round_trips_dicts_with_non_str_keys(transcoder: OrjsonTranscoder) -> None:
    round_trip(transcoder, {uuid4(): 1, uuid4(): {"nested": True}})
    round_trip(transcoder, {1: "one", 2: "two", -(2**70): "big"})
    round_trip(transcoder, {"1": "str key", 1: "int key", (1, 2): "tuple key", None: 0})
    round_trip(transcoder, {Role.MEMBER: 1, date(2024, 1, 1): Decimal("2.50")})


def test_escapes_a_plain_dict_whose_keys_look_like_a_tag(transcoder: OrjsonTranscoder) -> None:
    for lookalike in (
        {"_": "u", "v": "0" * 32},
        {"_": "d", "v": {"_": "t", "v": []}},
        {"_": None},
        {"_": "no such tag"},
    ):
        round_trip(transcoder, lookalike)
        round_trip(transcoder, {"outer": [lookalike], "_": lookalike})
    assert orjson.loads(transcoder.encode({"_": "u", "v": "x"})) == {
        "_": "d",
        "v": {"_": "u", "v": "x"},
    }


def test_round_trips_sets_and_frozensets(transcoder: OrjsonTranscoder) -> None:
    round_trip(transcoder, {1, "a", uuid4(), (1, 2), frozenset({3})})
    round_trip(transcoder, frozenset({Decimal("1.0"), date(2024, 2, 29)}))
    round_trip(transcoder, [set(), frozenset()])


def test_round_trips_a_uuid(transcoder: OrjsonTranscoder) -> None:
    round_trip(transcoder, uuid4())
    round_trip(transcoder, UUID(int=0))


def test_round_trips_a_tz_aware_datetime_exactly(transcoder: OrjsonTranscoder) -> None:
    decoded = round_trip(transcoder, datetime(2024, 5, 17, 9, 30, 1, 123456, tzinfo=UTC))
    assert decoded.tzinfo is UTC
    round_trip(transcoder, datetime(2024, 10, 27, 1, 30, fold=1, tzinfo=UTC))
    round_trip(transcoder, datetime(1, 1, 1, tzinfo=UTC))
    round_trip(transcoder, datetime.now(UTC))


def test_round_trips_a_datetime_with_another_fixed_offset_as_that_offset(
    transcoder: OrjsonTranscoder,
) -> None:
    for tz in (
        timezone(timedelta(hours=5, minutes=30)),
        timezone(-timedelta(hours=23, minutes=59, seconds=59, microseconds=1)),
        timezone(timedelta(hours=1), "CET"),
        timezone(timedelta(0), "GMT"),
        timezone(timedelta(microseconds=1)),  # 3.11's fromisoformat() would read this as UTC
        timezone(-timedelta(seconds=30, microseconds=5)),
    ):
        decoded = round_trip(transcoder, datetime(2024, 5, 17, 9, 30, tzinfo=tz))
        assert decoded.utcoffset() == tz.utcoffset(None)
        assert decoded.tzname() == tz.tzname(None)


def test_refuses_to_encode_a_naive_datetime(transcoder: OrjsonTranscoder) -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        transcoder.encode({"at": datetime(2024, 5, 17, 9, 30)})


def test_round_trips_a_date(transcoder: OrjsonTranscoder) -> None:
    round_trip(transcoder, date(2024, 2, 29))
    round_trip(transcoder, date(1, 1, 1))


def test_round_trips_a_timedelta(transcoder: OrjsonTranscoder) -> None:
    for value in (timedelta(0), timedelta(days=-3, microseconds=1), timedelta.max, timedelta.min):
        round_trip(transcoder, value)


@pytest.mark.parametrize(
    "value", ["0.10", "-0", "1E+3", "123456789.123456789123456789", "NaN", "-Infinity", "sNaN"]
)
def test_round_trips_a_decimal_exactly_keeping_its_exponent(
    transcoder: OrjsonTranscoder, value: str
) -> None:
    decoded = round_trip(transcoder, Decimal(value))
    assert decoded.as_tuple() == Decimal(value).as_tuple()


def test_round_trips_members_of_registered_str_and_int_enums(
    transcoder: OrjsonTranscoder,
) -> None:
    round_trip(transcoder, [Role.MEMBER, Role.STEWARD, Vote.AGAINST, Vote.FOR])


def test_round_trips_registered_frozen_and_mutable_dataclasses_with_nested_values(
    transcoder: OrjsonTranscoder,
) -> None:
    member_id = uuid4()
    entry = Entry(
        entry_id=uuid4(),
        amount=Money(Decimal("10.50"), "EUR"),
        tags=["dues", "2024"],
        notes={member_id: (Vote.FOR, datetime(2024, 1, 1, tzinfo=UTC))},
    )
    entry.checked = True  # an init=False field is restored too
    decoded = round_trip(transcoder, entry)
    assert decoded == entry
    assert decoded.checked is True
    round_trip(transcoder, {"money": Money(Decimal("0.10"), "EUR")})


def test_decodes_by_the_registered_name_not_by_an_import_path() -> None:
    writer, reader = OrjsonTranscoder(), OrjsonTranscoder()
    writer.register(Money, name="money/v1")
    reader.register(Money, name="money/v1")
    data = writer.encode(Money(Decimal("1"), "EUR"))
    assert b"money/v1" in data
    assert b"test_transcoder" not in data
    assert reader.decode(data) == Money(Decimal("1"), "EUR")


def test_refuses_to_decode_a_class_name_that_is_not_registered() -> None:
    writer = OrjsonTranscoder()
    writer.register(Money)
    data = writer.encode(Money(Decimal("1"), "EUR"))
    with pytest.raises(ValueError, match=r"unregistered type name .*Money"):
        OrjsonTranscoder().decode(data)
    forged = b'{"_": "c", "n": "os:system", "v": {"command": "true"}}'
    with pytest.raises(ValueError, match="unregistered type name 'os:system'"):
        OrjsonTranscoder().decode(forged)


def test_refuses_to_encode_unregistered_enums_and_dataclasses() -> None:
    transcoder = OrjsonTranscoder()
    with pytest.raises(TypeError, match=r"unregistered type .*Unregistered"):
        transcoder.encode([Unregistered.A])  # not silently stored as the str "a"
    with pytest.raises(TypeError, match=r"unregistered type .*Money"):
        transcoder.encode(Money(Decimal("1"), "EUR"))


def test_refuses_to_encode_an_unsupported_type_naming_it(transcoder: OrjsonTranscoder) -> None:
    with pytest.raises(TypeError, match=r"builtins.bytes"):
        transcoder.encode({"blob": b"\x00"})
    with pytest.raises(TypeError, match=r"builtins.object"):
        transcoder.encode(object())


def test_refuses_to_register_a_name_or_class_twice_for_different_things() -> None:
    transcoder = OrjsonTranscoder()
    transcoder.register(Money, name="money")
    transcoder.register(Money, name="money")  # same again is fine
    with pytest.raises(ValueError, match="already taken"):
        transcoder.register(Role, name="money")
    with pytest.raises(ValueError, match="already taken"):
        transcoder.register(Money, name="cash")
    with pytest.raises(TypeError, match="only register Enum classes and dataclasses"):
        transcoder.register(UUID)


def test_refuses_to_decode_an_unknown_tag(transcoder: OrjsonTranscoder) -> None:
    with pytest.raises(ValueError, match="unknown type tag 'zz'"):
        transcoder.decode(b'{"_": "zz", "v": 1}')


# Property test: arbitrary nested structures built from all supported types.

fixed_offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
        max_value=timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
    ),
)
aware_datetimes = st.datetimes(timezones=st.just(UTC) | fixed_offsets)

hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62) | st.integers(max_value=-(2**62)),
    st.floats(allow_nan=False),
    st.text(),
    st.uuids(),
    aware_datetimes,
    st.dates(),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.sampled_from(Role),
    st.sampled_from(Vote),
    st.builds(Money, st.decimals(allow_nan=False), st.text(max_size=3)),
)
hashables = st.recursive(
    hashable_leaves,
    lambda children: (
        st.tuples(children, children)
        | st.frozensets(children, max_size=3)
        | st.builds(Pair, children, children)
    ),
    max_leaves=8,
)
leaves = hashable_leaves | st.floats() | st.decimals()  # NaN is fine outside sets and keys
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.dictionaries(st.text() | st.just("_") | st.just("v"), children, max_size=4),
        st.dictionaries(hashables, children, max_size=4),
        st.builds(Box, children),
        st.builds(Pair, children, children),
    ),
    max_leaves=30,
)

PROPERTY_TRANSCODER = make_transcoder()


@given(values)
def test_round_trips_arbitrary_nested_structures_of_supported_types(value: Any) -> None:
    round_trip(PROPERTY_TRANSCODER, value)


# As the transcoder of the eventsourcing library's Mapper.


class Pot(Aggregate):
    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.opened_on: date | None = None
        self.shares: dict[UUID, Decimal] = {}
        self.last_paid_at: datetime | None = None

    @event("SharesPaid")
    def pay_shares(
        self, member_id: UUID, paid_at: datetime, on: date, amount: Decimal, split: dict[UUID, Any]
    ) -> None:
        self.opened_on = self.opened_on or on
        self.shares[member_id] = self.shares.get(member_id, Decimal("0.00")) + amount
        self.last_paid_at = paid_at
        self.split = split


def make_mapper() -> Mapper[UUID]:
    return Mapper(transcoder=make_transcoder())


def make_pot() -> Pot:
    pot = Pot("solidarity fund")
    member_id, other_id = uuid4(), uuid4()
    pot.pay_shares(
        member_id=member_id,
        paid_at=datetime(2024, 5, 17, 9, 30, 0, 250000, tzinfo=UTC),
        on=date(2024, 5, 17),
        amount=Decimal("25.10"),
        split={member_id: Decimal("0.50"), other_id: (Role.MEMBER, Decimal("0.50"))},
    )
    return pot


def assert_same_state(actual: Any, expected: Any) -> None:
    """Like assert_same on ``vars()``, ignoring key order (the Mapper re-adds some keys last)."""
    assert type(actual) is type(expected)
    actual_state, expected_state = vars(actual), vars(expected)
    assert sorted(actual_state) == sorted(expected_state)
    for key, value in expected_state.items():
        assert_same(actual_state[key], value)


def test_works_as_the_mapper_transcoder_for_domain_events() -> None:
    mapper, pot = make_mapper(), make_pot()
    events = pot.collect_events()
    assert len(events) == 2
    for domain_event in events:
        stored = mapper.to_stored_event(domain_event)
        copy = mapper.to_domain_event(stored)
        assert_same_state(copy, domain_event)
        assert copy == domain_event
    paid: Any = mapper.to_domain_event(mapper.to_stored_event(events[1]))
    assert paid.timestamp.tzinfo is UTC
    rebuilt: Any = None
    for domain_event in events:
        loaded: Any = mapper.to_domain_event(mapper.to_stored_event(domain_event))
        rebuilt = loaded.mutate(rebuilt)
    assert_same_state(rebuilt, pot)


def test_works_as_the_mapper_transcoder_for_snapshots() -> None:
    mapper, pot = make_mapper(), make_pot()
    pot.collect_events()
    snapshot = Snapshot.take(pot)
    copy = mapper.to_domain_event(mapper.to_stored_event(snapshot))
    assert_same_state(copy, snapshot)
    assert copy == snapshot
    restored = copy.mutate(None)
    assert_same_state(restored, pot)
    assert restored.modified_on.tzinfo is UTC
