"""The Ledger application: one method per use case.

Each command loads the cooperative, lets the aggregate check its rules and
record its events, and saves them. Two commands on one cooperative at once are
ordered by its version: the loser of a race gets a version conflict, and the
whole command (load, check, record) runs again on the fresh state, a bounded
number of times. Commands of this process's threads that wait for the same
cooperative are run one after the other and saved together (ledger.combine).
Time comes from an injected clock.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeVar, cast
from uuid import UUID, uuid4

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    Notification,
    Recording,
    Transcoder,
)
from eventsourcing.sqlite import SQLiteFactory

from ledger.chain import Link, chain_links
from ledger.combine import Act, Combiner, Job, RunAlone
from ledger.cooperative import STATE_TYPES, Cooperative
from ledger.errors import (
    ChainBroken,
    ConcurrencyConflict,
    CooperativeNotFound,
    InvalidInput,
    RuleViolation,
    StaleVersion,
)
from ledger.hours import Hours
from ledger.idset import IdSet
from ledger.log import EventLog
from ledger.mapper import TypedMapper
from ledger.people import PeopleRegistry, Person
from ledger.pg_queue import Turn
from ledger.pg_recorder import LockFreePostgresRecorder, PostgresSnapshotRecorder
from ledger.records import Records
from ledger.rules import MAX_MEMBERS, DecisionRules, ProposalKind, VoteChoice, parse_kind
from ledger.sqlite_recorder import ChainedSQLiteRecorder
from ledger.sqlite_recorder import snapshot_recorder as sqlite_snapshot_recorder
from ledger.state import ENUM_TYPES, VALUE_TYPES, FoundingMember, SplitPlan
from ledger.storage import Database, StoreConfig
from ledger.transcoder import OrjsonTranscoder

Clock = Callable[[], datetime]
T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_VOTING_PERIOD = timedelta(days=7)
# After this many lost races in one command, all commands on that cooperative in this
# process queue (PostgreSQL) for CONTENDED_FOR_S: racing is cheaper until then. A queued
# command that finds others' events on its turn renews that time: the contention goes on.
QUEUE_ALL_AFTER = 3
# A queued command that lost this many races takes priority: writers that do not queue
# give way to it (their save inserts nothing while it holds the priority key).
PRIORITY_AFTER = 6
CONTENDED_FOR_S = 2.0
# Snapshots are for loads: a load that replays the snapshot interval or more writes one
# (see _snapshot_long_tail). A save writes one only every SAVE_SPACING intervals, which
# bounds what a load replays after a long run of saves from cached copies that nobody
# loaded in between, at an eighth of what a snapshot every interval cost the writers.
SAVE_SPACING = 8
GROUP_SIZE = 6


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RecordedEvent:
    cooperative_id: UUID
    version: int
    name: str
    position: int


@dataclass(frozen=True)
class Readers:
    """Who may read a cooperative's internals at its ``version``: members and the mentor."""

    version: int
    members: frozenset[UUID]
    mentor_id: UUID | None

    def admit(self, person_id: UUID) -> bool:
        return person_id in self.members or person_id == self.mentor_id


@dataclass(frozen=True)
class Receipt:
    """What a member keeps: the cooperative's chain head at a version (see ledger.chain)."""

    cooperative_id: UUID
    version: int
    chain_head: str


@dataclass(frozen=True)
class CommandResult:
    """What a command recorded: the cooperative's new version and the position of its last event."""

    cooperative_id: UUID
    version: int
    position: int
    events: tuple[RecordedEvent, ...]
    receipt: Receipt
    value: Any = None


def queue_key(cooperative_id: UUID) -> int:
    """The advisory lock key of a cooperative's queue of writers (a signed 64-bit int)."""
    return (cooperative_id.int >> 64) - (1 << 63)


def priority_key(cooperative_id: UUID) -> int:
    """The key a starving queued writer holds so that writers who race give way to it."""
    return queue_key(cooperative_id) ^ 1


class CooperativeRepository(Repository[UUID]):
    """The library's repository, replaying events without a runtime protocol check each.

    ``isinstance`` against a runtime-checkable protocol costs tens of microseconds per
    event (more than decoding it); every event in a Ledger's store is a Cooperative's.
    ``after_load`` hears of every aggregate loaded from storage, with the number of
    events replayed after its snapshot.
    """

    after_load: Callable[[Any, int], None] | None = None

    def _reconstruct_aggregate(self, aggregate_id: UUID, version: int | None, _: Any) -> Any:
        replayed = 0

        def counted(aggregate: Any, events: Iterable[Any]) -> Any:
            nonlocal replayed
            for event in events:
                aggregate = event.mutate(aggregate)
                if type(event) is not Cooperative.Snapshot:
                    replayed += 1
            return aggregate

        aggregate = super()._reconstruct_aggregate(aggregate_id, version, counted)
        if self.after_load is not None:
            self.after_load(aggregate, replayed)
        return aggregate


def make_transcoder() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    for cls in (*VALUE_TYPES, *ENUM_TYPES):
        transcoder.register(cls)
    transcoder.register_value(Hours, "ledger.hours:Hours", Hours.to_columns, Hours.from_columns)
    transcoder.register_value(IdSet, "ledger.idset:IdSet", IdSet.to_stored, IdSet.from_stored)
    # Where no type is declared (the older tagged form): its items, each value tagged.
    transcoder.register_value(
        Records,
        "ledger.records:Records",
        lambda records: transcoder.to_native(list(records.items())),
        lambda items: Records(tuple(item) for item in transcoder.from_native(items)),
    )
    transcoder.declare(Cooperative, STATE_TYPES)
    return transcoder


def snapshot_step(coop: Cooperative, interval: int) -> int:
    """Events between snapshots: ``interval``, doubled for each doubling of a large state.

    A snapshot costs time in proportion to the open business it holds (mostly hours not
    yet invoiced); taken every ``interval`` events, a cooperative with thousands of such
    entries would spend most of each command writing snapshots. Spacing them out as the
    state grows keeps that cost per command flat. Deterministic, so every process agrees.
    """
    weight = len(coop.hours) + len(coop.work) + 20 * len(coop.proposals) + len(coop.invoices)
    return interval << (weight // 512).bit_length()


def balanced_chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in ceil(n/size) consecutive chunks whose sizes differ by at most one."""
    if not items:
        return []
    parts = math.ceil(len(items) / size)
    base, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for i in range(parts):
        end = start + base + (1 if i < extra else 0)
        chunks.append(list(items[start:end]))
        start = end
    return chunks


class LinkedProcessing(ProcessingEvent[UUID]):
    """A save's events, and once recorded, their chain links."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[Link] = []


class Ledger(Application[UUID]):
    """The write side of coop-ledger."""

    name = "coop_ledger"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Cooperative: 50}

    def __init__(
        self,
        config: StoreConfig | None = None,
        *,
        clock: Clock = utc_now,
        max_attempts: int = 16,
        snapshot_interval: int | None = None,
        env: dict[str, str] | None = None,
        check_store: bool = True,
    ) -> None:
        self.config = config or StoreConfig.from_env()
        self.clock = clock
        self.max_attempts = max_attempts
        super().__init__(env=self.config.library_env() | (env or {}))
        interval = snapshot_interval or int(self.env.get("COOP_LEDGER_SNAPSHOT_INTERVAL") or 50)
        # The library reads the interval through the instance; the class value is only a default.
        self.snapshotting_intervals = {Cooperative: interval}  # type: ignore[misc]
        if check_store and hasattr(self.recorder, "check_migrated"):
            self.recorder.check_migrated()
        pool = getattr(getattr(self.recorder, "datastore", None), "pool", None)
        if pool is not None:
            # Reconnect within seconds of a database restart, not after doubling waits.
            pool.reconnect_timeout = 2.0
        self.db = Database(self.config)
        self.people = PeopleRegistry(self.db)
        # Reads for people (not commands) must see other processes' writes: no cache.
        self.storage: Repository[UUID] = CooperativeRepository(
            self.events, snapshot_store=self.snapshots
        )
        self.repository.after_load = self.storage.after_load = self._snapshot_long_tail  # type: ignore[attr-defined]
        # Called with the last position after every save, e.g. to wake projections in-process.
        self.saved_listeners: list[Callable[[int], None]] = []
        self._combiner: Combiner[CommandResult] = Combiner()
        # Who may read each cooperative, by version: a read checks one stored version only.
        self._readers: dict[UUID, Readers] = {}
        # Cooperatives that lost a race lately, with when their queueing ends (monotonic).
        self._contended: dict[UUID, float] = {}
        # Chain heads just written, by cooperative: (version, hash). Saves a lookup per command.
        self.heads: dict[UUID, tuple[int, str]] = {}
        # Saves that met a version conflict (each one an attempt run again), for figures.
        self.lost_races = 0

    def construct_snapshot_store(self) -> EventStore[UUID]:
        if self.config.kind != "postgresql":
            # SQLite: written through the events' connection and lock (ledger.sqlite_writer).
            snapshots = sqlite_snapshot_recorder(cast(SQLiteFactory, self.factory))
            return self.factory.event_store(mapper=self.mapper, recorder=snapshots)
        events = cast(LockFreePostgresRecorder, self.recorder)
        recorder = PostgresSnapshotRecorder(
            events.datastore, events_table_name=f"{self.name.lower()}_snapshots", lines=events.lines
        )
        if self.factory.env_create_table():  # type: ignore[attr-defined]
            recorder.create_table()
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    @property
    def event_log(self) -> EventLog:
        """The events in an order that no later commit can precede (see ledger.log)."""
        return cast(EventLog, self.recorder)

    def construct_transcoder(self) -> Transcoder:
        return make_transcoder()

    def construct_repository(self) -> Repository[UUID]:
        # The library's, as configured by the environment, replaying without protocol checks.
        repository = super().construct_repository()
        repository.__class__ = CooperativeRepository
        return repository

    def construct_mapper(self) -> Mapper[UUID]:
        return TypedMapper(make_transcoder())

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save for our aggregates, without its runtime protocol checks.

        ``isinstance`` against the library's runtime-checkable protocols costs tens of
        microseconds per command; a Ledger only ever saves Cooperative aggregates.
        """
        return self._save(*objs, **kwargs)[0]

    def _save(self, *objs: Any, **kwargs: Any) -> tuple[list[Recording[UUID]], list[Link]]:
        """``save``, and the saved events' chain links in the same order."""
        processing_event = LinkedProcessing()
        for aggregate in objs:
            if aggregate is None:
                continue
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        turn: Turn | None = kwargs.get("turn")
        if turn is not None:
            # The next queued writer may go as soon as the events are stored (a one-event
            # save already gave the turn up); the snapshot and the result are ours alone.
            turn.release()
        try:
            self._take_snapshots(processing_event)
        except Exception:
            # The events are recorded: failing the command now would have its caller run it
            # again. A snapshot is only a shortcut; the next one will be taken in its turn.
            log.warning("a snapshot was not written", exc_info=True)
        self._notify(recordings)
        return recordings, processing_event.links

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        # The library's EventStore.put, plus the hash chain's links in the same transaction.
        events = processing_event.events
        stored = [self.mapper.to_stored_event(e) for e in events]
        heads, parents = self._heads_before(events)
        links = chain_links(stored, heads, parents)
        ids = self.recorder.insert_events(
            stored,
            tracking=processing_event.tracking,
            chain_links=links,
            **processing_event.saved_kwargs,
        )
        for link in links:
            self.heads[link.originator_id] = (link.version, link.hash)
        if isinstance(processing_event, LinkedProcessing):
            processing_event.links = links
        if len(self.heads) > 10_000:
            self.heads.clear()
        return [
            Recording(
                event, Notification(s.originator_id, s.originator_version, s.topic, s.state, n)
            )
            for event, s, n in zip(events, stored, ids or (), strict=True)
        ]

    def _heads_before(self, events: Sequence[Any]) -> tuple[dict[UUID, str], dict[UUID, UUID]]:
        heads: dict[UUID, str] = {}
        parents: dict[UUID, UUID] = {}
        for event in events:
            coop_id = event.originator_id
            if coop_id in heads or coop_id in parents:
                continue
            if isinstance(event, Cooperative.SplitOff):
                parents[coop_id] = event.parent_id
            elif event.originator_version > 1:
                heads[coop_id] = self.chain_head(coop_id, event.originator_version - 1)
        return heads, parents

    def forget(self, cooperative_id: UUID) -> None:
        """Drop a cached copy that may be stale or half-changed; the next load reads storage."""
        cache = self.repository.cache
        if cache is not None:
            with contextlib.suppress(KeyError):
                cache.get(cooperative_id, evict=True)

    def chain_head(self, cooperative_id: UUID, version: int) -> str:
        """The hash of the chain link of ``cooperative_id`` at ``version``."""
        cached = self.heads.get(cooperative_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        with self.db.read() as cur:
            cur.execute(
                f"SELECT hash FROM {self.events_table}"
                " WHERE originator_id = ? AND originator_version = ?",
                (self.event_key(cooperative_id), version),
            )
            row = cur.fetchone()
        if row is None or row[0] is None:
            raise ChainBroken(f"no chain link for {cooperative_id} at version {version}")
        head: str = row[0]
        return head

    @property
    def events_table(self) -> str:
        """The events table (each row an event and its chain link) as our SQL spells it."""
        return self.db.table(self.recorder.events_table_name)  # type: ignore[attr-defined]

    def event_key(self, cooperative_id: UUID) -> str:
        """A cooperative's id as the events table stores it: the library keeps bare hex
        on SQLite, PostgreSQL's uuid column takes the canonical text."""
        return cooperative_id.hex if self.config.kind == "sqlite" else str(cooperative_id)

    def receipt(self, cooperative_id: UUID, version: int) -> Receipt:
        return Receipt(cooperative_id, version, self.chain_head(cooperative_id, version))

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            last = recordings[-1].notification.id
            for listener in self.saved_listeners:
                listener(last)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # The library reloads the aggregate to snapshot it; the one just saved is at hand.
        if self.snapshots is None:
            return
        saved: dict[UUID, int] = {}
        for event in processing_event.events:
            saved[event.originator_id] = saved.get(event.originator_id, 0) + 1
        for aggregate_id, count in saved.items():
            aggregate = processing_event.aggregates.get(aggregate_id)
            interval = self.snapshotting_intervals.get(type(aggregate), 0) * SAVE_SPACING
            if not isinstance(aggregate, Cooperative) or not interval:
                continue
            # A step is the interval doubled some times: none is due unless a multiple of
            # the interval was just passed (and the state need not be weighed until then).
            if aggregate.version // interval == (aggregate.version - count) // interval:
                continue
            step = snapshot_step(aggregate, interval)
            if aggregate.version // step > (aggregate.version - count) // step:
                self.snapshots.put([Cooperative.Snapshot.take(aggregate)])

    def _snapshot_long_tail(self, coop: Cooperative, replayed: int) -> None:
        """Snapshot a cooperative whose load replayed a step of events or more after its
        last snapshot (at the version loaded: a past one's state is as true as the last)."""
        interval = self.snapshotting_intervals.get(Cooperative, 0)
        if self.snapshots is None or not interval or replayed < interval:
            return
        if replayed < snapshot_step(coop, interval):
            return
        try:
            self.snapshots.put([Cooperative.Snapshot.take(coop)])
        except IntegrityError:
            pass  # another load wrote the same one
        except Exception:
            # The load itself succeeded; a snapshot is only a shortcut for the next one.
            log.warning("a snapshot was not written", exc_info=True)

    def close(self) -> None:
        if isinstance(self.recorder, ChainedSQLiteRecorder):
            self.recorder.close()  # its own write connection, which the library does not know
        self.db.close()
        if isinstance(self.recorder, LockFreePostgresRecorder):
            self.recorder.close()
        super().close()

    # ---- reading --------------------------------------------------------------------

    def readers(self, cooperative_id: UUID) -> Readers:
        """Who may read the cooperative now: one indexed lookup of its last version, and a
        load from storage only when that version is new to this process."""
        last = self.recorder.select_events(cooperative_id, desc=True, limit=1)
        if not last:
            raise CooperativeNotFound(f"no cooperative {cooperative_id}", field="cooperative_id")
        known = self._readers.get(cooperative_id)
        if known is not None and known.version == last[0].originator_version:
            return known
        coop = self.get_cooperative(cooperative_id)
        known = Readers(coop.version, frozenset(coop.members), coop.mentor_id)
        if len(self._readers) > 10_000:
            self._readers.clear()
        self._readers[cooperative_id] = known
        return known

    def get_cooperative(self, cooperative_id: UUID, version: int | None = None) -> Cooperative:
        """The cooperative as stored now (or at ``version``), never a cached copy."""
        return self._load(self.storage, cooperative_id, version)

    def _load(
        self, repository: Repository[UUID], cooperative_id: UUID, version: int | None = None
    ) -> Cooperative:
        try:
            coop: Cooperative = repository.get(cooperative_id, version=version)
        except AggregateNotFoundError:
            raise CooperativeNotFound(
                f"no cooperative {cooperative_id}", field="cooperative_id"
            ) from None
        return coop

    # ---- the command loop -----------------------------------------------------------

    def _command(
        self,
        cooperative_id: UUID,
        act: Act,
        expected_version: int | None = None,
    ) -> CommandResult:
        # The cached aggregate is used without a copy: the combiner gives one thread at a
        # time sole use of it in this process, and any failure evicts it. That thread runs
        # every command waiting for the cooperative (see ledger.combine); a command pinned
        # to a version cannot share a save with commands that move it.
        return self._combiner.run(
            cooperative_id,
            Job(act),
            lambda jobs: self._run(cooperative_id, jobs, expected_version),
            alone=expected_version is not None,
        )

    def _run(
        self,
        cooperative_id: UUID,
        jobs: list[Job[CommandResult]],
        expected_version: int | None = None,
    ) -> None:
        """Bring each of ``jobs`` to its outcome: saved (together), refused or failed.

        Never raises for a job: each caller raises its own error from its job.
        """
        pending, attempt = jobs, 0
        alone: list[Job[CommandResult]] = []
        try:
            while pending:
                if attempt >= self.max_attempts:
                    raise ConcurrencyConflict(
                        f"cooperative {cooperative_id} kept changing; "
                        f"gave up after {self.max_attempts} attempts"
                    )
                try:
                    pending, lost = self._try(cooperative_id, pending, expected_version, attempt)
                except RunAlone as split:
                    alone.append(split.job)
                    pending = [job for job in pending if job is not split.job]
                    continue
                if not lost:
                    continue
                attempt += 1
                if attempt >= QUEUE_ALL_AFTER:
                    # Racing has become a lottery: every command here queues for a while, so
                    # a queued retry is no longer overtaken by first attempts (nobody starves).
                    self._mark_contended(cooperative_id)
                if self.db.kind == "sqlite":
                    # Full jitter, so colliding writers do not collide again.
                    time.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))  # noqa: S311
        except BaseException as error:
            for job in pending:
                job.fail(error)
            if not isinstance(error, Exception):
                raise  # an interrupt is the process's, not a command's
        for job in alone:
            self._run(cooperative_id, [job])

    def _try(
        self,
        cooperative_id: UUID,
        jobs: list[Job[CommandResult]],
        expected_version: int | None,
        attempt: int,
    ) -> tuple[list[Job[CommandResult]], bool]:
        """One attempt, racing or (after lost races, on PostgreSQL) in the cooperative's
        queue of writers; any failure evicts the cached copy."""
        # After a lost race the retry queues behind the other queued writers of this
        # cooperative (in every process) and brings its copy up to date first; see
        # QUEUE_ALL_AFTER.
        queued = self.db.kind == "postgresql" and (
            attempt > 0 or self._contended.get(cooperative_id, 0.0) > time.monotonic()
        )
        recorder = cast(LockFreePostgresRecorder, self.recorder)
        queue: contextlib.AbstractContextManager[Turn | None] = (
            recorder.queue(queue_key(cooperative_id)) if queued else contextlib.nullcontext()
        )
        with queue as place:
            try:
                return self._attempt(cooperative_id, jobs, expected_version, place, attempt)
            except BaseException:
                self.forget(cooperative_id)
                raise

    def _attempt(
        self,
        cooperative_id: UUID,
        jobs: list[Job[CommandResult]],
        expected_version: int | None,
        place: Turn | None = None,
        attempt: int = 0,
    ) -> tuple[list[Job[CommandResult]], bool]:
        """One try of ``jobs`` in order, saved together: the jobs still to run, and whether
        a version conflict (a lost race) left them so.

        With a ``place`` in the queue of this cooperative's writers, it waits its turn and
        brings a cached copy up to date with the events written since it was cached (one
        round trip for both, where a reload would also decode a snapshot).
        """
        # Commands may start from a cached copy: a stale one fails its save and is reloaded.
        coop = self._load(self.repository, cooperative_id)
        if place is not None:
            self._catch_up(coop, place, attempt)
        if expected_version is not None and coop.version != expected_version:
            self.forget(cooperative_id)
            coop = self.get_cooperative(cooperative_id)
        if expected_version is not None and coop.version != expected_version:
            raise StaleVersion(
                f"cooperative is at version {coop.version}, not {expected_version}",
                field="If-Match",
            )
        ran: list[tuple[Job[CommandResult], int, int, Any]] = []
        refused: list[tuple[Job[CommandResult], RuleViolation]] = []
        for job in jobs:
            before = coop.version
            try:
                value = job.act(coop, self.clock())
            except RuleViolation as violation:
                if coop.version == before:
                    refused.append((job, violation))
                    continue
                # Refused half done: the cached copy is spoilt (and evicted on the way out).
                if len(jobs) > 1:
                    raise RunAlone(job) from violation
                if self.get_cooperative(cooperative_id).version != before:
                    self.forget(cooperative_id)
                    return jobs, True  # judged on a stale copy: again, on the stored state
                raise
            except Exception:
                if len(jobs) == 1:
                    raise
                raise RunAlone(job) from None
            ran.append((job, before, coop.version, value))
        if not ran:
            # A refusal must rest on the stored state, not on a stale cached copy.
            if self.get_cooperative(cooperative_id).version != coop.version:
                self.forget(cooperative_id)
                return jobs, True
            for job, refusal in refused:
                job.fail(refusal)
            return [], False
        others = [value for _, _, _, value in ran if isinstance(value, Cooperative)]
        # Unless queued, a save gives way to a starving queued writer (see PRIORITY_AFTER).
        racing = place is None and self.db.kind == "postgresql"
        turn: dict[str, Any] = {"turn": place} if place is not None else {}
        guard = {"guard": priority_key(cooperative_id)} if racing else turn
        try:
            recordings, links = self._save(coop, *others, **guard)
        except IntegrityError:
            self.lost_races += 1
            self.forget(cooperative_id)
            if expected_version is not None:
                raise StaleVersion("the cooperative changed meanwhile", field="If-Match") from None
            return jobs, True
        if self.repository.cache is not None:
            self.repository.cache.put(coop.id, coop)
        # Saved: the state every refusal was judged on was the stored one.
        for job, refusal in refused:
            job.fail(refusal)
        if len(ran) == 1 and not others:  # alone: its events are the save's
            job, _, after, value = ran[0]
            receipt = Receipt(coop.id, after, links[-1].hash)
            job.succeed(self._result(coop.id, after, recordings, receipt, value))
            return [], False
        by_key = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r for r in recordings
        }
        hashes = {(link.originator_id, link.version): link.hash for link in links}
        for job, before, after, value in ran:
            mine = [by_key[(coop.id, v)] for v in range(before + 1, after + 1)]
            if isinstance(value, Cooperative):
                mine += [r for r in recordings if r.domain_event.originator_id == value.id]
                value = value.id
            receipt = Receipt(coop.id, after, hashes[(coop.id, after)])
            job.succeed(self._result(coop.id, after, mine, receipt, value))
        return [], False

    def _mark_contended(self, cooperative_id: UUID) -> None:
        self._contended[cooperative_id] = time.monotonic() + CONTENDED_FOR_S
        if len(self._contended) > 10_000:
            self._contended.clear()

    def _catch_up(self, coop: Cooperative, place: Turn, attempt: int) -> None:
        """Wait for ``place``'s turn, then apply the events stored since ``coop``'s version
        and follow their chain links."""
        recorder = cast(LockFreePostgresRecorder, self.recorder)
        also = priority_key(coop.id) if attempt >= PRIORITY_AFTER else None
        found = place.wait(recorder.read_after(coop.id, coop.version), also=also)
        if found is None:
            stored, stored_head = self.recorder.select_events(coop.id, gt=coop.version), None
        else:
            stored, stored_head = found.events, found.head
        if not stored:
            return
        self._mark_contended(coop.id)
        head = self.heads.get(coop.id)
        heads = {coop.id: head[1]} if head is not None and head[0] == coop.version else None
        for record in stored:
            cast(Cooperative.Event, self.mapper.to_domain_event(record)).mutate(coop)
        if stored_head is not None:
            self.heads[coop.id] = (stored[-1].originator_version, stored_head)
        elif heads is not None:
            # The links those events were stored with, without asking the store for them.
            link = chain_links(stored, heads, {})[-1]
            self.heads[coop.id] = (link.version, link.hash)

    def _result(
        self,
        cooperative_id: UUID,
        version: int,
        recordings: list[Recording[UUID]],
        receipt: Receipt | None = None,
        value: Any = None,
    ) -> CommandResult:
        events = tuple(
            RecordedEvent(
                cooperative_id=r.domain_event.originator_id,
                version=r.domain_event.originator_version,
                name=type(r.domain_event).__name__,
                position=r.notification.id,
            )
            for r in recordings
        )
        return CommandResult(
            cooperative_id,
            version,
            max(e.position for e in events),
            events,
            receipt or self.receipt(cooperative_id, version),
            value,
        )

    # ---- people ---------------------------------------------------------------------

    def register_person(self, name: str, contact: str = "") -> Person:
        """Register a person; events will only ever name them by the id returned."""
        return self.people.register(name, contact)

    def erase_person(self, person_id: UUID) -> None:
        """Forget a person's personal data; the history keeps only their pseudonymous id."""
        self.people.erase(person_id)

    # ---- founding -------------------------------------------------------------------

    def found_cooperative(
        self,
        *,
        name: str,
        sector: str,
        members: Sequence[FoundingMember],
        mentor_id: UUID,
        actor: UUID,
        rules: DecisionRules | None = None,
        reason: str | None = None,
    ) -> CommandResult:
        """Found a cooperative of at most 20 members from its conversation groups."""
        self.people.check_known([m.person_id for m in members], field="members")
        self.people.check_known([mentor_id], field="mentor_id")
        coop = Cooperative.found(
            name=name,
            sector=sector,
            members=members,
            mentor_id=mentor_id,
            rules=rules or DecisionRules(),
            actor=actor,
            at=self.clock(),
            reason=reason,
        )
        return self._result(coop.id, coop.version, self.save(coop))

    def convert_company(
        self,
        *,
        company: str,
        sector: str,
        employees: Sequence[UUID],
        mentor_id: UUID,
        actor: UUID,
        rules: DecisionRules | None = None,
        reason: str | None = None,
    ) -> list[CommandResult]:
        """Re-house a company's employees in as few cooperatives of at most 20 as needed.

        Sizes differ by at most one; within each, conversation groups of about six.
        All cooperatives are founded in one atomic write.
        """
        if not employees:
            raise InvalidInput("a conversion needs at least one employee", field="employees")
        if len(set(employees)) != len(employees):
            raise InvalidInput("an employee is listed twice", field="employees")
        rules = rules or DecisionRules()
        self.people.check_known(employees, field="employees")
        self.people.check_known([mentor_id], field="mentor_id")
        conversion_id, at = uuid4(), self.clock()
        chunks = balanced_chunks(employees, min(rules.member_cap, MAX_MEMBERS))
        coops = []
        for n, chunk in enumerate(chunks, start=1):
            members = [
                FoundingMember(person, f"group {g}")
                for g, group in enumerate(balanced_chunks(chunk, GROUP_SIZE), start=1)
                for person in group
            ]
            coops.append(
                Cooperative.found(
                    name=f"{company.strip()} {n}" if len(chunks) > 1 else company,
                    sector=sector,
                    members=members,
                    mentor_id=mentor_id,
                    rules=rules,
                    actor=actor,
                    at=at,
                    reason=reason,
                    conversion_id=conversion_id,
                )
            )
        recordings = self.save(*coops)
        return [
            self._result(
                c.id, c.version, [r for r in recordings if r.domain_event.originator_id == c.id]
            )
            for c in coops
        ]

    # ---- membership and roles -------------------------------------------------------

    def admit_founding_member(
        self,
        cooperative_id: UUID,
        person_id: UUID,
        *,
        actor: UUID,
        conversation_group: str | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """The mentor admits a founding member during the mentor year."""
        self.people.check_known([person_id])
        return self._command(
            cooperative_id,
            lambda c, at: c.admit_founding_member(
                person_id, actor=actor, at=at, conversation_group=conversation_group, reason=reason
            ),
            expected_version,
        )

    def leave(
        self,
        cooperative_id: UUID,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """A member leaves on their own word."""
        return self._command(
            cooperative_id,
            lambda c, at: c.leave(actor=actor, at=at, reason=reason),
            expected_version,
        )

    def step_down_as_coordinator(
        self,
        cooperative_id: UUID,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """The coordinator gives up the role and stays a member."""
        return self._command(
            cooperative_id,
            lambda c, at: c.step_down_as_coordinator(actor=actor, at=at, reason=reason),
            expected_version,
        )

    def complete_mentor_year(
        self,
        cooperative_id: UUID,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record the mentor's handover once the mentor year is over."""
        return self._command(
            cooperative_id,
            lambda c, at: c.complete_mentor_year(actor=actor, at=at, reason=reason),
            expected_version,
        )

    # ---- decisions ------------------------------------------------------------------

    def raise_proposal(
        self,
        cooperative_id: UUID,
        *,
        kind: ProposalKind | str,
        text: str,
        actor: UUID,
        closes_at: datetime | None = None,
        subject: UUID | None = None,
        new_rules: DecisionRules | None = None,
        split: SplitPlan | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Put a question to all members; returns the proposal id as the result's value."""
        parsed = kind if isinstance(kind, ProposalKind) else parse_kind(kind)
        if parsed is ProposalKind.ADMIT_MEMBER and subject is not None:
            self.people.check_known([subject], field="subject")
        proposal_id = uuid4()

        def act(c: Cooperative, at: datetime) -> UUID:
            return c.raise_proposal(
                parsed,
                text,
                actor=actor,
                at=at,
                closes_at=closes_at or at + DEFAULT_VOTING_PERIOD,
                subject=subject,
                new_rules=new_rules,
                split=split,
                proposal_id=proposal_id,
                reason=reason,
            )

        return self._command(cooperative_id, act, expected_version)

    def vote(
        self,
        cooperative_id: UUID,
        proposal_id: UUID,
        choice: VoteChoice | str,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Cast or change one's vote."""
        try:
            parsed = VoteChoice(choice)
        except ValueError:
            raise InvalidInput(
                "choice must be 'for', 'against' or 'abstain'", field="choice"
            ) from None
        return self._command(
            cooperative_id,
            lambda c, at: c.vote(proposal_id, parsed, actor=actor, at=at, reason=reason),
            expected_version,
        )

    def close_proposal(
        self,
        cooperative_id: UUID,
        proposal_id: UUID,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Close a proposal; an adopted one takes effect in the same write (a split saves both)."""
        return self._command(
            cooperative_id,
            lambda c, at: c.close_proposal(proposal_id, actor=actor, at=at, reason=reason),
            expected_version,
        )

    # ---- work -----------------------------------------------------------------------

    def take_work(
        self,
        cooperative_id: UUID,
        *,
        client_ref: str,
        description: str = "",
        actor: UUID,
        work_id: UUID | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """A member takes on client work; returns the work id as the result's value."""
        new_id = work_id or uuid4()
        return self._command(
            cooperative_id,
            lambda c, at: c.take_work(
                client_ref, description, actor=actor, at=at, work_id=new_id, reason=reason
            ),
            expected_version,
        )

    def log_hours(
        self,
        cooperative_id: UUID,
        work_id: UUID,
        *,
        minutes: int,
        worked_on: date | None = None,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Log time on one's own work (today unless a day is given)."""
        return self._command(
            cooperative_id,
            lambda c, at: c.log_hours(
                work_id, minutes, worked_on or at.date(), actor=actor, at=at, reason=reason
            ),
            expected_version,
        )

    def hand_over_work(
        self,
        cooperative_id: UUID,
        work_id: UUID,
        *,
        to_member: UUID,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Offer one's work to another member."""
        return self._command(
            cooperative_id,
            lambda c, at: c.hand_over_work(work_id, to_member, actor=actor, at=at, reason=reason),
            expected_version,
        )

    def accept_work(
        self,
        cooperative_id: UUID,
        work_id: UUID,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Accept work handed over to oneself."""
        return self._command(
            cooperative_id,
            lambda c, at: c.accept_work(work_id, actor=actor, at=at, reason=reason),
            expected_version,
        )

    def complete_work(
        self,
        cooperative_id: UUID,
        work_id: UUID,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Mark one's work done."""
        return self._command(
            cooperative_id,
            lambda c, at: c.complete_work(work_id, actor=actor, at=at, reason=reason),
            expected_version,
        )

    # ---- invoices -------------------------------------------------------------------

    def issue_invoice(
        self,
        cooperative_id: UUID,
        *,
        client_ref: str,
        hourly_rate_cents: int,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Invoice a client's logged, uninvoiced hours; returns the invoice number."""
        return self._command(
            cooperative_id,
            lambda c, at: c.issue_invoice(
                client_ref, hourly_rate_cents, actor=actor, at=at, reason=reason
            ),
            expected_version,
        )

    def register_payment(
        self,
        cooperative_id: UUID,
        number: int,
        *,
        amount_cents: int,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Record a payment against an invoice."""
        return self._command(
            cooperative_id,
            lambda c, at: c.register_payment(
                number, amount_cents, actor=actor, at=at, reason=reason
            ),
            expected_version,
        )

    def credit_invoice(
        self,
        cooperative_id: UUID,
        number: int,
        *,
        actor: UUID,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Cancel an unpaid invoice with a credit note; returns the credit note's number."""
        return self._command(
            cooperative_id,
            lambda c, at: c.credit_invoice(number, actor=actor, at=at, reason=reason),
            expected_version,
        )
