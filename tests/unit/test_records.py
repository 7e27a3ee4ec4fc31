"""A loaded cooperative's members and work stay in columns until a value is read: asking
who is a member, or how many, makes none; anything else makes them all, in order."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from helpers import DAY, T0, members, raise_
from test_snapshot_form import busy

from ledger.application import make_transcoder
from ledger.cooperative import Cooperative
from ledger.mapper import TypedMapper
from ledger.records import Records
from ledger.rules import ProposalKind, VoteChoice
from ledger.state import Member, Work


def loaded(coop: Cooperative) -> Any:
    """``coop`` as a load from its snapshot gives it back."""
    mapper = TypedMapper(make_transcoder())
    return mapper.to_domain_event(mapper.to_stored_event(Cooperative.Snapshot.take(coop))).mutate(
        None
    )


def unread(records: Records[Any]) -> bool:
    return records.stored_columns() is not None


def test_asking_who_is_a_member_and_how_many_makes_no_member() -> None:
    coop = busy()
    restored = loaded(coop)
    somebody = members(coop)[0]

    assert somebody in restored.members
    assert uuid4() not in restored.members
    assert somebody.hex not in restored.members  # ids only, not their hex
    assert len(restored.members) == len(coop.members)
    assert list(restored.members) == list(coop.members)
    assert unread(restored.members)
    assert unread(restored.work)


def test_reading_a_value_makes_them_all_in_their_order() -> None:
    coop = busy()
    restored = loaded(coop)
    somebody = members(coop)[1]

    assert restored.members[somebody] == coop.members[somebody]

    assert not unread(restored.members)
    assert list(restored.members.items()) == list(coop.members.items())


def test_changes_work_as_on_a_dict_and_are_written() -> None:
    coop = busy()
    restored, plain = loaded(coop), dict(coop.members.items())
    leaving, joining = members(coop)[2], Member(uuid4(), T0, None, None)

    for mapping in (restored.members, plain):
        del mapping[leaving]
        mapping[joining.person_id] = joining

    assert restored.members == plain
    assert loaded(restored).members == plain
    assert list(loaded(restored).members) == list(plain)


def test_unread_columns_are_written_back_as_they_came() -> None:
    restored = loaded(busy())
    write_work = make_transcoder()._codecs_of(Cooperative)["work"][0]

    assert write_work(restored.work) is restored.work.stored_columns()
    assert unread(restored.work)


def test_a_loaded_cooperative_takes_a_vote_without_making_its_members_or_work() -> None:
    coop = busy()
    at = T0 + 40 * DAY
    proposal = raise_(coop, ProposalKind.GENERAL, at=at)
    coop.collect_events()
    restored = loaded(coop)

    for voter in members(coop):
        restored.vote(proposal, VoteChoice.FOR, actor=voter, at=at)

    assert restored.proposals[proposal].votes == dict.fromkeys(members(coop), VoteChoice.FOR)
    assert unread(restored.members)
    assert unread(restored.work)


def test_an_id_column_with_an_id_twice_is_refused() -> None:
    columns = loaded(busy()).work.stored_columns()
    doubled = {name: [*column, column[0]] for name, column in columns.items()}
    read_work = make_transcoder()._codecs_of(Cooperative)["work"][1]

    with pytest.raises(ValueError, match="twice"):
        read_work(doubled)


def test_records_are_not_hashable_like_a_dict() -> None:
    with pytest.raises(TypeError):
        hash(Records[Work]())
