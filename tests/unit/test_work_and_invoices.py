"""Rule 9 (own work: taken on oneself, handed over only to a member who accepts) and rule 10
(invoices: by the coordinator or the mentor in the mentor year, for logged uninvoiced hours,
in integer cents, numbered without gaps, paid or cancelled by a credit note, never changed)."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from helpers import (
    DAY,
    FACILITATOR,
    HOUR,
    MENTOR,
    MENTOR_YEAR_END,
    T0,
    appoint_coordinator,
    assert_replays_to_same_state,
    event_names,
    found,
    members,
    refused,
    work_with_hours,
)

from ledger.cooperative import Cooperative
from ledger.errors import (
    InvalidInput,
    InvoiceNotFound,
    InvoiceSettled,
    NoHandoverPending,
    NoMandate,
    NotAMember,
    NothingToInvoice,
    NotYourWork,
    PaymentExceedsOutstanding,
    WorkClosed,
    WorkNotFound,
)
from ledger.state import InvoiceStatus, WorkStatus

# ---- rule 9: own work ------------------------------------------------------------------


def test_a_member_takes_work_on_themselves_and_becomes_its_client_contact() -> None:
    coop = found(3)
    member = members(coop)[1]
    coop.collect_events()

    work_id = coop.take_work("family-12", "support twice a week", actor=member, at=T0 + HOUR)

    (taken,) = coop.collect_events()
    assert isinstance(taken, Cooperative.WorkTaken)
    assert (taken.work_id, taken.actor, taken.client_ref) == (work_id, member, "family-12")
    work = coop.work[work_id]
    assert (work.holder, work.status, work.since) == (member, WorkStatus.OPEN, T0 + HOUR)


def test_taking_work_names_no_other_holder_than_the_actor() -> None:
    # Nobody assigns work to another member: the command has no parameter for a holder.
    parameters = inspect.signature(Cooperative.take_work).parameters
    assert [p for p in parameters if p not in ("self", "actor")] == [
        "client_ref",
        "description",
        "at",
        "work_id",
        "reason",
    ]


@pytest.mark.parametrize("outsider", [MENTOR, FACILITATOR])
def test_someone_who_is_not_a_member_cannot_take_work(outsider: UUID) -> None:
    coop = found(3)

    with refused(coop, NotAMember):
        coop.take_work("family-12", "", actor=outsider, at=T0)


def test_nobody_takes_work_another_member_holds() -> None:
    coop = found(3)
    holder, other = members(coop)[:2]
    work_id = coop.take_work("family-12", "", actor=holder, at=T0)

    with refused(coop, NotYourWork):
        coop.take_work("family-12", "", actor=other, at=T0 + HOUR, work_id=work_id)


def test_work_released_by_a_leaving_member_is_picked_up_by_another_member() -> None:
    coop = found(3)
    leaver, other = members(coop)[:2]
    work_id, _ = work_with_hours(coop, leaver, "family-12", 60)
    coop.leave(actor=leaver, at=T0 + DAY)

    coop.take_work("ignored", "ignored", actor=other, at=T0 + 2 * DAY, work_id=work_id)

    work = coop.work[work_id]
    assert (work.holder, work.status, work.client_ref) == (other, WorkStatus.OPEN, "family-12")


def test_the_holder_logs_hours_on_their_own_work() -> None:
    coop = found(3)
    member = members(coop)[0]
    work_id = coop.take_work("family-12", "", actor=member, at=T0)

    entry_id = coop.log_hours(work_id, 90, T0.date(), actor=member, at=T0 + HOUR)

    entry = coop.hours[entry_id]
    assert (entry.minutes, entry.member_id, entry.invoice_number) == (90, member, None)


def test_nobody_logs_hours_on_work_another_member_holds() -> None:
    coop = found(3)
    holder, other = members(coop)[:2]
    work_id = coop.take_work("family-12", "", actor=holder, at=T0)

    with refused(coop, NotYourWork):
        coop.log_hours(work_id, 60, T0.date(), actor=other, at=T0 + HOUR)


@pytest.mark.parametrize(
    ("minutes", "days_ahead"),
    [(0, 0), (-30, 0), (24 * 60 + 1, 0), (60, 1)],
    ids=["zero", "negative", "more than a day", "a future day"],
)
def test_hours_are_whole_minutes_within_one_day_and_never_for_a_future_day(
    minutes: int, days_ahead: int
) -> None:
    coop = found(3)
    member = members(coop)[0]
    work_id = coop.take_work("family-12", "", actor=member, at=T0)

    with refused(coop, InvalidInput):
        coop.log_hours(
            work_id, minutes, (T0 + timedelta(days=days_ahead)).date(), actor=member, at=T0
        )


def test_logging_hours_on_unknown_work_is_refused() -> None:
    coop = found(3)

    with refused(coop, WorkNotFound):
        coop.log_hours(uuid4(), 60, T0.date(), actor=members(coop)[0], at=T0)


def test_work_moves_to_another_member_only_when_they_accept_it() -> None:
    coop = found(3)
    giver, taker = members(coop)[:2]
    work_id = coop.take_work("family-12", "", actor=giver, at=T0)
    coop.collect_events()

    coop.hand_over_work(work_id, taker, actor=giver, at=T0 + HOUR)
    assert coop.work[work_id].holder == giver
    coop.accept_work(work_id, actor=taker, at=T0 + 2 * HOUR)

    offered, accepted = coop.collect_events()
    assert isinstance(offered, Cooperative.WorkHandedOver)
    assert isinstance(accepted, Cooperative.WorkAccepted)
    assert (offered.to_member, offered.actor) == (taker, giver)
    assert (accepted.from_member, accepted.actor) == (giver, taker)
    work = coop.work[work_id]
    assert (work.holder, work.handover_to, work.since) == (taker, None, T0 + 2 * HOUR)


def test_after_a_handover_the_former_holder_no_longer_acts_on_the_work() -> None:
    coop = found(3)
    giver, taker = members(coop)[:2]
    work_id = coop.take_work("family-12", "", actor=giver, at=T0)
    coop.hand_over_work(work_id, taker, actor=giver, at=T0 + HOUR)
    coop.accept_work(work_id, actor=taker, at=T0 + 2 * HOUR)

    with refused(coop, NotYourWork):
        coop.log_hours(work_id, 60, T0.date(), actor=giver, at=T0 + 3 * HOUR)


def test_nobody_hands_over_work_they_do_not_hold() -> None:
    coop = found(3)
    holder, other, third = members(coop)
    work_id = coop.take_work("family-12", "", actor=holder, at=T0)

    with refused(coop, NotYourWork):
        coop.hand_over_work(work_id, third, actor=other, at=T0 + HOUR)


@pytest.mark.parametrize("receiver", ["mentor", "stranger", "oneself"])
def test_work_is_handed_over_only_to_another_member(receiver: str) -> None:
    coop = found(3)
    holder = members(coop)[0]
    work_id = coop.take_work("family-12", "", actor=holder, at=T0)
    to_member = {"mentor": MENTOR, "stranger": uuid4(), "oneself": holder}[receiver]
    error = InvalidInput if receiver == "oneself" else NotAMember

    with refused(coop, error):
        coop.hand_over_work(work_id, to_member, actor=holder, at=T0 + HOUR)


def test_only_the_member_the_work_was_handed_to_accepts_it() -> None:
    coop = found(3)
    giver, taker, third = members(coop)
    work_id = coop.take_work("family-12", "", actor=giver, at=T0)
    with refused(coop, NoHandoverPending):
        coop.accept_work(work_id, actor=taker, at=T0 + HOUR)
    coop.hand_over_work(work_id, taker, actor=giver, at=T0 + HOUR)

    with refused(coop, NotYourWork):
        coop.accept_work(work_id, actor=third, at=T0 + 2 * HOUR)


def test_a_handover_to_a_member_who_then_leaves_is_void() -> None:
    coop = found(3)
    giver, taker = members(coop)[:2]
    work_id = coop.take_work("family-12", "", actor=giver, at=T0)
    coop.hand_over_work(work_id, taker, actor=giver, at=T0 + HOUR)
    coop.leave(actor=taker, at=T0 + 2 * HOUR)

    assert coop.work[work_id].handover_to is None
    with refused(coop, NotAMember):
        coop.accept_work(work_id, actor=taker, at=T0 + 3 * HOUR)


def test_the_holder_completes_their_work_and_then_it_takes_no_more_hours() -> None:
    coop = found(3)
    holder, other = members(coop)[:2]
    work_id = coop.take_work("family-12", "", actor=holder, at=T0)
    with refused(coop, NotYourWork):
        coop.complete_work(work_id, actor=other, at=T0 + HOUR)

    coop.complete_work(work_id, actor=holder, at=T0 + HOUR)

    assert coop.closed_work[work_id] is WorkStatus.COMPLETED
    with refused(coop, WorkClosed):
        coop.log_hours(work_id, 60, T0.date(), actor=holder, at=T0 + 2 * HOUR)
    with refused(coop, WorkClosed):
        coop.hand_over_work(work_id, other, actor=holder, at=T0 + 2 * HOUR)


# ---- rule 10: invoices -----------------------------------------------------------------


def with_coordinator(n_members: int = 4) -> tuple[Cooperative, UUID, UUID]:
    """A cooperative past its mentor year, with a coordinator and another member."""
    coop = found(n_members)
    coordinator, worker = members(coop)[:2]
    appoint_coordinator(coop, coordinator, at=MENTOR_YEAR_END)
    return coop, coordinator, worker


AFTER = MENTOR_YEAR_END + DAY


def test_the_coordinator_invoices_the_logged_uninvoiced_hours_of_a_client() -> None:
    coop, coordinator, worker = with_coordinator()
    _, entries = work_with_hours(coop, worker, "family-1", 60, 30, at=AFTER)
    work_with_hours(coop, worker, "family-2", 45, at=AFTER)
    coop.collect_events()

    number = coop.issue_invoice("family-1", 4000, actor=coordinator, at=AFTER + HOUR)

    (issued,) = coop.collect_events()
    assert isinstance(issued, Cooperative.InvoiceIssued)
    assert number == issued.number == 1
    assert issued.entry_ids == tuple(entries)
    assert (issued.hourly_rate_cents, issued.amount_cents, issued.actor) == (
        4000,
        6000,
        coordinator,
    )
    assert all(coop.hours[e].invoice_number == 1 for e in entries)
    assert coop.invoices[1].status is InvoiceStatus.ISSUED


def test_the_mentor_invoices_during_the_mentor_year() -> None:
    coop = found(3)
    work_with_hours(coop, members(coop)[0], "family-1", 60)

    number = coop.issue_invoice("family-1", 4000, actor=MENTOR, at=MENTOR_YEAR_END - HOUR)

    assert coop.invoices[number].issued_by == MENTOR


def test_the_mentor_no_longer_invoices_after_the_mentor_year() -> None:
    coop = found(3)
    work_with_hours(coop, members(coop)[0], "family-1", 60)

    with refused(coop, NoMandate):
        coop.issue_invoice("family-1", 4000, actor=MENTOR, at=MENTOR_YEAR_END)


def test_a_member_who_is_not_the_coordinator_does_not_invoice() -> None:
    coop, _, worker = with_coordinator()
    work_with_hours(coop, worker, "family-1", 60, at=AFTER)

    for actor in (worker, FACILITATOR):
        with refused(coop, NoMandate):
            coop.issue_invoice("family-1", 4000, actor=actor, at=AFTER + HOUR)


def test_a_coordinator_who_stepped_down_does_not_invoice() -> None:
    coop, coordinator, worker = with_coordinator()
    work_with_hours(coop, worker, "family-1", 60, at=AFTER)
    coop.step_down_as_coordinator(actor=coordinator, at=AFTER)

    with refused(coop, NoMandate):
        coop.issue_invoice("family-1", 4000, actor=coordinator, at=AFTER + HOUR)


def test_hours_are_invoiced_once_and_only_hours_that_were_logged() -> None:
    coop, coordinator, worker = with_coordinator()
    work_with_hours(coop, worker, "family-1", 60, at=AFTER)
    coop.issue_invoice("family-1", 4000, actor=coordinator, at=AFTER + HOUR)

    with refused(coop, NothingToInvoice):
        coop.issue_invoice("family-1", 4000, actor=coordinator, at=AFTER + 2 * HOUR)
    with refused(coop, NothingToInvoice):
        coop.issue_invoice("family-99", 4000, actor=coordinator, at=AFTER + 2 * HOUR)


@pytest.mark.parametrize(
    ("minutes", "rate", "cents"),
    [
        ((60,), 4500, 4500),
        ((1,), 150, 3),  # 2.5 rounds half up to 3 (banker's rounding would give 2)
        ((3,), 50, 3),  # 2.5 again
        ((1,), 90, 2),  # 1.5 -> 2
        ((1,), 149, 2),  # 2.483 -> 2
        ((45,), 3333, 2500),  # 2499.75 -> 2500
        ((7,), 4999, 583),  # 583.22 -> 583
        ((1, 1), 150, 5),  # rounded once over the total, not per entry (3 + 3)
        ((24 * 60, 24 * 60), 10_000_000, 480_000_000),
    ],
)
def test_amounts_are_integer_cents_rounded_half_up(
    minutes: tuple[int, ...], rate: int, cents: int
) -> None:
    coop, coordinator, worker = with_coordinator()
    work_with_hours(coop, worker, "family-1", *minutes, at=AFTER)

    number = coop.issue_invoice("family-1", rate, actor=coordinator, at=AFTER + HOUR)

    amount = coop.invoices[number].amount_cents
    assert type(amount) is int
    assert amount == cents


@pytest.mark.parametrize("rate", [0, -4500, 10_000_001])
def test_an_hourly_rate_that_is_not_a_sensible_positive_number_of_cents_is_refused(
    rate: int,
) -> None:
    coop, coordinator, worker = with_coordinator()
    work_with_hours(coop, worker, "family-1", 60, at=AFTER)

    with refused(coop, InvalidInput):
        coop.issue_invoice("family-1", rate, actor=coordinator, at=AFTER + HOUR)


def test_invoices_are_numbered_one_to_n_without_gaps_even_around_refusals_and_credits() -> None:
    coop, coordinator, worker = with_coordinator()
    for client in ("a", "b", "c"):
        work_with_hours(coop, worker, client, 60, at=AFTER)
    numbers = [coop.issue_invoice("a", 4000, actor=coordinator, at=AFTER + HOUR)]
    with refused(coop, NothingToInvoice):
        coop.issue_invoice("a", 4000, actor=coordinator, at=AFTER + HOUR)
    numbers.append(coop.issue_invoice("b", 4000, actor=coordinator, at=AFTER + HOUR))
    coop.credit_invoice(2, actor=coordinator, at=AFTER + 2 * HOUR)
    numbers.append(coop.issue_invoice("c", 4000, actor=coordinator, at=AFTER + 3 * HOUR))
    numbers.append(coop.issue_invoice("b", 4000, actor=coordinator, at=AFTER + 3 * HOUR))

    assert numbers == [1, 2, 3, 4]
    assert coop.invoices_issued == 4
    assert (sorted(coop.invoices), coop.credited_invoices) == ([1, 3, 4], {2})


def invoiced(cents_per_hour: int = 6000) -> tuple[Cooperative, UUID, int, list[UUID]]:
    """A coordinator, one invoice of 90 minutes (9000 cents at the default rate)."""
    coop, coordinator, worker = with_coordinator()
    _, entries = work_with_hours(coop, worker, "family-1", 60, 30, at=AFTER)
    number = coop.issue_invoice("family-1", cents_per_hour, actor=coordinator, at=AFTER + HOUR)
    return coop, coordinator, number, entries


def test_an_invoice_is_paid_in_parts_and_then_in_full() -> None:
    coop, coordinator, number, _ = invoiced()
    coop.collect_events()

    coop.register_payment(number, 4000, actor=coordinator, at=AFTER + DAY)
    assert coop.invoices[number].status is InvoiceStatus.ISSUED
    assert coop.invoices[number].outstanding_cents == 5000
    coop.register_payment(number, 5000, actor=coordinator, at=AFTER + 2 * DAY)

    assert event_names(coop.collect_events()) == ["InvoicePaid", "InvoicePaid"]
    assert number not in coop.invoices
    assert coop.check_invoice_known(number) is InvoiceStatus.PAID


def test_an_overpayment_is_refused() -> None:
    coop, coordinator, number, _ = invoiced()
    with refused(coop, PaymentExceedsOutstanding):
        coop.register_payment(number, 9001, actor=coordinator, at=AFTER + DAY)
    coop.register_payment(number, 4000, actor=coordinator, at=AFTER + DAY)

    with refused(coop, PaymentExceedsOutstanding):
        coop.register_payment(number, 5001, actor=coordinator, at=AFTER + 2 * DAY)


def test_a_paid_invoice_takes_no_further_payment_or_credit_note() -> None:
    coop, coordinator, number, _ = invoiced()
    coop.register_payment(number, 9000, actor=coordinator, at=AFTER + DAY)

    with refused(coop, InvoiceSettled):
        coop.register_payment(number, 1, actor=coordinator, at=AFTER + 2 * DAY)
    with refused(coop, InvoiceSettled):
        coop.credit_invoice(number, actor=coordinator, at=AFTER + 2 * DAY)


@pytest.mark.parametrize("cents", [0, -100])
def test_a_payment_of_no_money_is_refused(cents: int) -> None:
    coop, coordinator, number, _ = invoiced()

    with refused(coop, InvalidInput):
        coop.register_payment(number, cents, actor=coordinator, at=AFTER + DAY)


def test_payments_and_credit_notes_need_the_invoicing_mandate_and_a_known_invoice() -> None:
    coop, coordinator, number, _ = invoiced()
    worker = members(coop)[1]

    with refused(coop, NoMandate):
        coop.register_payment(number, 100, actor=worker, at=AFTER + DAY)
    with refused(coop, NoMandate):
        coop.credit_invoice(number, actor=worker, at=AFTER + DAY)
    with refused(coop, InvoiceNotFound):
        coop.register_payment(number + 1, 100, actor=coordinator, at=AFTER + DAY)
    with refused(coop, InvoiceNotFound):
        coop.credit_invoice(number + 1, actor=coordinator, at=AFTER + DAY)


def test_a_credit_note_cancels_an_unpaid_invoice_which_itself_stays_unchanged() -> None:
    coop, coordinator, number, entries = invoiced()
    original = dataclasses.replace(coop.invoices[number])
    coop.collect_events()

    credit_note = coop.credit_invoice(number, actor=coordinator, at=AFTER + DAY, reason="typo")

    (credited,) = coop.collect_events()
    assert isinstance(credited, Cooperative.InvoiceCredited)
    assert (credited.number, credited.credit_note_number, credited.amount_cents) == (1, 1, 9000)
    assert credit_note == 1
    assert credited.amount_cents == original.amount_cents
    assert number not in coop.invoices
    assert coop.check_invoice_known(number) is InvoiceStatus.CREDITED
    assert all(coop.hours[e].invoice_number is None for e in entries)


def test_the_hours_of_a_credited_invoice_can_be_invoiced_again() -> None:
    coop, coordinator, number, entries = invoiced()
    coop.credit_invoice(number, actor=coordinator, at=AFTER + DAY)

    again = coop.issue_invoice("family-1", 6500, actor=coordinator, at=AFTER + 2 * DAY)

    assert again == number + 1
    assert coop.invoices[again].entry_ids == tuple(entries)
    assert coop.invoices[again].amount_cents == 9750
    assert number not in coop.invoices


def test_a_partly_paid_invoice_is_not_credited() -> None:
    coop, coordinator, number, _ = invoiced()
    coop.register_payment(number, 100, actor=coordinator, at=AFTER + DAY)

    with refused(coop, InvoiceSettled):
        coop.credit_invoice(number, actor=coordinator, at=AFTER + 2 * DAY)


def test_a_credited_invoice_takes_no_payment_and_no_second_credit_note() -> None:
    coop, coordinator, number, _ = invoiced()
    coop.credit_invoice(number, actor=coordinator, at=AFTER + DAY)

    with refused(coop, InvoiceSettled):
        coop.register_payment(number, 100, actor=coordinator, at=AFTER + 2 * DAY)
    with refused(coop, InvoiceSettled):
        coop.credit_invoice(number, actor=coordinator, at=AFTER + 2 * DAY)


def test_credit_notes_have_their_own_gapless_numbers() -> None:
    coop, coordinator, worker = with_coordinator()
    for client in ("a", "b"):
        work_with_hours(coop, worker, client, 60, at=AFTER)
        coop.issue_invoice(client, 4000, actor=coordinator, at=AFTER + HOUR)

    notes = [coop.credit_invoice(n, actor=coordinator, at=AFTER + DAY) for n in (2, 1)]

    assert notes == [1, 2]
    assert (coop.credit_notes, coop.credited_invoices, coop.invoices) == (2, {1, 2}, {})


def test_invoicing_paying_and_crediting_replay_to_the_same_state() -> None:
    coop, coordinator, worker = with_coordinator()
    for client in ("a", "b", "c"):
        work_with_hours(coop, worker, client, 60, 25, at=AFTER)
        coop.issue_invoice(client, 4321, actor=coordinator, at=AFTER + HOUR)
    coop.register_payment(1, 1000, actor=coordinator, at=AFTER + DAY)
    coop.register_payment(1, coop.invoices[1].outstanding_cents, actor=coordinator, at=AFTER + DAY)
    coop.register_payment(2, 500, actor=coordinator, at=AFTER + DAY)
    coop.credit_invoice(3, actor=coordinator, at=AFTER + DAY)
    coop.issue_invoice("c", 4000, actor=coordinator, at=AFTER + 2 * DAY)

    assert_replays_to_same_state(coop, list(coop.collect_events()))
