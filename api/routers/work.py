"""Work: a member takes it, logs hours, hands it over, accepts it, completes it."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from api.commands import Command
from api.schemas import CommandOut, HandoverIn, HoursIn, ReasonIn, WorkIn

router = APIRouter(prefix="/v1/cooperatives/{coop_id}/work", tags=["work"])


@router.post("", status_code=201, response_model=CommandOut)
def take(coop_id: UUID, body: WorkIn, ctx: Command) -> Response:
    """Take on a piece of client work oneself."""
    return ctx.command(
        lambda version: ctx.services.ledger.take_work(
            coop_id,
            client_ref=body.client_ref,
            description=body.description,
            actor=ctx.actor,
            reason=body.reason,
            expected_version=version,
        ),
        name="work_id",
        status=201,
    )


@router.post("/{work_id}/hours", status_code=201, response_model=CommandOut)
def log_hours(coop_id: UUID, work_id: UUID, body: HoursIn, ctx: Command) -> Response:
    """Log time on one's own work."""
    return ctx.command(
        lambda version: ctx.services.ledger.log_hours(
            coop_id,
            work_id,
            minutes=body.minutes,
            worked_on=body.worked_on,
            actor=ctx.actor,
            reason=body.reason,
            expected_version=version,
        ),
        name="entry_id",
        status=201,
    )


@router.post("/{work_id}/handover", response_model=CommandOut)
def hand_over(coop_id: UUID, work_id: UUID, body: HandoverIn, ctx: Command) -> Response:
    """Offer one's work to another member; it moves when they accept."""
    return ctx.command(
        lambda version: ctx.services.ledger.hand_over_work(
            coop_id,
            work_id,
            to_member=body.to_member,
            actor=ctx.actor,
            reason=body.reason,
            expected_version=version,
        )
    )


@router.post("/{work_id}/accept", response_model=CommandOut)
def accept(coop_id: UUID, work_id: UUID, body: ReasonIn, ctx: Command) -> Response:
    """Accept work handed over to oneself."""
    return ctx.command(
        lambda version: ctx.services.ledger.accept_work(
            coop_id, work_id, actor=ctx.actor, reason=body.reason, expected_version=version
        )
    )


@router.post("/{work_id}/complete", response_model=CommandOut)
def complete(coop_id: UUID, work_id: UUID, body: ReasonIn, ctx: Command) -> Response:
    """Mark one's work done."""
    return ctx.command(
        lambda version: ctx.services.ledger.complete_work(
            coop_id, work_id, actor=ctx.actor, reason=body.reason, expected_version=version
        )
    )
