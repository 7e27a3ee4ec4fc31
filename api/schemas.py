"""Request and response bodies. Unknown fields are refused; limits are stated, not implied."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


def _not_a_number(value: Any) -> Any:
    """Dates and times are ISO 8601 text; a bare number (epoch seconds?) is ambiguous."""
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date or time, not a number")
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("must be an ISO 8601 date or time, not a number")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
Day = Annotated[date, BeforeValidator(_not_a_number)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=4000)]
Reason = Annotated[str | None, Field(default=None, max_length=1000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonIn(Body):
    name: Text
    contact: Annotated[str, Field(max_length=500)] = ""


class PersonOut(BaseModel):
    id: UUID
    name: str
    contact: str
    erased: bool


class RegisteredPerson(PersonOut):
    token: str = Field(description="Shown once; only its hash is stored.")


class FoundingMemberIn(Body):
    person_id: UUID
    conversation_group: Annotated[str | None, Field(max_length=100)] = None


class RulesIn(Body):
    quorum_numerator: Annotated[int, Field(ge=0, le=1000)] = 1
    quorum_denominator: Annotated[int, Field(ge=1, le=1000)] = 2
    supermajority_numerator: Annotated[int, Field(ge=1, le=1000)] = 2
    supermajority_denominator: Annotated[int, Field(ge=1, le=1000)] = 3
    mode: Literal["majority", "consent"] = "majority"
    member_cap: Annotated[int, Field(ge=1, le=1000)] = 20


class FoundIn(Body):
    name: Text
    sector: Text
    members: Annotated[list[FoundingMemberIn], Field(min_length=1, max_length=100)]
    mentor_id: UUID
    rules: RulesIn | None = None
    reason: Reason = None


class ConversionIn(Body):
    company: Text
    sector: Text
    employees: Annotated[list[UUID], Field(min_length=1, max_length=5000)]
    mentor_id: UUID
    rules: RulesIn | None = None
    reason: Reason = None


class AdmitIn(Body):
    person_id: UUID
    conversation_group: Annotated[str | None, Field(max_length=100)] = None
    reason: Reason = None


class ReasonIn(Body):
    reason: Reason = None


class SplitIn(Body):
    new_name: Text
    moving_members: Annotated[list[UUID], Field(min_length=1, max_length=20)]


class ProposalIn(Body):
    kind: Annotated[str, Field(min_length=1, max_length=50)]
    text: LongText
    closes_at: Moment | None = None
    subject: UUID | None = None
    rules: RulesIn | None = None
    split: SplitIn | None = None
    reason: Reason = None


class VoteIn(Body):
    choice: Literal["for", "against", "abstain"]
    reason: Reason = None


class WorkIn(Body):
    client_ref: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] = ""
    reason: Reason = None


class HoursIn(Body):
    minutes: Annotated[int, Field(ge=1, le=1440)]
    worked_on: Day | None = None
    reason: Reason = None


class HandoverIn(Body):
    to_member: UUID
    reason: Reason = None


class InvoiceIn(Body):
    client_ref: Annotated[str, Field(min_length=1, max_length=200)]
    hourly_rate_cents: Annotated[int, Field(ge=1, le=10_000_000)]
    reason: Reason = None


class PaymentIn(Body):
    amount_cents: Annotated[int, Field(ge=1, le=10**12)]
    reason: Reason = None


class EventOut(BaseModel):
    cooperative_id: UUID
    version: int
    name: str
    position: int


class ReceiptOut(BaseModel):
    """Keep it: with it, a later rewrite of this cooperative's history can be detected."""

    cooperative_id: UUID
    version: int
    chain_head: str


class CommandOut(BaseModel):
    """What a command recorded. ``version`` is what to send as If-Match next time."""

    cooperative_id: UUID
    version: int
    position: int
    events: list[EventOut]
    receipt: ReceiptOut
    result: dict[str, Any] = Field(default_factory=dict)


class ConversionOut(BaseModel):
    cooperatives: list[CommandOut]


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None
