"""The invoices projection: events in through the real Ledger, rows out, on both stores."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from ledger import SplitPlan
from projections.invoices import Invoices, invoices, outstanding_by_client
from projections.runner import ProjectionRunner
from tests.integration.projection_support import assert_live_equals_fresh_rebuild
from tests.integration.support import World


def project(world: World) -> None:
    ProjectionRunner(world.ledger, [Invoices()]).catch_up()


def bill(world: World, coop_id: UUID, client: str, minutes: int, rate: int = 4000) -> int:
    """A member logs ``minutes`` for ``client``; the mentor invoices them; the invoice number."""
    member = world.people[0]
    work_id = world.ledger.take_work(coop_id, client_ref=client, actor=member).value
    world.ledger.log_hours(coop_id, work_id, minutes=minutes, actor=member)
    number: int = world.ledger.issue_invoice(
        coop_id, client_ref=client, hourly_rate_cents=rate, actor=world.mentor
    ).value
    return number


def invoice(world: World, coop_id: UUID, number: int) -> dict[str, Any]:
    project(world)
    return next(i for i in invoices(world.ledger.db, coop_id) if i["number"] == number)


def test_an_issued_invoice_is_listed_with_its_number_amount_and_issuer(world: World) -> None:
    coop_id = world.found(size=2)
    number = bill(world, coop_id, "client-1", minutes=90)
    project(world)
    assert invoices(world.ledger.db, coop_id) == [
        {
            "number": 1,
            "client_ref": "client-1",
            "hourly_rate_cents": 4000,
            "amount_cents": 6000,
            "paid_cents": 0,
            "outstanding_cents": 6000,
            "status": "issued",
            "issued_at": world.clock().isoformat(),
            "issued_by": str(world.mentor),
            "issued_by_name": "Mo the mentor",
            "credit_note_number": None,
            "credited_at": None,
            "credited_by": None,
            "credited_by_name": None,
            "payments": [],
        }
    ]
    assert number == 1


def test_a_partial_payment_keeps_the_invoice_issued_and_the_rest_makes_it_paid(
    world: World,
) -> None:
    coop_id = world.found(size=2)
    number = bill(world, coop_id, "client-1", minutes=90)
    first_at = world.clock.advance(days=10).isoformat()
    world.ledger.register_payment(coop_id, number, amount_cents=2500, actor=world.mentor)
    partly = invoice(world, coop_id, number)
    assert (partly["status"], partly["paid_cents"], partly["outstanding_cents"]) == (
        "issued",
        2500,
        3500,
    )
    assert [o["outstanding_cents"] for o in outstanding_by_client(world.ledger.db, coop_id)] == [
        3500
    ]

    world.clock.advance(days=10)
    world.ledger.register_payment(coop_id, number, amount_cents=3500, actor=world.mentor)
    settled = invoice(world, coop_id, number)
    assert (settled["status"], settled["paid_cents"], settled["outstanding_cents"]) == (
        "paid",
        6000,
        0,
    )
    assert [(p["amount_cents"], p["name"]) for p in settled["payments"]] == [
        (2500, "Mo the mentor"),
        (3500, "Mo the mentor"),
    ]
    assert settled["payments"][0]["paid_at"] == first_at
    assert outstanding_by_client(world.ledger.db, coop_id) == []


def test_a_credited_invoice_names_its_credit_note_and_is_no_longer_owed(world: World) -> None:
    coop_id = world.found(size=2)
    number = bill(world, coop_id, "client-1", minutes=60)
    credited_at = world.clock.advance(days=1).isoformat()
    note = world.ledger.credit_invoice(coop_id, number, actor=world.mentor).value
    credited = invoice(world, coop_id, number)
    assert credited["status"] == "credited"
    assert (credited["credit_note_number"], credited["credited_at"]) == (note, credited_at)
    assert (credited["amount_cents"], credited["outstanding_cents"]) == (4000, 0)
    assert credited["credited_by_name"] == "Mo the mentor"

    # The credited hours can be billed again, under the next number.
    again = world.ledger.issue_invoice(
        coop_id, client_ref="client-1", hourly_rate_cents=3000, actor=world.mentor
    ).value
    project(world)
    assert [(i["number"], i["status"]) for i in invoices(world.ledger.db, coop_id)] == [
        (1, "credited"),
        (2, "issued"),
    ]
    assert outstanding_by_client(world.ledger.db, coop_id)[0]["outstanding_cents"] == 3000
    assert again == 2


def test_outstanding_is_summed_per_client_over_its_unpaid_invoices(world: World) -> None:
    coop_id = world.found(size=2)
    first_issued = world.clock().isoformat()
    bill(world, coop_id, "client-1", minutes=60)  # 4000
    world.clock.advance(days=7)
    bill(world, coop_id, "client-1", minutes=30)  # 2000
    partly = bill(world, coop_id, "client-2", minutes=120)  # 8000
    world.ledger.register_payment(coop_id, partly, amount_cents=5000, actor=world.mentor)
    paid = bill(world, coop_id, "client-3", minutes=15)  # 1000
    world.ledger.register_payment(coop_id, paid, amount_cents=1000, actor=world.mentor)
    credited = bill(world, coop_id, "client-4", minutes=15)
    world.ledger.credit_invoice(coop_id, credited, actor=world.mentor)
    project(world)
    assert outstanding_by_client(world.ledger.db, coop_id) == [
        {
            "client_ref": "client-1",
            "outstanding_cents": 6000,
            "open_invoices": 2,
            "oldest_issued_at": first_issued,
        },
        {
            "client_ref": "client-2",
            "outstanding_cents": 3000,
            "open_invoices": 1,
            "oldest_issued_at": world.clock().isoformat(),
        },
    ]


def test_invoices_stay_with_the_parent_in_a_split_and_the_child_numbers_from_one(
    world: World,
) -> None:
    coop_id = world.found(size=3)
    noor = world.people[2]
    work_id = world.ledger.take_work(coop_id, client_ref="client-9", actor=noor).value
    world.ledger.log_hours(coop_id, work_id, minutes=60, actor=noor)
    world.ledger.issue_invoice(
        coop_id, client_ref="client-9", hourly_rate_cents=4000, actor=world.mentor
    )
    world.ledger.log_hours(coop_id, work_id, minutes=30, actor=noor)
    world.decide(coop_id, "split", split=SplitPlan("De Schoonmakers Noord", (noor,)))
    (child_id,) = world.ledger.get_cooperative(coop_id).children
    # The mentor year carries over to the child, so the mentor may invoice there too.
    world.ledger.issue_invoice(
        child_id, client_ref="client-9", hourly_rate_cents=4000, actor=world.mentor
    )
    project(world)
    parent_invoices = invoices(world.ledger.db, coop_id)
    child_invoices = invoices(world.ledger.db, child_id)
    assert [(i["number"], i["amount_cents"]) for i in parent_invoices] == [(1, 4000)]
    assert [(i["number"], i["amount_cents"]) for i in child_invoices] == [(1, 2000)]
    assert [o["outstanding_cents"] for o in outstanding_by_client(world.ledger.db, coop_id)] == [
        4000
    ]
    assert_live_equals_fresh_rebuild(world.ledger, [Invoices()])


def test_an_invoice_issued_by_the_coordinator_names_them(world: World) -> None:
    coop_id = world.found(size=2)
    cas = world.people[1]
    world.decide(coop_id, "appoint_coordinator", subject=cas)
    work_id = world.ledger.take_work(coop_id, client_ref="client-1", actor=cas).value
    world.ledger.log_hours(coop_id, work_id, minutes=60, actor=cas)
    world.ledger.issue_invoice(coop_id, client_ref="client-1", hourly_rate_cents=4000, actor=cas)
    issued = invoice(world, coop_id, 1)
    assert (issued["issued_by"], issued["issued_by_name"]) == (str(cas), "Worker 1")


def test_erasing_a_person_removes_their_name_from_every_invoice_query(world: World) -> None:
    coop_id = world.found(size=2)
    paid = bill(world, coop_id, "client-1", minutes=60)
    world.ledger.register_payment(coop_id, paid, amount_cents=1000, actor=world.mentor)
    credited = bill(world, coop_id, "client-2", minutes=60)
    world.ledger.credit_invoice(coop_id, credited, actor=world.mentor)
    project(world)

    def everything() -> str:
        db = world.ledger.db
        return json.dumps([invoices(db, coop_id), outstanding_by_client(db, coop_id)])

    assert "Mo the mentor" in everything()
    world.ledger.erase_person(world.mentor)
    after = everything()
    assert "Mo the mentor" not in after
    assert str(world.mentor) in after, "the pseudonymous id stays"
    names = [
        (i["issued_by_name"], i["credited_by_name"]) for i in invoices(world.ledger.db, coop_id)
    ]
    assert names == [(None, None), (None, None)]
