"""The demo story loads on both stores and tells the seed story by the ledger's rules.

Loading is the expensive part (seconds, not milliseconds), so one test per store loads the
story once and checks it from several sides, each in a helper named for what it shows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from ledger import Cooperative, Ledger, StoreConfig
from ledger.cli import main
from ledger.demo import COMPANY, DemoSummary, load_demo
from ledger.state import FoundingMember

TODAY = datetime(2026, 3, 2, 12, tzinfo=UTC)
# The same calendar, governance and invoicing as the full story, a quarter of its hours:
# the full load takes 10 to 20 s per store on a quiet machine, three times that on a busy one.
SCALE = 0.25


@pytest.fixture
def loaded(database_url: str) -> Iterator[tuple[DemoSummary, Ledger, list[Any], list[bytes]]]:
    summary = load_demo(StoreConfig.from_url(database_url), today=TODAY, scale=SCALE)
    with Ledger(StoreConfig.from_url(database_url)) as ledger:
        stored = ledger.recorder.select_notifications(start=1, limit=10**6)
        events = [ledger.mapper.to_domain_event(n) for n in stored]
        yield summary, ledger, events, [n.state for n in stored]


def test_the_demo_tells_the_seed_story_by_the_rules(
    loaded: tuple[DemoSummary, Ledger, list[Any], list[bytes]],
) -> None:
    summary, ledger, events, states = loaded
    assert summary.events == len(events)
    # A retried write leaves a gap in PostgreSQL's sequence: positions only rise.
    assert summary.last_position >= summary.events
    assert all(e.timestamp < TODAY for e in events), "the whole story lies in the past"
    assert events[0].actor == summary.facilitator_id
    check_cooperatives_and_the_split(summary, ledger, events)
    check_the_conversion(ledger, events)
    check_a_coordinator_invoices_after_the_mentor_year(events)
    check_invoice_numbers_are_gapless(events)
    check_the_governance_story(events)
    check_no_event_names_a_person(ledger, states)


def check_cooperatives_and_the_split(
    summary: DemoSummary, ledger: Ledger, events: list[Any]
) -> None:
    founded = [e for e in events if isinstance(e, Cooperative.Founded)]
    split_off = [e for e in events if isinstance(e, Cooperative.SplitOff)]
    assert len(founded) == 12, "twelve cooperatives before the split"
    assert len(split_off) == 1
    assert len(summary.cooperatives) == 13, "thirteen after it"
    child = split_off[0]
    assert child.parent_id in {e.originator_id for e in founded}
    assert ledger.get_cooperative(child.parent_id).children == [child.originator_id]
    assert ledger.get_cooperative(child.originator_id).parent_id == child.parent_id
    assert set(summary.cooperatives.values()) == {e.originator_id for e in founded + split_off}


def check_the_conversion(ledger: Ledger, events: list[Any]) -> None:
    converted = [e for e in events if isinstance(e, Cooperative.Founded) and e.conversion_id]
    assert len(converted) == 10
    assert len({e.conversion_id for e in converted}) == 1, "one conversion"
    assert {e.name for e in converted} == {f"{COMPANY} {n}" for n in range(1, 11)}
    for founding in converted:
        assert len(founding.members) == 20
        assert len(ledger.get_cooperative(founding.originator_id).members) == 20


def check_a_coordinator_invoices_after_the_mentor_year(events: list[Any]) -> None:
    handover: dict[UUID, datetime] = {}
    adopted: set[UUID] = set()
    appointed: dict[UUID, tuple[UUID, datetime]] = {}
    invoiced_by_them: set[UUID] = set()
    for e in events:
        coop = e.originator_id
        if isinstance(e, Cooperative.MentorshipEnded):
            handover[coop] = e.timestamp
        elif isinstance(e, Cooperative.ProposalAdopted):
            adopted.add(e.proposal_id)
        elif isinstance(e, Cooperative.CoordinatorAppointed):
            assert e.decision_id in adopted, "appointed by an adopted proposal, same write"
            if coop in handover:
                appointed[coop] = (e.member_id, e.timestamp)
        elif isinstance(e, Cooperative.InvoiceIssued) and coop in appointed:
            coordinator, since = appointed[coop]
            assert e.actor == coordinator
            assert e.timestamp >= since
            invoiced_by_them.add(coop)
    assert len(handover) == 13, "every mentor year ended with a handover"
    assert len(appointed) == 13, "and a coordinator appointed by decision after it"
    assert invoiced_by_them, "who then issues the invoices"


def check_invoice_numbers_are_gapless(events: list[Any]) -> None:
    invoices: dict[UUID, list[int]] = defaultdict(list)
    credit_notes: dict[UUID, list[int]] = defaultdict(list)
    for e in events:
        if isinstance(e, Cooperative.InvoiceIssued):
            invoices[e.originator_id].append(e.number)
        elif isinstance(e, Cooperative.InvoiceCredited):
            credit_notes[e.originator_id].append(e.credit_note_number)
    assert len(invoices) >= 3
    assert sum(len(n) for n in credit_notes.values()) == 1, "one credit note"
    for numbers in [*invoices.values(), *credit_notes.values()]:
        assert numbers == list(range(1, len(numbers) + 1))


def check_the_governance_story(events: list[Any]) -> None:
    names = Counter(type(e).__name__ for e in events)
    for name in ("ProposalRejected", "ProposalExpired", "VoteChanged", "RulesChanged"):
        assert names[name] >= 1, name
    admitted = [e for e in events if isinstance(e, Cooperative.MemberAdmitted)]
    assert sum(e.decision_id is None for e in admitted) == 2, "two by the mentor"
    assert sum(e.decision_id is not None for e in admitted) >= 1, "others by decision"
    paid = Counter(e.number for e in events if isinstance(e, Cooperative.InvoicePaid))
    assert 2 in paid.values(), "some invoices are paid in parts"
    assert names["HoursLogged"] > 1000


def check_no_event_names_a_person(ledger: Ledger, states: list[bytes]) -> None:
    with ledger.db.read() as cur:
        cur.execute(f"SELECT name, contact FROM {ledger.db.table('people')}")
        people = cur.fetchall()
    assert len(people) > 200
    stored = b"\n".join(states).lower()
    # The scan reads what it should: the states are plain text, client references and all.
    assert b"client-0001" in stored
    for name, contact in people:
        assert name.lower().encode() not in stored, name
        assert contact.lower().encode() not in stored, contact


def test_the_demo_command_refuses_a_store_that_holds_events(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Ledger(StoreConfig.from_url(database_url)) as ledger:
        mentor, member = (ledger.register_person(n).id for n in ("Mo", "Ana"))
        ledger.found_cooperative(
            name="Al Bezig", sector="cleaning", members=[FoundingMember(member)],
            mentor_id=mentor, actor=mentor,
        )  # fmt: skip
        before = ledger.recorder.max_notification_id()
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", database_url)
    assert main(["demo"]) == 2
    assert "already holds events" in capsys.readouterr().err
    with Ledger(StoreConfig.from_url(database_url)) as ledger:
        assert ledger.recorder.max_notification_id() == before
