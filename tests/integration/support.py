"""Helpers for integration tests: a clock the test moves and a small world of people."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from ledger import FoundingMember, Ledger
from ledger.pg_recorder import LockFreePostgresRecorder


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class World:
    """A ledger with a facilitator, a mentor and people ready to become members."""

    ledger: Ledger
    clock: Clock
    facilitator: UUID
    mentor: UUID
    people: list[UUID]

    @classmethod
    def create(cls, ledger: Ledger, clock: Clock) -> World:
        facilitator = ledger.register_person("Fatima the facilitator", "fatima@example.org").id
        mentor = ledger.register_person("Mo the mentor", "mo@example.org").id
        people = [ledger.register_person(f"Worker {n}", f"w{n}@example.org").id for n in range(30)]
        return cls(ledger, clock, facilitator, mentor, people)

    def found(self, size: int = 5, **kwargs: object) -> UUID:
        result = self.ledger.found_cooperative(
            name="De Schoonmakers",
            sector="cleaning",
            members=[FoundingMember(p, "group 1") for p in self.people[:size]],
            mentor_id=self.mentor,
            actor=self.facilitator,
            **kwargs,  # type: ignore[arg-type]
        )
        return result.cooperative_id

    def decide(self, coop_id: UUID, kind: str, **kwargs: object) -> UUID:
        """Raise a proposal, have every member vote for it, close it; the proposal id."""
        coop = self.ledger.get_cooperative(coop_id)
        voters = list(coop.members)
        proposal_id: UUID = self.ledger.raise_proposal(
            coop_id,
            kind=kind,
            text=f"proposal to {kind}",
            actor=voters[0],
            **kwargs,  # type: ignore[arg-type]
        ).value
        for voter in voters:
            self.ledger.vote(coop_id, proposal_id, "for", actor=voter)
        self.ledger.close_proposal(coop_id, proposal_id, actor=voters[0])
        return proposal_id


MakeLedger = Callable[..., Ledger]


def hold_saves_open(ledger: Ledger, before_commit: Callable[[], object]) -> None:
    """Make ``ledger``'s saves call ``before_commit`` after their INSERT, before their COMMIT."""
    recorder: Any = ledger.recorder
    if isinstance(recorder, LockFreePostgresRecorder):

        def insert_events(stored_events: Any, **kwargs: Any) -> list[int]:
            # The recorder's own statement, in a transaction kept open after it.
            with recorder.lines.lend() as line, line.conn.transaction():
                ids = recorder.save(line, stored_events, kwargs["chain_links"])
                before_commit()
            return ids

        recorder.insert_events = insert_events
        return
    original = recorder._insert_events

    def insert_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        before_commit()
        return result

    recorder._insert_events = insert_then_wait
