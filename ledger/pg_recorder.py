"""The PostgreSQL event store: no table lock, one statement per save, a reader that skips nothing.

The library's recorder makes every save take an EXCLUSIVE lock on the events table
and send NOTIFY inside the transaction, so that notification ids commit in order and
a reader tailing ids never passes over a gap that fills in later. That serialises
every writer of the database (and NOTIFY serialises commits cluster-wide).

This recorder takes neither. Each row records the id of the transaction that wrote
it (``pg_current_xact_id()``, a 64-bit xid8), and readers pass events in
``(transaction id, notification id)`` order, only from transactions below the
reading snapshot's ``xmin``: every such transaction has finished, so nothing can
later appear before the position a reader has reached. A transaction held open
holds readers back at its own events, never past them. ``LogPosition`` is that pair.

A save is one statement on an autocommit connection (its own transaction, one
round trip): one INSERT of the events, each row with its hash-chain link
(``prev_hash``, ``hash``), so a version conflict fails the whole statement on the
events' key and the library raises it as ``IntegrityError``.

Readers are woken by polling (the projection runner) or, in-process, by the
Ledger's saved listeners; nothing is sent inside the write transaction.

Databases made before this recorder lack the ``transaction_id`` column (or, made
before the links moved into the events' rows, the ``hash`` column): the recorder
refuses to start on them and ``coop-ledger migrate`` upgrades them
(``migrate_events_table`` here, ``ledger.migration``). Old rows get transaction
id 0, so they keep their id order and come before everything written afterwards.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import PoolTimeout

from ledger import pg_queue
from ledger.chain import Link
from ledger.errors import SaveOutcomeUnknown
from ledger.log import LogPosition
from ledger.migration import MigrationCheck
from ledger.pg_queue import Turn
from ledger.pg_wire import (
    BYTEA_OID,
    INT8,
    INT8_OID,
    TEXT_OID,
    UUID_OID,
    Call,
    Line,
    NoConnection,
    SaveLines,
    failure,
    int8_column,
    translated,
    uuid_bytes,
)

COLUMN = "transaction_id"
ROW_ORDER = "transaction_id, notification_id"


T = TypeVar("T")
# The one-event save's parameters: the event, its chain link, the guard's key when guarded.
EVENT_TYPES = (UUID_OID, INT8_OID, TEXT_OID, BYTEA_OID)
SAVE_TYPES = (*EVENT_TYPES, TEXT_OID, TEXT_OID)
LINK_COLUMNS_DDL = "prev_hash text, hash text"
# Columns an events table of an earlier release lacks: ``coop-ledger migrate`` adds them.
LATER_COLUMNS = (COLUMN, "hash")


def on_live_connection(datastore: PostgresDatastore, attempt: Callable[[], T]) -> T:
    """Run ``attempt``, again on a fresh connection when the one lent turned out dead.

    The pool lends connections without pinging them first (that would cost a round trip
    per command), so after a database restart each pooled connection fails once. When
    the pool has no connection to lend at all, the database is down: that is said at
    once, not after the library's ten tries 0.2 s apart, each waiting for the pool.
    """
    tries = 2 + (datastore.pool.max_size or 0)
    for n in range(tries):
        try:
            return attempt()
        except (OperationalError, InterfaceError) as error:
            if isinstance(error.__cause__, (PoolTimeout, NoConnection)) or n == tries - 1:
                raise
    raise AssertionError("unreachable")


class _FailFastReads:
    """The library's ``select_events`` without its retry decorator (see on_live_connection),
    with its SQL rendered once and its rows sent in binary (bytea as hex text doubles a
    snapshot's size on the wire and costs a parse)."""

    datastore: PostgresDatastore
    select_events_statement: Composed

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        shape = (gt is not None, lte is not None, desc, limit is not None)
        statement = self._select(shape)
        params = [originator_id, *(p for p in (gt, lte, limit) if p is not None)]

        def read() -> list[StoredEvent]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement, params, prepare=True, binary=True)
                return [self.stored_event(row) for row in curs.fetchall()]

        return on_live_connection(self.datastore, read)

    @staticmethod
    def stored_event(row: dict[str, Any]) -> StoredEvent:
        """A row of the events table, read in binary, as the library's StoredEvent."""
        return StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"],
        )

    @functools.cached_property
    def _selects(self) -> dict[tuple[bool, bool, bool, bool], str]:
        return {}  # rendered select statements by shape (see _select)

    def _select(self, shape: tuple[bool, bool, bool, bool]) -> str:
        found = self._selects.get(shape)
        if found is not None:
            return found
        gt, lte, desc, limit = shape
        text = self.select_events_statement.as_string(None)
        text += " AND originator_version > %s" if gt else ""
        text += " AND originator_version <= %s" if lte else ""
        text += " ORDER BY originator_version " + ("DESC" if desc else "ASC")
        text += " LIMIT %s" if limit else ""
        self._selects[shape] = text
        return text


class LockFreePostgresRecorder(MigrationCheck, _FailFastReads, PostgresApplicationRecorder):
    """Events with their chain links in one INSERT; a reader ordered by commit-safe positions."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(datastore.schema)
        events = Identifier(events_table_name)
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            " originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
            " topic text, state bytea, notification_id bigserial,"
            " transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),"
            f" {LINK_COLUMNS_DDL},"
            " PRIMARY KEY (originator_id, originator_version))"
        ).format(schema=schema, table=events)
        # The function the library creates for POSTGRES_ENABLE_DB_FUNCTIONS takes no lock
        # and would insert behind this recorder's back: never create it.
        del self.sql_create_statements[self.create_insert_function_statement_index]
        self.sql_create_statements.append(log_index_statement(datastore.schema, events_table_name))
        names = {"schema": schema, "events": events}

        def render(text: str) -> str:
            # Rendered once: composing SQL objects costs tens of microseconds per execution.
            return SQL(text).format(**names).as_string(None)

        # The library selects *: an aggregate's load has no use for the chain links.
        self.select_events_statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events}"
            " WHERE originator_id = %s"
        ).format(**names)
        # Each event row carries its chain link, so a save is one INSERT. Guarded saves
        # (``guard``: an advisory lock key) insert nothing while a queued writer of that
        # cooperative holds its lock (ledger.pg_queue): the queue is not overtaken.
        insert = (
            "INSERT INTO {schema}.{events}"
            " (originator_id, originator_version, topic, state, prev_hash, hash)"
        )
        guard = " WHERE pg_try_advisory_xact_lock(%s::bigint)"
        many = (
            " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[],"
            " %s::text[], %s::text[])"
        )
        one = " SELECT %s::uuid, %s::bigint, %s::text, %s::bytea, %s::text, %s::text"
        values = "(%s, %s, %s, %s, %s, %s)"

        def save_many(rows: str) -> str:
            # Ordered by id, as the events were given: RETURNING promises no order.
            return render(
                f"WITH saved AS ({insert}{rows} RETURNING notification_id)"
                " SELECT notification_id FROM saved ORDER BY notification_id"
            )

        self.save_statements = {
            (False, False): save_many(many),
            (False, True): save_many(many + guard),
            (True, False): render(f"{insert} VALUES {values} RETURNING notification_id"),
            (True, True): render(f"{insert}{one}{guard} RETURNING notification_id"),
        }
        self.landed_statement = render(
            "SELECT originator_id, originator_version, topic, state, notification_id"
            " FROM {schema}.{events} WHERE (originator_id, originator_version) IN"
            " (SELECT * FROM unnest(%s::uuid[], %s::bigint[]))"
        )
        self.read_log_statement = render(
            "SELECT transaction_id::text::bigint AS xid, notification_id, originator_id,"
            " originator_version, topic, state FROM {schema}.{events}"
            " WHERE (transaction_id, notification_id) > (%s::text::xid8, %s)"
            " AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
            " ORDER BY transaction_id, notification_id LIMIT %s"
        )
        # A queued writer's catch-up: the events after its copy, with their links' hashes,
        # so that it learns the chain's head without hashing the events again.
        self.read_after_statement = render(
            "SELECT originator_id, originator_version, topic, state, hash"
            " FROM {schema}.{events} WHERE originator_id = %s AND originator_version > %s"
            " ORDER BY originator_version"
        )
        self.covers_statement = render(
            "SELECT NOT EXISTS (SELECT 1 FROM {schema}.{events}"
            " WHERE (transaction_id, notification_id) > (%s::text::xid8, %s)"
            " AND notification_id <= %s) AS covered"
        )
        pool = datastore.pool
        conninfo = pool.conninfo if isinstance(pool.conninfo, str) else pool.conninfo()
        kwargs = pool.kwargs() if callable(pool.kwargs) else pool.kwargs
        # A save holds its connection for one statement: as many as the pool keeps open
        # serve a process's threads, waiting for each other a moment at most.
        self.lines = SaveLines(conninfo, kwargs or {}, pool.min_size, pool.timeout)
        # Queued writers wait on connections of their own: a writer waiting its turn must
        # never hold one that the writer it waits for needs. A lock wait runs out.
        wait_s = pg_queue.QUEUE_WAIT_S
        queue_kwargs = (kwargs or {}) | {"options": f"-c lock_timeout={int(wait_s * 1000)}"}
        self.turn_lines = SaveLines(conninfo, queue_kwargs, 16, wait_s)

    def close(self) -> None:
        """Close the save connections (the library's pool is closed by its datastore)."""
        self.lines.close()
        self.turn_lines.close()

    @contextlib.contextmanager
    def queue(self, key: int) -> Iterator[Turn]:
        """A place in the line of writers on ``key`` (see ledger.pg_queue); given up after."""
        with contextlib.ExitStack() as stack:
            try:
                line: Line | None = stack.enter_context(self.turn_lines.lend())
            except OperationalError:
                line = None  # none to be had: the writer races
            turn = Turn(line, key)
            stack.callback(turn.release)
            yield turn

    def read_after(self, originator_id: UUID, version: int) -> Call:
        """The read of a queued writer's turn: the events of one aggregate after ``version``."""
        params = (uuid_bytes(originator_id), INT8.pack(version))
        return Call(self.read_after_statement, (UUID_OID, INT8_OID), params, b"coop_read_after")

    def create_table(self) -> None:
        # CREATE TABLE IF NOT EXISTS would keep an old table, and its index would then fail.
        self.check_migrated()
        super().create_table()

    def missing_columns(self) -> list[str]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return missing_columns(curs, self.datastore.schema, self.events_table_name)

    # ---- writing ----------------------------------------------------------------------

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        """Save with one statement; a connection found dead is replaced and the save retried.

        The pool does not ping a connection before lending it (a round trip per command):
        a connection that died with the server fails here instead, and the save is sent
        again on another. If the first attempt had in fact committed, the retry meets its
        own rows as a version conflict: those rows are compared with ours, and when they
        are the same events the save succeeded, so it is acknowledged, never doubled.
        """
        if not stored_events:
            return []
        if kwargs.get("tracking") is not None:
            raise ProgrammingError("this recorder records no tracking with events")
        links: Sequence[Link] = kwargs.get("chain_links") or ()
        if len(links) != len(stored_events):
            raise ProgrammingError("every event is stored with its chain link")
        turn: Turn | None = kwargs.get("turn")
        sent: list[int] = []

        def attempt() -> list[int]:
            try:
                if turn is not None and turn.locked and not sent:
                    sent.append(1)
                    return self.save_in_turn(turn, stored_events, links)
                # An autocommit connection: the one statement is the whole transaction.
                line = self.lines.take()
                try:
                    sent.append(1)
                    return self.save(line, stored_events, links, kwargs.get("guard"))
                finally:
                    self.lines.give(line)
            except IntegrityError:
                landed = self._landed(stored_events) if len(sent) > 1 else None
                if landed is None:
                    raise
                return landed

        try:
            return on_live_connection(self.datastore, attempt)
        except (OperationalError, InterfaceError) as error:
            if sent:
                # A statement went out and no answer came back: it may have committed.
                raise SaveOutcomeUnknown(f"the save's outcome is unknown: {error}") from error
            raise

    def _landed(self, stored_events: Sequence[StoredEvent]) -> list[int] | None:
        """The notification ids of ``stored_events`` if exactly they are stored, else None."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self.landed_statement,
                (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                ),
            )
            rows = {(str(r["originator_id"]), r["originator_version"]): r for r in curs.fetchall()}
        ids = []
        for event in stored_events:
            row = rows.get((str(event.originator_id), event.originator_version))
            if row is None or bytes(row["state"]) != event.state or row["topic"] != event.topic:
                return None
            ids.append(int(row["notification_id"]))
        return ids

    def save(
        self,
        line: Line,
        stored_events: Sequence[StoredEvent],
        links: Sequence[Link],
        guard: int | None = None,
    ) -> list[int]:
        """Insert events with their chain links in one statement; their notification ids."""
        if len(stored_events) == 1:
            ids = self._save_one(line, stored_events[0], links[0], guard)
        else:
            ids = self._save_many(line, stored_events, links, guard)
        if not ids:
            raise IntegrityError("a queued writer of this cooperative goes first")
        return ids

    def save_in_turn(
        self, turn: Turn, stored_events: Sequence[StoredEvent], links: Sequence[Link]
    ) -> list[int]:
        """Save on the queued writer's own connection; one event also gives the turn up."""
        if turn.line is None:
            raise ProgrammingError("a save in a turn needs the turn's connection")
        if len(stored_events) != 1:
            return self.save(turn.line, stored_events, links)
        result = turn.save(self._one_call(stored_events[0], links[0], None))
        error = failure(result)
        if error is not None:
            raise error
        return int8_column(result)

    def _save_one(self, line: Line, e: StoredEvent, link: Link, guard: int | None) -> list[int]:
        # The usual command: a prepared statement run through libpq (ledger.pg_wire).
        call = self._one_call(e, link, guard)
        return line.run(call.name, call.text, call.types, call.params)

    def _one_call(self, e: StoredEvent, link: Link, guard: int | None) -> Call:
        params = [uuid_bytes(e.originator_id), INT8.pack(e.originator_version)]
        params += [e.topic.encode(), e.state, link.prev.encode(), link.hash.encode()]
        if guard is None:
            return Call(self.save_statements[True, False], SAVE_TYPES, params, b"coop_save")
        params.append(INT8.pack(guard))
        statement = self.save_statements[True, True]
        return Call(statement, (*SAVE_TYPES, INT8_OID), params, b"coop_save_guarded")

    def _save_many(
        self,
        line: Line,
        stored_events: Sequence[StoredEvent],
        links: Sequence[Link],
        guard: int | None,
    ) -> list[int]:
        params: tuple[Any, ...] = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            [link.prev for link in links],
            [link.hash for link in links],
        )
        if guard is not None:
            params = (*params, guard)
        try:
            with line.conn.cursor() as curs:
                curs.execute(self.save_statements[False, guard is not None], params, prepare=True)
                return [row["notification_id"] for row in curs.fetchall()]
        except psycopg.Error as error:
            raise translated(error) from error

    # ---- reading the log --------------------------------------------------------------

    def read_log(self, after: LogPosition, limit: int) -> list[tuple[LogPosition, Notification]]:
        """The next events after ``after`` that no running transaction can still precede."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.read_log_statement, (str(after[0]), after[1], limit), prepare=True)
            return [
                (
                    (int(row["xid"]), int(row["notification_id"])),
                    Notification(
                        id=row["notification_id"],
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    ),
                )
                for row in curs.fetchall()
            ]

    def stream_statement(self, where: str = "") -> str:
        """Every event the log can pass now, in ``read_log``'s order and bound, for one
        cursor over all of them (a rebuild); ``where`` narrows them further."""
        # Named apart from the table's columns: ORDER BY transaction_id would otherwise sort
        # by the output column of that name, the cast, which no index holds in order.
        return (
            "SELECT transaction_id::text::bigint AS xid, notification_id::bigint AS position,"
            " originator_id::text AS coop, originator_version::bigint AS version,"
            " topic::text AS topic_text, state::bytea AS state_bytes"
            f" FROM {self.datastore.schema}.{self.events_table_name}"
            f" WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()){where}"
            " ORDER BY transaction_id, notification_id"
        )

    def covers(self, after: LogPosition, notification_id: int) -> bool:
        """Whether every stored event up to ``notification_id`` lies at or before ``after``."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self.covers_statement, (str(after[0]), after[1], notification_id), prepare=True
            )
            row = curs.fetchone()
        return bool(row and row["covered"])


def log_index_statement(schema: str, events_table_name: str) -> Composed:
    return SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} ({order})").format(
        index=Identifier(events_table_name + "_log_idx"),
        schema=Identifier(schema),
        table=Identifier(events_table_name),
        order=SQL(ROW_ORDER),
    )


def missing_columns(curs: Any, schema: str, table: str) -> list[str]:
    """The LATER_COLUMNS an existing events table lacks (none when there is no table)."""
    curs.execute(
        "SELECT attname::text AS name FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (f"{schema}.{table}",),
    )
    present = {row["name"] for row in curs.fetchall()}
    return [c for c in LATER_COLUMNS if c not in present] if present else []


def predates_log(curs: Any, schema: str, table: str) -> bool:
    """Whether the events table exists without the transaction id column."""
    return COLUMN in missing_columns(curs, schema, table)


def migrate_events_table(recorder: LockFreePostgresRecorder) -> bool:
    """Give an older events table the transaction id column and index; True if it changed.

    Existing rows get transaction id 0 (a constant default is a catalogue change, not a
    table rewrite), then new rows default to their own transaction's id.
    """
    schema, table = recorder.datastore.schema, recorder.events_table_name
    with recorder.datastore.transaction(commit=True) as curs:
        if not predates_log(curs, schema, table):
            return False
        target = SQL("{schema}.{table}").format(schema=Identifier(schema), table=Identifier(table))
        curs.execute(SQL("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE").format(t=target))
        curs.execute(
            SQL("ALTER TABLE {t} ADD COLUMN transaction_id xid8 NOT NULL DEFAULT '0'").format(
                t=target
            )
        )
        curs.execute(
            SQL(
                "ALTER TABLE {t} ALTER COLUMN transaction_id SET DEFAULT pg_current_xact_id()"
            ).format(t=target)
        )
        curs.execute(log_index_statement(schema, table))
    recorder._checked = False
    return True


class PostgresSnapshotRecorder(_FailFastReads, PostgresAggregateRecorder):
    """The library's snapshot table, written with plain parameters.

    The library sends snapshots as an array of a composite type, whose text form it
    escapes with regular expressions: tens of milliseconds for a snapshot of 100 KB.
    """

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_snapshots",
        lines: SaveLines | None = None,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.lines = lines
        self.insert_statement = (
            SQL(
                "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
                " VALUES (%s, %s, %s, %s)"
            )
            .format(schema=Identifier(datastore.schema), table=Identifier(events_table_name))
            .as_string(None)
        )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """With ``lines`` (the events' save connections): each snapshot one prepared
        statement, one round trip, where the library's transaction takes three."""
        if self.lines is None:
            super().insert_events(stored_events, **kwargs)
            return
        with self.lines.lend() as line:
            for e in stored_events:
                params = [uuid_bytes(e.originator_id), INT8.pack(e.originator_version)]
                params += [e.topic.encode(), e.state]
                line.run(b"coop_snapshot", self.insert_statement, EVENT_TYPES, params)

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        curs.executemany(
            self.insert_statement,
            [(e.originator_id, e.originator_version, e.topic, e.state) for e in stored_events],
        )
