"""Invoices: issued from uninvoiced hours, paid, or cancelled by a credit note."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Response

from api.commands import Command
from api.deps import CaughtUp, Insider, ServicesDep
from api.schemas import CommandOut, InvoiceIn, PaymentIn, ReasonIn
from projections import invoices as views

router = APIRouter(prefix="/v1/cooperatives/{coop_id}/invoices", tags=["invoices"])
Number = Annotated[int, Path(ge=1, le=10**9)]


@router.post("", status_code=201, response_model=CommandOut)
def issue(coop_id: UUID, body: InvoiceIn, ctx: Command) -> Response:
    """Invoice a client for its logged, uninvoiced hours (the coordinator, or the mentor)."""
    return ctx.command(
        lambda version: ctx.services.ledger.issue_invoice(
            coop_id,
            client_ref=body.client_ref,
            hourly_rate_cents=body.hourly_rate_cents,
            actor=ctx.actor,
            reason=body.reason,
            expected_version=version,
        ),
        name="invoice_number",
        status=201,
    )


@router.post("/{number}/payments", response_model=CommandOut)
def pay(coop_id: UUID, number: Number, body: PaymentIn, ctx: Command) -> Response:
    """Register a payment (in full or in part)."""
    return ctx.command(
        lambda version: ctx.services.ledger.register_payment(
            coop_id,
            number,
            amount_cents=body.amount_cents,
            actor=ctx.actor,
            reason=body.reason,
            expected_version=version,
        )
    )


@router.post("/{number}/credit", response_model=CommandOut)
def credit(coop_id: UUID, number: Number, body: ReasonIn, ctx: Command) -> Response:
    """Cancel an unpaid invoice with a credit note."""
    return ctx.command(
        lambda version: ctx.services.ledger.credit_invoice(
            coop_id, number, actor=ctx.actor, reason=body.reason, expected_version=version
        ),
        name="credit_note_number",
    )


@router.get("")
def list_invoices(coop_id: UUID, _: Insider, services: ServicesDep, __: CaughtUp) -> dict[str, Any]:
    """Every invoice: number, client, amount, paid, status."""
    return {"items": views.invoices(services.ledger.db, coop_id), "next_cursor": None}


@router.get("/outstanding")
def outstanding(coop_id: UUID, _: Insider, services: ServicesDep, __: CaughtUp) -> dict[str, Any]:
    """What each client still owes."""
    return {"items": views.outstanding_by_client(services.ledger.db, coop_id)}
