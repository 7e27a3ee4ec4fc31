"""Work allocation's handlers (``projections.work``) as a fold: see ``projections.fold``.

Held per cooperative: every member and piece of work it has had (their rows change as
long as the cooperative lives), pending offers (an offer is final once accepted or
lapsed), and the hours the aggregate still holds: those not invoiced, and those on an
invoice not yet paid. Once an invoice is paid the aggregate forgets it and its hours
(``Cooperative.InvoicePaid``), and so does the fold: their rows are final. Invoicing
or crediting hours the fold no longer holds cannot come from the aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import date
from typing import Any, ClassVar

from projections.fold import CannotFold, Fold, Row, folds, ship_nothing
from projections.framework import iso, uid
from projections.work import iso_week, month

ENTRIES = ("coop_id", "entry_id", "work_id", "member_id", "minutes", "worked_on", "iso_week",
           "month", "invoice_number")  # fmt: skip
HANDOVERS = ("coop_id", "position", "work_id", "from_member", "to_member", "offered_at",
             "accepted_at", "lapsed_at")  # fmt: skip
ITEMS = ("coop_id", "work_id", "client_ref", "holder", "since", "status")
WORK_ID, TO_MEMBER, ACCEPTED_AT, LAPSED_AT = 2, 4, 6, 7
# An hour held: [work_id, member_id, minutes, day, invoice_number], the rest made when
# it is handed out; thousands are held (the open business), so they are kept small.
WORK, INVOICE = 0, 4
DAYS_MAX = 4_096


class Billed:
    """An invoice not yet paid or credited: its amount, what was paid, its hours."""

    __slots__ = ("amount", "entries", "paid")

    def __init__(self, amount: int, entries: list[str]) -> None:
        self.amount, self.paid, self.entries = amount, 0, entries


class WorkFold(Fold):
    columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "work_members": ("coop_id", "person_id", "since", "left_at"),
        "work_items": ITEMS,
        "work_entries": ENTRIES,
        "work_handovers": HANDOVERS,
    }

    def __init__(
        self, out: Mapping[str, list[Row]], ship: Callable[[], None] = ship_nothing
    ) -> None:
        super().__init__(out, ship)
        self.entries_out = self.out["work_entries"]
        self.days: dict[date, tuple[str, str, str]] = {}
        self.members: dict[tuple[str, str], list[Any]] = {}
        self.items: dict[tuple[str, str], list[Any]] = {}
        self.hours: dict[str, dict[str, list[Any]]] = {}  # per cooperative, by entry id
        self.billed: dict[tuple[str, int], Billed] = {}
        self.numbers: dict[str, int] = {}  # the last invoice number issued, per cooperative
        self.offers: dict[str, list[list[Any]]] = {}  # pending, per cooperative

    # ---- the handlers' statements -------------------------------------------------

    def entry(
        self, coop: str, entry_id: str, work_id: str, member_id: str, minutes: int, day: date
    ) -> None:
        held = self.hours.setdefault(coop, {})
        if entry_id in held:
            raise CannotFold(f"hours entry {entry_id} in {coop} logged twice")
        held[entry_id] = [work_id, member_id, minutes, day, None]

    def hand_out(self, coop: str, entry_id: str, held: list[Any]) -> None:
        work_id, member_id, minutes, day, invoice = held
        texts = self.days.get(day)
        if texts is None:  # many hours share a day: its three texts are made once
            if len(self.days) >= DAYS_MAX:
                self.days.clear()
            texts = self.days[day] = (day.isoformat(), iso_week(day), month(day))
        self.entries_out.append((coop, entry_id, work_id, member_id, minutes, *texts, invoice))

    def hold(self, coop: str, work: Any) -> None:
        key = (coop, str(work.id))
        row = self.items.get(key)
        if row is None:
            self.items[key] = [*key, work.client_ref, uid(work.holder), iso(work.since), "open"]
        else:  # the client stays the work's own
            row[3:] = [uid(work.holder), iso(work.since), "open"]

    def join(self, coop: str, person: Any, e: Any) -> None:
        key = (coop, str(person))
        self.members[key] = [*key, iso(e.timestamp), None]

    def settle(self, e: Any, outcome: int, column: int, value: Any) -> None:
        coop = str(e.originator_id)
        pending = self.offers.get(coop)
        if not pending:
            return
        target, at = str(value), iso(e.timestamp)
        keep = []
        for row in pending:
            if row[column] == target:
                row[outcome] = at
                self.out["work_handovers"].append(row)
            else:
                keep.append(row)
        self.offers[coop] = keep

    def leave(self, e: Any, person: Any) -> None:
        row = self.members.get((str(e.originator_id), str(person)))
        if row is not None:
            row[3] = iso(e.timestamp)
        self.settle(e, LAPSED_AT, TO_MEMBER, person)

    def end_work(self, e: Any, work_id: Any, status: str) -> None:
        row = self.items.get((str(e.originator_id), str(work_id)))
        if row is not None:
            row[5], row[3] = status, None
        self.settle(e, LAPSED_AT, WORK_ID, work_id)

    # ---- events ----------------------------------------------------------------------

    @folds("Founded", "SplitOff")
    def founded(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        for member in e.members:
            self.join(coop, member.person_id, e)
        for carried in getattr(e, "carried_work", ()):
            self.hold(coop, carried.work)
            for entry in carried.entries:
                self.entry(
                    coop,
                    str(entry.id),
                    str(entry.work_id),
                    str(entry.member_id),
                    entry.minutes,
                    entry.worked_on,
                )

    @folds("MemberAdmitted")
    def admitted(self, e: Any, position: int) -> None:
        self.join(str(e.originator_id), e.person_id, e)

    @folds("MemberLeft")
    def left(self, e: Any, position: int) -> None:
        self.leave(e, e.person_id)
        for work_id in e.released_work:
            self.end_work(e, work_id, "released")

    @folds("Split")
    def split(self, e: Any, position: int) -> None:
        for person_id in e.moving_members:
            self.leave(e, person_id)
        held = self.hours.get(str(e.originator_id), {})
        for work_id in e.moved_work:
            self.end_work(e, work_id, "moved")
            # Its unbilled hours went to the child with it: the handler deletes them.
            moved = str(work_id)
            for entry_id in [i for i, r in held.items() if r[WORK] == moved and r[INVOICE] is None]:
                del held[entry_id]

    @folds("WorkTaken")
    def taken(self, e: Any, position: int) -> None:
        coop, key = str(e.originator_id), (str(e.originator_id), str(e.work_id))
        row = self.items.get(key)
        if row is None:
            self.items[key] = [coop, key[1], e.client_ref, uid(e.actor), iso(e.timestamp), "open"]
        else:
            row[3:] = [uid(e.actor), iso(e.timestamp), "open"]

    @folds("HoursLogged")
    def hours_logged(self, e: Any, position: int) -> None:
        self.entry(
            str(e.originator_id),
            str(e.entry_id),
            str(e.work_id),
            str(e.actor),
            e.minutes,
            e.worked_on,
        )

    @folds("WorkHandedOver")
    def handed_over(self, e: Any, position: int) -> None:
        self.settle(e, LAPSED_AT, WORK_ID, e.work_id)
        coop = str(e.originator_id)
        self.offers.setdefault(coop, []).append(
            [
                coop,
                position,
                str(e.work_id),
                str(e.actor),
                str(e.to_member),
                iso(e.timestamp),
                None,
                None,
            ]
        )

    @folds("WorkAccepted")
    def accepted(self, e: Any, position: int) -> None:
        self.settle(e, ACCEPTED_AT, WORK_ID, e.work_id)
        row = self.items.get((str(e.originator_id), str(e.work_id)))
        if row is not None:
            row[3], row[4] = str(e.actor), iso(e.timestamp)

    @folds("WorkCompleted")
    def completed(self, e: Any, position: int) -> None:
        row = self.items.get((str(e.originator_id), str(e.work_id)))
        if row is not None:
            row[5] = "completed"
        self.settle(e, LAPSED_AT, WORK_ID, e.work_id)

    @folds("InvoiceIssued")
    def invoiced(self, e: Any, position: int) -> None:
        coop = str(e.originator_id)
        key, held = (coop, e.number), self.hours.get(coop, {})
        # Numbers run up without gaps: one not above the last may name a paid invoice's hours.
        if e.number <= self.numbers.get(coop, e.number - 1):
            raise CannotFold(f"invoice {e.number} in {coop} issued out of order")
        self.numbers[coop] = e.number
        entry_ids = [str(i) for i in e.entry_ids]
        for entry_id in entry_ids:
            row = held.get(entry_id)
            if row is None:
                raise CannotFold(f"invoice {e.number} in {coop} bills hours not held")
            row[INVOICE] = e.number
        self.billed[key] = Billed(e.amount_cents, entry_ids)

    @folds("InvoicePaid")
    def paid(self, e: Any, position: int) -> None:
        # No statement of the projection's: the aggregate forgets a paid invoice's hours.
        key = (str(e.originator_id), e.number)
        billed = self.billed.get(key)
        if billed is None:
            raise CannotFold(f"payment of invoice {e.number} in {key[0]}, not open")
        billed.paid += e.amount_cents
        if billed.paid >= billed.amount:
            del self.billed[key]
            held = self.hours.get(key[0], {})
            for entry_id in billed.entries:
                row = held.get(entry_id)
                if row is not None and row[INVOICE] == e.number:
                    self.hand_out(key[0], entry_id, held.pop(entry_id))

    @folds("InvoiceCredited")
    def credited(self, e: Any, position: int) -> None:
        key = (str(e.originator_id), e.number)
        billed = self.billed.pop(key, None)
        if billed is None:
            raise CannotFold(f"credit of invoice {e.number} in {key[0]}, not open")
        held = self.hours.get(key[0], {})
        for entry_id in billed.entries:
            row = held.get(entry_id)
            if row is not None and row[INVOICE] == e.number:
                row[INVOICE] = None

    def finish_cooperatives(self, coops: AbstractSet[str]) -> None:
        # One scan for all of them: the pass gathers them (``fold_pass.FINISH_SHARE``).
        for key in [key for key in self.members if key[0] in coops]:
            self.out["work_members"].append(self.members.pop(key))
        for key in [key for key in self.items if key[0] in coops]:
            self.out["work_items"].append(self.items.pop(key))
        for coop in coops:
            for entry_id, row in self.hours.pop(coop, {}).items():
                self.hand_out(coop, entry_id, row)
            self.out["work_handovers"].extend(self.offers.pop(coop, ()))
            self.numbers.pop(coop, None)
        for number in [key for key in self.billed if key[0] in coops]:
            del self.billed[number]

    def finish(self) -> None:
        self.out["work_members"].extend(self.members.values())
        self.out["work_items"].extend(self.items.values())
        while self.hours:  # a cooperative at a time, so the rows never all exist at once
            coop, held = self.hours.popitem()
            for entry_id, row in held.items():
                self.hand_out(coop, entry_id, row)
            self.ship()
        for pending in self.offers.values():
            self.out["work_handovers"].extend(pending)
        self.members, self.items, self.hours, self.billed, self.offers = {}, {}, {}, {}, {}
        self.numbers = {}
