"""The invoices' handlers (``projections.invoices``) as a fold: see ``projections.fold``.

Payments are final as they are made. An invoice is held while the aggregate holds it:
until a payment settles it or a credit note cancels it (``Cooperative.InvoicePaid``,
``InvoiceCredited``); an invoice of zero cents stays open, since it can still be
credited. A payment or credit of an invoice not held cannot come from the aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

from projections.fold import CannotFold, Fold, Row, folds, ship_nothing
from projections.framework import iso

INVOICES = (
    "coop_id", "number", "client_ref", "hourly_rate_cents", "amount_cents", "paid_cents",
    "issued_at", "issued_by", "credit_note_number", "credited_at", "credited_by",
)  # fmt: skip
PAYMENTS = ("coop_id", "position", "number", "amount_cents", "paid_at", "registered_by")
AMOUNT, PAID = 4, 5


class InvoicesFold(Fold):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "invoices": INVOICES,
        "invoice_payments": PAYMENTS,
    }

    def __init__(
        self, out: Mapping[str, list[Row]], ship: Callable[[], None] = ship_nothing
    ) -> None:
        super().__init__(out, ship)
        self.open: dict[tuple[str, int], list[Any]] = {}
        self.numbers: dict[str, int] = {}  # the last invoice number issued, per cooperative

    def held(self, e: Any) -> tuple[tuple[str, int], list[Any]]:
        key = (str(e.originator_id), e.number)
        row = self.open.get(key)
        if row is None:
            raise CannotFold(f"{type(e).__name__} of invoice {key[1]} in {key[0]}, not open")
        return key, row

    @folds("InvoiceIssued")
    def issued(self, e: Any, position: int) -> None:
        key = (str(e.originator_id), e.number)
        # Numbers run up without gaps: one not above the last may name a settled invoice.
        if e.number <= self.numbers.get(key[0], e.number - 1):
            raise CannotFold(f"invoice {key[1]} in {key[0]} issued out of order")
        self.numbers[key[0]] = e.number
        self.open[key] = [
            key[0], e.number, e.client_ref, e.hourly_rate_cents, e.amount_cents, 0,
            iso(e.timestamp), str(e.actor), None, None, None,
        ]  # fmt: skip

    @folds("InvoicePaid")
    def paid(self, e: Any, position: int) -> None:
        key, row = self.held(e)
        row[PAID] += e.amount_cents
        self.out["invoice_payments"].append(
            (key[0], position, e.number, e.amount_cents, iso(e.timestamp), str(e.actor))
        )
        if row[PAID] >= row[AMOUNT]:  # settled: the aggregate forgets it
            self.out["invoices"].append(self.open.pop(key))

    @folds("InvoiceCredited")
    def credited(self, e: Any, position: int) -> None:
        key, row = self.held(e)
        row[8:] = [e.credit_note_number, iso(e.timestamp), str(e.actor)]
        self.out["invoices"].append(self.open.pop(key))

    def finish_cooperatives(self, coops: AbstractSet[str]) -> None:
        # One scan for all of them: the pass gathers them (``fold_pass.FINISH_SHARE``).
        for key in [key for key in self.open if key[0] in coops]:
            self.out["invoices"].append(self.open.pop(key))
        for coop in coops:
            self.numbers.pop(coop, None)

    def finish(self) -> None:
        self.out["invoices"].extend(self.open.values())
        self.open, self.numbers = {}, {}
