"""Rows into fresh PostgreSQL tables with COPY, sent from a thread while the fold goes on.

The fold appends rows to a list per table; after each batch of events ``ship`` hands
every list that has grown to ``CHUNK`` rows to a thread that COPYs it. The server parses
and stores one chunk on its own core while this process folds the next events (the
fresh tables have no keys yet: ``projections.fresh_keys``), and the thread waits on the
socket without the GIL. The queue between them is short, so
memory stays bounded whatever the history's length.

Each COPY is a transaction of its own (autocommit). One transaction for the whole pass
would hold an xid as long as the pass runs, and ``read_log`` reads only below the oldest
running xid on the server: every live projection would stand still until the rebuild
ended. Nobody reads the fresh tables before the switch, and the builder drops them if
the build fails (``fold_pass``, ``fold_workers``). The commits do not wait for the disk
(``synchronous_commit = off``): the switch's own commit flushes the log up to itself,
theirs included.

The rows go in COPY's binary format, each column sent as the type the fresh table has
(read from the catalog before a table's first COPY): the server parses ~20 % less for
the same rows than from text, and psycopg's binary dumpers cost this process less than
the text ones' escaping. A value of the wrong type for its column fails the COPY, so the
folds hand out str for TEXT columns and int for INTEGER and BIGINT ones, as the
handlers' SQL stores them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg

from ledger.storage import Database
from projections.fold import Row
from projections.framework import Projection

CHUNK = 2_000  # rows a COPY statement: enough to amortise its round trip
QUEUED = 2  # chunks waiting for the thread at most: each holds its rows in memory

Chunk = tuple[str, list[Row]]


class CopySink:
    """Fresh tables of ``targets``, filled from ``buffers`` (one list per logical table)."""

    def __init__(
        self,
        db: Database,
        targets: Sequence[tuple[Projection, Mapping[str, str]]],
        columns: Mapping[str, Sequence[str]],
        *,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        """``ready``: waited for before the first COPY, True once the fresh tables exist."""
        self.conn = psycopg.connect(db.config.conninfo, autocommit=True)
        try:
            self.conn.execute("SET synchronous_commit = off")
        except BaseException:
            self.conn.close()
            raise
        self.tables = {logical: fresh[logical] for _, fresh in targets for logical in fresh}
        self.columns = {logical: tuple(columns[logical]) for logical in self.tables}
        self.statements = {
            logical: f"COPY {table} ({', '.join(self.columns[logical])}) FROM STDIN (FORMAT BINARY)"
            for logical, table in self.tables.items()
        }
        self.types: dict[str, list[int]] = {}
        self.buffers: dict[str, list[Row]] = {logical: [] for logical in self.statements}
        self.queue: queue.Queue[Chunk | None] = queue.Queue(QUEUED)
        self.error: BaseException | None = None
        self.ready = ready
        self.thread = threading.Thread(target=self._send, name="rebuild-copy", daemon=True)
        self.thread.start()

    def ship(self, chunk: int = CHUNK) -> None:
        """Hand every buffer of at least ``chunk`` rows to the thread (an error it met, raised)."""
        if self.error is not None:
            raise self.error
        for logical, rows in self.buffers.items():
            if rows and len(rows) >= chunk:
                self.queue.put((logical, rows[:]))
                rows.clear()  # the same list: the folds hold it

    def _send(self) -> None:
        with self.conn.cursor() as cur:
            while (item := self.queue.get()) is not None:
                if self.ready is not None and self.error is None:
                    if not self.ready():
                        self.error = RuntimeError("the fresh tables could not be created")
                    self.ready = None
                if self.error is not None:
                    continue  # drain, so that ship() never blocks on a dead thread
                logical, rows = item
                try:
                    types = self.types.get(logical)
                    if types is None:
                        types = self.types[logical] = self._types(cur, logical)
                    with cur.copy(self.statements[logical]) as copy:
                        copy.set_types(types)
                        write = copy.write_row
                        for row in rows:
                            write(row)
                except BaseException as error:
                    self.error = error

    def _types(self, cur: psycopg.Cursor[Any], logical: str) -> list[int]:
        """The types of the columns a COPY into ``logical`` sends, as the fresh table has them."""
        cur.execute(
            "SELECT attname, atttypid FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (self.tables[logical],),
        )
        found = {str(name): int(oid) for name, oid in cur.fetchall()}
        return [found[column] for column in self.columns[logical]]

    def close(self, *, complete: bool) -> None:
        """Send what is left (``complete``) or drop it; the connection is closed."""
        try:
            if complete and self.error is None:
                self.ship(chunk=1)
        finally:
            self.queue.put(None)
            self.thread.join()
            self.conn.close()
        if complete and self.error is not None:
            raise self.error
