"""Afterwards, from the stored events alone: nothing acknowledged lost, nothing twice, no rule
broken, no command half-written.

* lost: an acknowledged command whose events are not stored at the cooperative, version,
  name and position the service answered with.
* duplicates: a command (its marker is the ``reason`` of the one event it records under
  its own reason) stored more than once, e.g. a retry run again instead of replayed.
* rule violations: more than 20 members at any version, invoice numbers of a cooperative
  not 1, 2, 3 ..., a second ``VoteCast`` by one member on one proposal (a change is a
  ``VoteChanged`` after a cast), a vote from outside the frozen electorate or after the
  decision, a member admitted twice or leaving without being one.
* half-written: a cooperative whose versions have a gap, an acknowledged command with
  events that are not all stored, an adopted admission without its ``MemberAdmitted``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ledger.application import Ledger
from soak.journal import Ack

MAX_MEMBERS = 20


@dataclass
class Stored:
    """One stored event, decoded."""

    coop: str
    version: int
    name: str
    position: int
    event: Any


@dataclass
class Findings:
    events: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rule_violations: list[str] = field(default_factory=list)
    half_written: list[str] = field(default_factory=list)
    unacknowledged_but_stored: int = 0


def read_events(ledger: Ledger, batch: int = 2000) -> dict[str, list[Stored]]:
    """Every stored event by cooperative, in version order."""
    by_coop: dict[str, list[Stored]] = defaultdict(list)
    position = 0
    while True:
        notifications = ledger.recorder.select_notifications(start=position + 1, limit=batch)
        if not notifications:
            break
        for n in notifications:
            event = ledger.mapper.to_domain_event(n)
            coop = str(n.originator_id)
            by_coop[coop].append(
                Stored(coop, n.originator_version, type(event).__name__, n.id, event)
            )
            position = n.id
    for events in by_coop.values():
        events.sort(key=lambda s: s.version)
    return by_coop


def check(ledger: Ledger, acks: list[Ack], abandoned: dict[str, str], run_id: str) -> Findings:
    by_coop = read_events(ledger)
    findings = Findings(events=sum(len(v) for v in by_coop.values()))
    check_acks(by_coop, acks, findings)
    check_markers(by_coop, acks, abandoned, run_id, findings)
    for coop, events in by_coop.items():
        check_gapless(coop, events, findings)
        check_membership(coop, events, findings)
        check_invoices(coop, events, findings)
        check_votes(coop, events, findings)
        check_admissions(coop, events, findings)
    return findings


def check_acks(by_coop: dict[str, list[Stored]], acks: list[Ack], findings: Findings) -> None:
    index = {(s.coop, s.version): s for events in by_coop.values() for s in events}
    for ack in acks:
        missing = [
            e
            for e in ack.events
            if (stored := index.get((e[0], e[1]))) is None
            or (stored.name, stored.position) != (e[2], e[3])
        ]
        if len(missing) == len(ack.events):
            findings.lost.append(f"{ack.op} {ack.marker}: {ack.events}")
        elif missing:
            findings.half_written.append(f"{ack.op} {ack.marker}: missing {missing}")


def check_markers(
    by_coop: dict[str, list[Stored]],
    acks: list[Ack],
    abandoned: dict[str, str],
    run_id: str,
    findings: Findings,
) -> None:
    marked: Counter[str] = Counter(
        reason
        for events in by_coop.values()
        for s in events
        if isinstance(reason := getattr(s.event, "reason", None), str) and reason.startswith(run_id)
    )
    findings.duplicates.extend(f"{m} stored {n} times" for m, n in marked.items() if n > 1)
    acked = {a.marker for a in acks}
    findings.unacknowledged_but_stored = sum(1 for m in abandoned if m in marked and m not in acked)


def check_gapless(coop: str, events: list[Stored], findings: Findings) -> None:
    versions = [s.version for s in events]
    if versions != list(range(1, len(versions) + 1)):
        findings.half_written.append(f"{coop}: versions are not 1..{len(versions)}")


def check_membership(coop: str, events: list[Stored], findings: Findings) -> None:
    members: set[str] = set()
    for s in events:
        e = s.event
        if s.name in ("Founded", "SplitOff"):
            members = {str(m.person_id) for m in e.members}
        elif s.name == "MemberAdmitted":
            if str(e.person_id) in members:
                findings.rule_violations.append(f"{coop} v{s.version}: admitted twice")
            members.add(str(e.person_id))
        elif s.name == "MemberLeft":
            if str(e.person_id) not in members:
                findings.rule_violations.append(f"{coop} v{s.version}: a non-member left")
            members.discard(str(e.person_id))
        elif s.name == "Split":
            members -= {str(p) for p in e.moving_members}
        if len(members) > MAX_MEMBERS:
            findings.rule_violations.append(f"{coop} v{s.version}: {len(members)} members")


def check_invoices(coop: str, events: list[Stored], findings: Findings) -> None:
    numbers = [int(s.event.number) for s in events if s.name == "InvoiceIssued"]
    if numbers != list(range(1, len(numbers) + 1)):
        findings.rule_violations.append(f"{coop}: invoice numbers {numbers[:20]} have gaps")


def check_votes(coop: str, events: list[Stored], findings: Findings) -> None:
    electorate: dict[str, set[str]] = {}
    decided: set[str] = set()
    cast: Counter[tuple[str, str]] = Counter()
    for s in events:
        e = s.event
        if s.name == "ProposalRaised":
            electorate[str(e.proposal_id)] = {str(m) for m in e.electorate}
        elif s.name.startswith("Proposal") and hasattr(e, "tally"):
            decided.add(str(e.proposal_id))
        elif s.name in ("VoteCast", "VoteChanged"):
            proposal, voter = str(e.proposal_id), str(e.actor)
            where = f"{coop} v{s.version}"
            if voter not in electorate.get(proposal, set()):
                findings.rule_violations.append(f"{where}: vote from outside the electorate")
            if proposal in decided:
                findings.rule_violations.append(f"{where}: vote after the decision")
            if s.name == "VoteCast":
                cast[(proposal, voter)] += 1
                if cast[(proposal, voter)] > 1:
                    findings.rule_violations.append(f"{where}: a second vote by one member")
            elif not cast[(proposal, voter)]:
                findings.rule_violations.append(f"{where}: a vote changed before it was cast")


def check_admissions(coop: str, events: list[Stored], findings: Findings) -> None:
    """An adopted admission and its MemberAdmitted are one write: never one without the other."""
    kinds = {
        str(s.event.proposal_id): str(getattr(s.event.kind, "value", s.event.kind))
        for s in events
        if s.name == "ProposalRaised"
    }
    for i, s in enumerate(events):
        if s.name != "ProposalAdopted" or kinds.get(str(s.event.proposal_id)) != "admit_member":
            continue
        after = events[i + 1] if i + 1 < len(events) else None
        if (
            after is None
            or after.name != "MemberAdmitted"
            or str(after.event.decision_id) != str(s.event.proposal_id)
            or after.position != s.position + 1
        ):
            findings.half_written.append(f"{coop} v{s.version}: adopted admission half-written")
