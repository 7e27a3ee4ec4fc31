"""Synthetic load: long histories made fast, for tests, benchmarks and the soak run."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from ledger.application import Ledger
from ledger.rules import DecisionRules, ProposalKind, VoteChoice
from ledger.state import FoundingMember


def long_history(ledger: Ledger, events: int, mentor: UUID, people: list[UUID]) -> UUID:
    """At least ``events`` events on one cooperative, through the aggregate's own commands.

    Commands run on the loaded aggregate and are saved in batches: the rules are the
    same, the history is made in seconds instead of minutes.
    """
    members = people[:20]
    coop = ledger.found_cooperative(
        name="Lange Adem",
        sector="cleaning",
        members=[FoundingMember(p, f"group {n % 4}") for n, p in enumerate(members)],
        mentor_id=mentor,
        actor=mentor,
        rules=DecisionRules(),
    ).cooperative_id
    aggregate = ledger.get_cooperative(coop)
    at = ledger.clock()
    work = {
        m: aggregate.take_work(f"client-{n % 7}", "weekly cleaning", actor=m, at=at)
        for n, m in enumerate(members)
    }
    recorded = 1 + len(work)
    step = 0
    while recorded < events:
        step += 1
        at += timedelta(minutes=7)
        member = members[step % len(members)]
        if step % 50 == 0:
            proposal = aggregate.raise_proposal(
                ProposalKind.GENERAL,
                f"topic {step}",
                actor=member,
                at=at,
                closes_at=at + timedelta(days=7),
            )
            for voter in members:
                aggregate.vote(proposal, VoteChoice.FOR, actor=voter, at=at)
            aggregate.close_proposal(proposal, actor=member, at=at)
            recorded += 2 + len(members)
        elif step % 97 == 0:
            number = aggregate.issue_invoice(f"client-{step % 7}", 4200, actor=mentor, at=at)
            amount = aggregate.invoices[number].amount_cents
            aggregate.register_payment(number, amount, actor=mentor, at=at)
            recorded += 2
        else:
            aggregate.log_hours(work[member], 30 + step % 60, at.date(), actor=member, at=at)
            recorded += 1
        if len(aggregate.pending_events) >= 250:
            ledger.save(aggregate)
    ledger.save(aggregate)
    return coop
