"""Saves sent through libpq directly: prepared once per connection, binary parameters.

A command's save is the same statement again and again. Through a psycopg cursor and
the library's pool it costs ~85 us of client CPU (the pool's lending, query conversion,
the prepare manager, the non-blocking wait loop); the same statement prepared once and
run with ``PGconn.exec_prepared`` costs ~30 us, and the blocking call releases the GIL
while the server works. So saves keep connections of their own (``SaveLines``), apart
from the library's pool, which still serves every read.

Errors come back as the library's exceptions, classified as its datastore does, so a
version conflict is still an ``IntegrityError`` and a lost connection an
``OperationalError``.
"""

from __future__ import annotations

import queue
import select
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import OperationalError, PersistenceError
from psycopg import pq
from psycopg.rows import dict_row

from ledger.dbapi import persistence_error

INT8 = struct.Struct(">q")
# Parameter types by OID, so the server never has to infer them.
UUID_OID, INT8_OID, TEXT_OID, BYTEA_OID = 2950, 20, 25, 17
BINARY = 1
# As plain ints: comparing a result's status with the enums' members costs more.
OK_STATUSES = (int(pq.ExecStatus.TUPLES_OK), int(pq.ExecStatus.COMMAND_OK))
CONNECTION_OK = int(pq.ConnStatus.OK)


class NoConnection(Exception):
    """No save connection could be had: the database is down or every one is lent."""


def translated(error: psycopg.Error) -> PersistenceError:
    """``error`` as the library's datastore would raise it."""
    return persistence_error(error, psycopg)


def dollar_params(text: str) -> str:
    """``%s`` placeholders as libpq's ``$1, $2, ...`` (the statements hold no other ``%``)."""
    parts = text.split("%s")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


def uuid_bytes(value: UUID | str) -> bytes:
    return value.bytes if isinstance(value, UUID) else UUID(value).bytes


@dataclass(frozen=True)
class Call:
    """One statement for ``Line.each``: prepared under ``name`` when it has one."""

    text: str
    types: Sequence[int]
    params: Sequence[bytes]
    name: bytes = b""


class Line:
    """One autocommit connection kept for saves, with the statements prepared on it."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.prepared: set[bytes] = set()

    @property
    def broken(self) -> bool:
        return self.conn.closed or self.conn.pgconn.status != CONNECTION_OK

    def run(
        self, name: bytes, text: str, types: Sequence[int], params: Sequence[bytes]
    ) -> list[int]:
        """Run the prepared statement ``name`` (prepared from ``text`` on first use here);
        the first column of its rows, each a bigint."""
        pgconn = self.conn.pgconn
        try:
            if name not in self.prepared:
                self._check(pgconn.prepare(name, dollar_params(text).encode(), types))
                self.prepared.add(name)
            result = pgconn.exec_prepared(name, params, [BINARY] * len(params), BINARY)
            self._check(result)
        except psycopg.Error as error:
            raise translated(error) from error
        return [INT8.unpack(result.get_value(row, 0) or b"")[0] for row in range(result.ntuples)]

    def each(self, calls: Sequence[Call]) -> list[pq.abc.PGresult]:
        """Run ``calls`` in one round trip, each its own transaction; one result each.

        A libpq pipeline with a Sync after every statement: a statement that fails does
        not stop the ones after it (an unlock always runs), and each one sees what the
        ones before it committed. Waiting happens in ``select``, without the GIL.
        """
        pgconn = self.conn.pgconn
        try:
            for call in calls:
                if call.name and call.name not in self.prepared:
                    text = dollar_params(call.text).encode()
                    self._check(pgconn.prepare(call.name, text, call.types))
                    self.prepared.add(call.name)
            pgconn.enter_pipeline_mode()
            for call in calls:
                formats = [BINARY] * len(call.params)
                if call.name:
                    pgconn.send_query_prepared(call.name, call.params, formats, BINARY)
                else:
                    text = dollar_params(call.text).encode()
                    pgconn.send_query_params(text, call.params, call.types, formats, BINARY)
                pgconn.pipeline_sync()
            _flush(pgconn)
            results = _collect(pgconn, len(calls))
            pgconn.exit_pipeline_mode()
        except psycopg.Error as error:
            # Left mid-pipeline, the connection cannot be trusted with the next save.
            self.close()
            raise translated(error) from error
        return results

    def _check(self, result: pq.abc.PGresult) -> None:
        if result.status in OK_STATUSES:
            return
        if self.conn.pgconn.status != CONNECTION_OK:
            raise psycopg.OperationalError(self.conn.pgconn.get_error_message())
        raise psycopg.errors.error_from_result(result)

    def close(self) -> None:
        self.conn.close()


def failure(result: pq.abc.PGresult) -> PersistenceError | None:
    """The error ``result`` reports, as the library's exception; None if it succeeded."""
    if result.status in OK_STATUSES:
        return None
    return translated(psycopg.errors.error_from_result(result))


def int8_column(result: pq.abc.PGresult) -> list[int]:
    if result.ntuples == 1:  # a one-event save
        return [INT8.unpack(result.get_value(0, 0) or b"")[0]]
    return [INT8.unpack(result.get_value(row, 0) or b"")[0] for row in range(result.ntuples)]


def _flush(pgconn: pq.abc.PGconn) -> None:
    while pgconn.flush():
        select.select([], [pgconn.socket], [])


def _collect(pgconn: pq.abc.PGconn, count: int) -> list[pq.abc.PGresult]:
    """The first result of each of ``count`` statements, each followed by its Sync."""
    found: list[pq.abc.PGresult] = []
    current: pq.abc.PGresult | None = None
    while len(found) < count:
        pgconn.consume_input()
        if pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            continue
        result = pgconn.get_result()
        if result is None:
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            if current is None:
                raise psycopg.OperationalError("a pipeline Sync came without its statement")
            found.append(current)
            current = None
        elif current is None:
            current = result
    return found


class SaveLines:
    """A free list of save connections: opened when needed, at most ``size`` lent at once.

    The library's pool checks and resets a connection on every lend and return (~20 us);
    a save connection is autocommit and never left inside a transaction, so lending it
    is a list pop. One found broken after use is closed and not lent again.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], size: int, timeout: float) -> None:
        self.conninfo = conninfo
        self.kwargs = {k: v for k, v in kwargs.items() if k != "row_factory"}
        self.size = max(1, size)
        self.timeout = timeout
        self._idle: list[Line] = []
        # One token per connection that may be lent: a C queue, where threading's
        # semaphores are Python code around a condition (~5 us a lend, measured).
        self._slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(self.size):
            self._slots.put(None)

    def take(self) -> Line:
        """A connection for one save; give it back with ``give``, whatever happens."""
        try:
            self._slots.get(timeout=self.timeout)
        except queue.Empty:
            message = f"no save connection free after {self.timeout:.2f} s"
            raise OperationalError(message) from NoConnection(message)
        try:
            return self._idle.pop()
        except IndexError:
            pass
        try:
            return self._connect()
        except BaseException:
            self._slots.put(None)
            raise

    def give(self, line: Line) -> None:
        if line.broken:
            line.close()
        else:
            self._idle.append(line)
        self._slots.put(None)

    @contextmanager
    def lend(self) -> Iterator[Line]:
        line = self.take()
        try:
            yield line
        finally:
            self.give(line)

    def _connect(self) -> Line:
        try:
            conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, round(self.timeout)),
                **self.kwargs,
            )
        except psycopg.Error as error:
            message = f"no save connection: {error}"
            raise OperationalError(message) from NoConnection(message)
        return Line(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
