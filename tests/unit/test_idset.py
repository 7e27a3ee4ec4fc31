"""The decided proposals' ids stay one string when loaded: looked up there, made into ids
only when iterated, and written back with the ids added since."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from ledger.idset import IdSet


def stored(ids: IdSet) -> IdSet:
    """``ids`` as a load from a snapshot gives them back: one string, not yet read."""
    return IdSet.from_stored(ids.to_stored())


def unread(ids: IdSet) -> bool:
    return bool(ids._stored)


def test_ids_read_back_from_one_string_are_the_same_ids_in_the_same_order() -> None:
    made = [uuid4() for _ in range(30)]

    loaded = stored(IdSet(made))

    assert len(loaded) == 30
    assert list(loaded) == made
    assert loaded == IdSet(made)
    assert loaded == set(made)


def test_looking_up_and_adding_ids_leave_the_string_unread() -> None:
    made = [uuid4() for _ in range(10)]
    loaded, new = stored(IdSet(made)), uuid4()

    assert made[3] in loaded
    assert uuid4() not in loaded
    assert made[3].hex not in loaded  # only ids are members, not their hex
    loaded.add(new)
    loaded.add(made[5])  # already there: nothing changes
    assert len(loaded) == 11
    assert new in loaded
    assert unread(loaded)
    assert IdSet.from_stored(loaded.to_stored()) == {*made, new}


def test_an_id_found_across_two_ids_of_the_string_is_not_taken_for_one() -> None:
    a, b = UUID(hex="0" * 16 + "1" * 16), UUID(hex="2" * 16 + "0" * 16)
    straddling = UUID(hex="1" * 16 + "2" * 16)

    loaded = stored(IdSet([a, b]))

    assert straddling not in loaded
    assert a in loaded
    assert b in loaded


def test_a_removed_id_is_gone_from_what_is_written() -> None:
    made = [uuid4() for _ in range(3)]
    loaded = stored(IdSet(made))

    loaded.discard(made[1])
    loaded.discard(uuid4())

    assert list(stored(loaded)) == [made[0], made[2]]


def test_the_list_of_ids_a_version_3_snapshot_wrote_reads_as_the_same_ids() -> None:
    made = [uuid4() for _ in range(3)]

    assert IdSet.from_stored([u.hex for u in made]) == set(made)


@pytest.mark.parametrize("bad", ["0" * 31, "0" * 33])
def test_a_string_that_is_not_whole_ids_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        IdSet.from_stored(bad)


def test_a_string_with_a_digit_that_is_not_hex_is_refused_when_read() -> None:
    loaded = IdSet.from_stored("g" * 32)

    with pytest.raises(ValueError):
        list(loaded)


def test_id_sets_are_not_hashable_like_a_set() -> None:
    with pytest.raises(TypeError):
        hash(IdSet())
