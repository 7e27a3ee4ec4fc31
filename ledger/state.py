"""The values a cooperative's events carry and its state is made of.

Events carry pseudonymous ids only: names and contact details live in the
people registry (rule 12). ``client_ref`` is likewise an opaque reference,
never a family's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from ledger.rules import DecisionMode, DecisionRules, Outcome, ProposalKind, Tally, VoteChoice


@dataclass(frozen=True)
class FoundingMember:
    person_id: UUID
    conversation_group: str | None = None


@dataclass(frozen=True)
class SplitPlan:
    """What an adopted split does: who moves to the new cooperative, and its name."""

    new_name: str
    moving_members: tuple[UUID, ...]


@dataclass
class Member:
    person_id: UUID
    since: datetime
    conversation_group: str | None
    decision_id: UUID | None


@dataclass
class Proposal:
    id: UUID
    kind: ProposalKind
    text: str
    raised_by: UUID
    raised_at: datetime
    closes_at: datetime
    electorate: tuple[UUID, ...]
    subject: UUID | None = None
    new_rules: DecisionRules | None = None
    split: SplitPlan | None = None
    votes: dict[UUID, VoteChoice] = field(default_factory=dict)
    outcome: Outcome | None = None
    lapsed: bool = False

    @property
    def is_open(self) -> bool:
        # The aggregate keeps open proposals only (a decided one leaves only its id behind);
        # a version 1 snapshot still holds decided ones until its upcaster drops them.
        return self.outcome is None and not self.lapsed


class WorkStatus(StrEnum):
    OPEN = "open"
    RELEASED = "released"
    COMPLETED = "completed"
    MOVED = "moved"


@dataclass
class Work:
    id: UUID
    client_ref: str
    description: str
    holder: UUID | None
    since: datetime
    status: WorkStatus = WorkStatus.OPEN
    handover_to: UUID | None = None


@dataclass
class HoursEntry:
    id: UUID
    work_id: UUID
    member_id: UUID
    minutes: int
    worked_on: date
    invoice_number: int | None = None


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    PAID = "paid"
    CREDITED = "credited"


@dataclass
class Invoice:
    number: int
    client_ref: str
    entry_ids: tuple[UUID, ...]
    hourly_rate_cents: int
    amount_cents: int
    issued_at: datetime
    issued_by: UUID
    paid_cents: int = 0
    credit_note_number: int | None = None

    @property
    def status(self) -> InvoiceStatus:
        if self.credit_note_number is not None:
            return InvoiceStatus.CREDITED
        if self.paid_cents >= self.amount_cents:
            return InvoiceStatus.PAID
        return InvoiceStatus.ISSUED

    @property
    def outstanding_cents(self) -> int:
        if self.status is InvoiceStatus.CREDITED:
            return 0
        return self.amount_cents - self.paid_cents


@dataclass(frozen=True)
class CarriedWork:
    """Open work that goes with a member in a split (rule 8, a choice), with its unbilled hours."""

    work: Work
    entries: tuple[HoursEntry, ...]


VALUE_TYPES: tuple[type, ...] = (
    FoundingMember,
    SplitPlan,
    Member,
    Proposal,
    Work,
    HoursEntry,
    Invoice,
    CarriedWork,
    DecisionRules,
    Tally,
)
ENUM_TYPES: tuple[type, ...] = (
    WorkStatus,
    InvoiceStatus,
    ProposalKind,
    VoteChoice,
    Outcome,
    DecisionMode,
)
