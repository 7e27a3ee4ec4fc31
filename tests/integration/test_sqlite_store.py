"""The SQLite recorder's own save path (``ledger.sqlite_writer``): all of a save or none."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteDatastore

from ledger import Ledger, StoreConfig
from ledger.chain import GENESIS, Link, chain_links
from ledger.errors import SaveOutcomeUnknown
from ledger.sqlite_recorder import ChainedSQLiteRecorder
from ledger.sqlite_writer import SQLITE_IOERR, SQLiteWriter
from tests.conftest import build_sqlite_url
from tests.integration.support import Clock, World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    ledger = Ledger(StoreConfig.from_url(build_sqlite_url(tmp_path / "l.sqlite3")), clock=clock)
    yield World.create(ledger, clock)
    ledger.close()


def recorder_of(world: World) -> ChainedSQLiteRecorder:
    assert isinstance(world.ledger.recorder, ChainedSQLiteRecorder)
    return world.ledger.recorder


def event(coop_id: UUID, version: int, state: bytes = b"{}") -> StoredEvent:
    return StoredEvent(coop_id, version, "ledger.cooperative:Cooperative.Test", state)


def links_for(events: list[StoredEvent], head: str = GENESIS) -> list[Link]:
    first = events[0]
    heads = {UUID(str(first.originator_id)): head} if first.originator_version > 1 else {}
    return chain_links(events, heads, {})


def rows(recorder: ChainedSQLiteRecorder, coop_id: UUID, where: str = "") -> list[int]:
    """The stored versions of ``coop_id`` (``where``: a further condition)."""
    with sqlite3.connect(recorder.datastore.pool.db_name) as conn:
        found = conn.execute(
            f"SELECT originator_version FROM {recorder.events_table_name}"
            f" WHERE originator_id = ?{where} ORDER BY originator_version",
            (coop_id.hex,),
        ).fetchall()
    return [version for (version,) in found]


def linked(recorder: ChainedSQLiteRecorder, coop_id: UUID) -> list[int]:
    """The stored versions of ``coop_id`` that hold a chain link."""
    return rows(recorder, coop_id, " AND prev_hash IS NOT NULL AND hash IS NOT NULL")


def test_a_save_on_a_taken_version_stores_nothing_not_even_a_link(world: World) -> None:
    recorder = recorder_of(world)
    coop_id = uuid4()
    first = [event(coop_id, 1), event(coop_id, 2)]
    first_links = links_for(first)
    ids = recorder.insert_events(first, chain_links=first_links)
    assert ids is not None
    assert len(ids) == 2
    assert ids[1] == ids[0] + 1
    # A new version 3 saved with a version 2 that is taken: neither, and no link for 3.
    late = [event(coop_id, 3), event(coop_id, 2, b'{"other": 1}')]
    with pytest.raises(IntegrityError):
        recorder.insert_events(late, chain_links=links_for(late, first_links[-1].hash))
    assert linked(recorder, coop_id) == rows(recorder, coop_id) == [1, 2]
    # The connection is usable again, and the next save gets the next notification id.
    again = recorder.insert_events(
        [event(coop_id, 3)], chain_links=links_for([event(coop_id, 3)], first_links[-1].hash)
    )
    assert again == [recorder.max_notification_id()]
    assert linked(recorder, coop_id) == [1, 2, 3]


def test_events_without_a_link_each_are_refused_and_nothing_of_them_is_stored(
    world: World,
) -> None:
    recorder = recorder_of(world)
    coop_id = uuid4()
    saved = [event(coop_id, 1)]
    recorder.insert_events(saved, chain_links=links_for(saved))
    before = recorder.max_notification_id()
    two = [event(coop_id, 2), event(coop_id, 3)]
    for links in ([], links_for(two)[:1]):
        with pytest.raises(ProgrammingError, match="chain link"):
            recorder.insert_events(two, chain_links=links)
    assert rows(recorder, coop_id) == [1]
    assert recorder.max_notification_id() == before


def test_the_write_connection_syncs_the_log_at_every_commit(world: World) -> None:
    recorder = recorder_of(world)
    assert recorder.writer is not None
    seen: list[tuple[str, int]] = []

    def look(cursor: sqlite3.Cursor) -> None:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
        seen.append((mode, synchronous))

    recorder.writer.write(look)
    assert seen == [("wal", 2)], "WAL, synchronous=FULL: a returned save survives a power cut"


def test_events_and_snapshots_share_one_writer(world: World) -> None:
    recorder = recorder_of(world)
    snapshots = world.ledger.snapshots
    assert snapshots is not None
    assert getattr(snapshots.recorder, "writer", None) is recorder.writer is not None


class FailingCommit(sqlite3.Connection):
    """A connection whose COMMIT fails with ``code`` (after doing nothing)."""

    code = SQLITE_IOERR | (4 << 8)  # SQLITE_IOERR_FSYNC

    def cursor(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        return super().cursor(FailingCommitCursor)


class FailingCommitCursor(sqlite3.Cursor):
    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            error = sqlite3.OperationalError("disk I/O error")
            error.sqlite_errorcode = FailingCommit.code
            raise error
        return super().execute(sql, *args)


@pytest.mark.parametrize(
    ("code", "raised"),
    [(SQLITE_IOERR | (4 << 8), SaveOutcomeUnknown), (5, OperationalError)],  # 5: SQLITE_BUSY
    ids=["io-error: outcome unknown", "busy: not recorded"],
)
def test_a_commit_that_fails_says_whether_the_save_may_have_landed(
    tmp_path: Path, code: int, raised: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(StoreConfig.from_url(build_sqlite_url(tmp_path / "f.sqlite3")))
    try:
        recorder = ledger.recorder
        assert isinstance(recorder, ChainedSQLiteRecorder)
        assert recorder.writer is not None
        recorder.writer.close()
        monkeypatch.setattr(FailingCommit, "code", code)
        recorder.writer.connection_class = FailingCommit
        coop_id = uuid4()
        saved = [event(coop_id, 1)]
        with pytest.raises(raised) as caught:
            recorder.insert_events(saved, chain_links=links_for(saved))
        if raised is OperationalError:
            assert not isinstance(caught.value, SaveOutcomeUnknown)
        # Here the COMMIT never ran, so the transaction was rolled back: nothing is stored.
        assert rows(recorder, coop_id) == []
    finally:
        ledger.close()


def test_a_forked_child_saves_on_a_connection_of_its_own(tmp_path: Path) -> None:
    path = str(tmp_path / "w.sqlite3")
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    writer = SQLiteWriter(path, timeout=5)
    writer.write(lambda cursor: cursor.execute("INSERT INTO t VALUES (1)"))
    # Forked while the lock is held, as when another thread of the parent is saving.
    with writer._lock:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            signal.alarm(10)  # a child stuck on the parent's lock dies instead of hanging
            try:
                writer.write(lambda cursor: cursor.execute("INSERT INTO t VALUES (2)"))
            except BaseException:
                os._exit(1)
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.write(lambda cursor: cursor.execute("INSERT INTO t VALUES (3)"))
    writer.close()
    with sqlite3.connect(path) as check:
        assert [n for (n,) in check.execute("SELECT n FROM t ORDER BY n")] == [1, 2, 3]


def test_a_transaction_left_open_is_rolled_back_not_committed_by_the_next_save(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "w.sqlite3")
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    writer = SQLiteWriter(path, timeout=5)
    writer.write(lambda cursor: cursor.execute("INSERT INTO t VALUES (1)"))
    conn = writer._conn
    assert conn is not None
    # What a save interrupted inside COMMIT (by a signal, say) could leave behind.
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (99)")
    writer.write(lambda cursor: cursor.execute("INSERT INTO t VALUES (2)"))
    writer.close()
    with sqlite3.connect(path) as check:
        assert [n for (n,) in check.execute("SELECT n FROM t ORDER BY n")] == [1, 2]


def test_an_in_memory_store_saves_through_the_librarys_path_with_the_same_guarantees() -> None:
    datastore = SQLiteDatastore(f"file:{uuid4().hex}?mode=memory&cache=shared")
    try:
        recorder = ChainedSQLiteRecorder(datastore)
        recorder.create_table()
        assert recorder.writer is None
        coop_id = uuid4()
        first = [event(coop_id, 1)]
        first_links = links_for(first)
        assert recorder.insert_events(first, chain_links=first_links) == [1]
        late = [event(coop_id, 2), event(coop_id, 1)]
        with pytest.raises(IntegrityError):
            recorder.insert_events(late, chain_links=links_for(late, first_links[0].hash))
        assert [e.originator_version for e in recorder.select_events(coop_id)] == [1]
        with datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {recorder.events_table_name} WHERE hash IS NOT NULL")
            assert c.fetchone()[0] == 1
    finally:
        datastore.close()
