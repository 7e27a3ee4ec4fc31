"""Invoices: what each cooperative billed, what was paid, what a credit note cancelled.

An invoice is never changed: payments and the credit note are rows and columns
added beside it, so the invoice's own fields stay as issued. Its status is read
the way the aggregate reads it (``ledger.state.Invoice.status``). Amounts are
integer cents (BIGINT: many hours at a high rate pass 2**31 cents). Names are
joined from the people registry when read, so an erased person's name disappears
from every answer at once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.state import InvoiceStatus
from ledger.storage import Database
from projections.framework import Context, Projection, collect_handlers, handles, iso

DDL = (
    "CREATE TABLE IF NOT EXISTS {invoices} ("
    " coop_id TEXT NOT NULL, number INTEGER NOT NULL, client_ref TEXT NOT NULL,"
    " hourly_rate_cents BIGINT NOT NULL, amount_cents BIGINT NOT NULL,"
    " paid_cents BIGINT NOT NULL, issued_at TEXT NOT NULL, issued_by TEXT NOT NULL,"
    " credit_note_number INTEGER, credited_at TEXT, credited_by TEXT,"
    " PRIMARY KEY (coop_id, number))",
    # Keyed by the payment's position: two payments can share a moment, never a position.
    "CREATE TABLE IF NOT EXISTS {invoice_payments} ("
    " coop_id TEXT NOT NULL, position BIGINT NOT NULL, number INTEGER NOT NULL,"
    " amount_cents BIGINT NOT NULL, paid_at TEXT NOT NULL, registered_by TEXT NOT NULL,"
    " PRIMARY KEY (coop_id, position))",
)


def status(amount_cents: int, paid_cents: int, credit_note_number: int | None) -> str:
    """As ``Invoice.status``: a credit note cancels; paid once the amount is reached."""
    if credit_note_number is not None:
        return InvoiceStatus.CREDITED.value
    if paid_cents >= amount_cents:
        return InvoiceStatus.PAID.value
    return InvoiceStatus.ISSUED.value


@handles("InvoiceIssued")
def issued(ctx: Context, e: Any) -> None:
    ctx.execute(
        "INSERT INTO {invoices} (coop_id, number, client_ref, hourly_rate_cents, amount_cents,"
        " paid_cents, issued_at, issued_by) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        (
            str(e.originator_id),
            e.number,
            e.client_ref,
            e.hourly_rate_cents,
            e.amount_cents,
            iso(e.timestamp),
            str(e.actor),
        ),
    )


@handles("InvoicePaid")
def paid(ctx: Context, e: Any) -> None:
    key = (str(e.originator_id), e.number)
    ctx.execute(
        "UPDATE {invoices} SET paid_cents = paid_cents + ? WHERE coop_id = ? AND number = ?",
        (e.amount_cents, *key),
    )
    ctx.execute(
        "INSERT INTO {invoice_payments} (coop_id, position, number, amount_cents, paid_at,"
        " registered_by) VALUES (?, ?, ?, ?, ?, ?)",
        (key[0], ctx.position, e.number, e.amount_cents, iso(e.timestamp), str(e.actor)),
    )


@handles("InvoiceCredited")
def credited(ctx: Context, e: Any) -> None:
    ctx.execute(
        "UPDATE {invoices} SET credit_note_number = ?, credited_at = ?, credited_by = ?"
        " WHERE coop_id = ? AND number = ?",
        (e.credit_note_number, iso(e.timestamp), str(e.actor), str(e.originator_id), e.number),
    )


class Invoices(Projection):
    name = "invoices"
    tables = ("invoices", "invoice_payments")
    ddl = DDL
    handlers = collect_handlers(globals())


# ---- queries ------------------------------------------------------------------------


def _fetch(db: Database, coop_id: UUID, *queries: str) -> list[list[Any]]:
    return Invoices().fetch(db, coop_id, *queries)


INVOICE_FIELDS = (
    "number", "client_ref", "hourly_rate_cents", "amount_cents", "paid_cents", "issued_at",
    "issued_by", "issued_by_name", "credit_note_number", "credited_at", "credited_by",
    "credited_by_name",
)  # fmt: skip


def invoices(db: Database, coop_id: UUID) -> list[dict[str, Any]]:
    """A cooperative's invoices by number: amounts, payments, status, who issued and credited."""
    rows, paid_rows = _fetch(
        db,
        coop_id,
        "SELECT i.number, i.client_ref, i.hourly_rate_cents, i.amount_cents, i.paid_cents,"
        " i.issued_at, i.issued_by, pi.name, i.credit_note_number, i.credited_at,"
        " i.credited_by, pc.name FROM {invoices} i"
        " LEFT JOIN {people} pi ON pi.id = i.issued_by"
        " LEFT JOIN {people} pc ON pc.id = i.credited_by"
        " WHERE i.coop_id = ? ORDER BY i.number",
        "SELECT x.number, x.amount_cents, x.paid_at, x.registered_by, p.name"
        " FROM {invoice_payments} x LEFT JOIN {people} p ON p.id = x.registered_by"
        " WHERE x.coop_id = ? ORDER BY x.position",
    )
    payments: dict[int, list[dict[str, Any]]] = {}
    for number, amount, paid_at, by, name in paid_rows:
        payment = {"amount_cents": amount, "paid_at": paid_at, "registered_by": by, "name": name}
        payments.setdefault(number, []).append(payment)
    result = []
    for r in rows:
        invoice = dict(zip(INVOICE_FIELDS, r, strict=True))
        invoice["status"] = status(invoice["amount_cents"], invoice["paid_cents"], r[8])
        owed = invoice["amount_cents"] - invoice["paid_cents"]
        invoice["outstanding_cents"] = owed if invoice["status"] == InvoiceStatus.ISSUED else 0
        invoice["payments"] = payments.get(invoice["number"], [])
        result.append(invoice)
    return result


def outstanding_by_client(db: Database, coop_id: UUID) -> list[dict[str, Any]]:
    """Per client still owing: the cents outstanding, on how many invoices, the oldest issued."""
    (rows,) = _fetch(
        db,
        coop_id,
        "SELECT client_ref, SUM(amount_cents - paid_cents), COUNT(*), MIN(issued_at)"
        " FROM {invoices} WHERE coop_id = ? AND credit_note_number IS NULL"
        " AND paid_cents < amount_cents GROUP BY client_ref ORDER BY client_ref",
    )
    # int(): PostgreSQL sums BIGINT as NUMERIC, which arrives as a Decimal.
    return [
        {
            "client_ref": r[0],
            "outstanding_cents": int(r[1]),
            "open_invoices": int(r[2]),
            "oldest_issued_at": r[3],
        }
        for r in rows
    ]
