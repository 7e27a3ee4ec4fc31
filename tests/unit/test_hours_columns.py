"""A cooperative's unpaid hours live in columns: read only when needed, never changed by it."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import Mapper
from helpers import DAY, MENTOR, T0, assert_replays_to_same_state, found, members

from ledger.application import make_transcoder
from ledger.cooperative import Cooperative
from ledger.hours import Hours
from ledger.mapper import TypedMapper
from ledger.state import HoursEntry

WORK, OTHER_WORK, ANA, BO = uuid4(), uuid4(), uuid4(), uuid4()


def entries(n: int) -> list[HoursEntry]:
    people, works = (ANA, BO), (WORK, OTHER_WORK)
    return [
        HoursEntry(uuid4(), works[i % 2], people[i % 2], 15 + i, date(2026, 1, 1 + i % 28))
        for i in range(n)
    ]


def stored(hours: Hours) -> Hours:
    """``hours`` as a load from a snapshot gives it back: columns, not yet read."""
    return Hours.from_columns(copy.deepcopy(hours.to_columns()))


def unread(hours: Hours) -> bool:
    return hours._columns is not None


def test_hours_read_back_from_columns_are_the_same_entries_in_the_same_order() -> None:
    logged = entries(40)
    logged[3].invoice_number = 7
    hours = Hours((e.id, e) for e in logged)

    loaded = stored(hours)

    assert list(loaded.items()) == [(e.id, e) for e in logged]
    assert loaded == hours


def test_counting_and_looking_up_hours_leave_the_columns_unread() -> None:
    logged = entries(10)
    loaded = stored(Hours((e.id, e) for e in logged))

    assert len(loaded) == 10
    assert logged[4].id in loaded
    assert uuid4() not in loaded
    assert unread(loaded)


def test_hours_logged_after_a_load_are_added_without_reading_the_rest() -> None:
    logged = entries(10)
    loaded = stored(Hours((e.id, e) for e in logged[:6]))

    for e in logged[6:]:
        loaded[e.id] = e

    assert unread(loaded)
    assert loaded._stored_ids is None  # a replay of new hours never looks for their ids
    assert len(loaded) == 10
    written = stored(loaded)  # the next snapshot appends their columns to the stored ones
    assert unread(loaded)
    assert list(written.values()) == logged


def test_replacing_a_stored_entry_keeps_its_place_and_the_count() -> None:
    logged = entries(5)
    loaded = stored(Hours((e.id, e) for e in logged))
    changed = HoursEntry(logged[2].id, WORK, ANA, 600, date(2026, 2, 2), invoice_number=3)
    added = entries(1)[0]

    loaded[changed.id] = changed
    loaded[added.id] = added
    assert len(loaded) == 6
    loaded[changed.id] = changed  # set again: still one entry each
    loaded[added.id] = added

    assert unread(loaded)
    assert len(loaded) == 6
    assert list(stored(loaded).values()) == [*logged[:2], changed, *logged[3:], added]
    assert list(loaded) == [*(e.id for e in logged), added.id]
    assert loaded[changed.id] is changed
    assert len(loaded) == 6


def test_removing_and_changing_entries_works_as_on_a_dict() -> None:
    logged = entries(6)
    loaded, plain = stored(Hours((e.id, e) for e in logged)), {e.id: e for e in logged}

    for mapping in (loaded, plain):
        del mapping[logged[0].id]
        mapping.pop(logged[1].id)
        mapping[logged[2].id].invoice_number = 9  # type: ignore[index]

    assert loaded == plain
    assert stored(loaded) == plain
    with pytest.raises(KeyError):
        loaded[logged[0].id]


def test_columns_as_version_3_wrote_them_read_back_and_are_written_in_the_new_form() -> None:
    logged = entries(8)
    logged[1].invoice_number = 4
    columns = Hours((e.id, e) for e in logged[:6]).to_columns()
    version_3 = {
        "ids": columns["ids"],
        "refs": [columns["refs"][n : n + 32] for n in range(0, len(columns["refs"]), 32)],
        **{name: orjson.loads(columns[name]) for name in ("work", "member", "minutes", "day")},
        "invoice": orjson.loads(columns["invoice"]),
    }
    assert version_3["invoice"][:2] == [None, 4]

    loaded = Hours.from_columns(copy.deepcopy(version_3))
    for e in logged[6:]:
        loaded[e.id] = e
    rewritten = loaded.to_columns()

    assert unread(loaded)
    assert {type(rewritten[name]) for name in rewritten} == {str}
    assert list(Hours.from_columns(rewritten).values()) == logged
    assert list(Hours.from_columns(copy.deepcopy(version_3)).values()) == logged[:6]


def test_columns_whose_lengths_disagree_are_refused() -> None:
    columns = Hours((e.id, e) for e in entries(3)).to_columns()
    columns["ids"] = columns["ids"][:-32]

    with pytest.raises(ValueError):
        list(Hours.from_columns(columns))


def test_a_version_two_snapshot_with_hours_in_a_dict_is_upcast_to_the_same_state() -> None:
    coop = found(3)
    worker = members(coop)[0]
    work_id = coop.take_work("client-1", "", actor=worker, at=T0)
    for n in range(5):
        coop.log_hours(work_id, 30 + n, T0.date(), actor=worker, at=T0 + n * DAY / 10)
    coop.issue_invoice("client-1", 4000, actor=MENTOR, at=T0 + DAY)
    coop.log_hours(work_id, 45, T0.date(), actor=worker, at=T0 + DAY)
    history = list(coop.collect_events())
    snapshot = Cooperative.Snapshot.take(coop)
    state: dict[str, Any] = snapshot.state
    state["class_version"] = 2
    state["hours"] = dict(state["hours"].items())  # as version 2 kept them

    for mapper in (Mapper(transcoder=make_transcoder()), TypedMapper(make_transcoder())):
        restored = mapper.to_domain_event(mapper.to_stored_event(snapshot)).mutate(None)
        assert isinstance(restored.hours, Hours)
        assert vars(restored) == vars(coop)
    assert_replays_to_same_state(coop, history)


def test_a_busy_cooperative_loads_without_reading_its_hours_and_still_invoices_them() -> None:
    coop = found(3)
    worker = members(coop)[0]
    work_id = coop.take_work("client-1", "", actor=worker, at=T0)
    for n in range(50):
        coop.log_hours(work_id, 30, T0.date(), actor=worker, at=T0 + n * timedelta(minutes=1))
    coop.collect_events()
    mapper = TypedMapper(make_transcoder())

    restored: Any = mapper.to_domain_event(
        mapper.to_stored_event(Cooperative.Snapshot.take(coop))
    ).mutate(None)
    restored.log_hours(work_id, 30, T0.date(), actor=worker, at=T0 + DAY)

    assert unread(restored.hours)
    number = restored.issue_invoice("client-1", 6000, actor=MENTOR, at=T0 + DAY)
    assert restored.invoices[number].amount_cents == 51 * 30 * 100
    assert not unread(restored.hours)


def test_hours_are_not_hashable_like_a_dict() -> None:
    with pytest.raises(TypeError):
        hash(Hours())


def test_an_id_found_inside_the_ids_column_but_across_two_ids_is_not_taken_for_one() -> None:
    a, b = UUID(hex="0" * 16 + "1" * 16), UUID(hex="2" * 16 + "0" * 16)
    straddling = UUID(hex="1" * 16 + "2" * 16)
    pair = [(i, HoursEntry(i, WORK, ANA, 1, date(2026, 1, 1))) for i in (a, b)]
    loaded = stored(Hours(pair))

    assert straddling not in loaded
    assert a in loaded
    assert b in loaded
