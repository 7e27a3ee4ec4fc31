"""Time travel and diff: a cooperative as it stood at a past moment, and what changed since.

In a dispute ("was I really outvoted?", "who was a member on the day of the split?") the
answer must come from the ledger's own events, never from a projection that could lag or
be rebuilt differently. A moment is a version of the cooperative, a position in the whole
ledger (a notification id) or a time; it resolves to the cooperative's last event at or
before it, and the aggregate is replayed to exactly that version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.cooperative import Cooperative
from ledger.errors import CooperativeNotFound, InvalidInput
from ledger.state import Invoice, Proposal, WorkStatus

# JSON values only (see ``describe``), so a state compares, serialises and travels as is.
CooperativeState = dict[str, Any]
# A decision's outcome, by the name of the event that recorded it.
OUTCOMES = {f"Proposal{o.title()}": o for o in ("adopted", "rejected", "expired", "lapsed")}

# Versions and positions are 64-bit in both stores; a larger number cannot name a moment.
MAX_NUMBER = 2**63 - 1
MOMENT_SYNTAX = "v12 (a version), p340 (a position), an ISO time with zone, or 'latest'"
_LOST_PLUS = re.compile(r" (\d\d:?\d\d)$")  # an unescaped '+' in a URL query arrives as a space


def plain(value: Any) -> Any:
    """JSON values: ids as strings, enums as values, times in ISO 8601, dataclasses as dicts."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


def _utc(moment: datetime, field: str) -> datetime:
    if moment.utcoffset() is None:
        raise InvalidInput(
            f"{field}: a time names its zone, e.g. 2026-03-01T12:00:00Z", field=field
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field}: the time is out of range", field=field) from None


@dataclass(frozen=True)
class Moment:
    """A moment in one cooperative's history; nothing set means its latest version."""

    version: int | None = None
    position: int | None = None
    at: datetime | None = None

    @classmethod
    def of(
        cls, *, version: int | None = None, position: int | None = None, at: datetime | None = None
    ) -> Moment:
        given = (("version", version), ("position", position), ("at", at))
        named = [name for name, value in given if value is not None]
        if len(named) > 1:
            raise InvalidInput(
                f"name one moment: a version, a position or a time, not {' and '.join(named)}",
                field=named[-1],
            )
        for name, number in (("version", version), ("position", position)):
            if number is not None and not 1 <= number <= MAX_NUMBER:
                raise InvalidInput(f"{name} must be between 1 and {MAX_NUMBER}", field=name)
        return cls(version, position, _utc(at, "at") if at is not None else None)

    @classmethod
    def parse(cls, text: str, field: str = "as_of") -> Moment:
        """``v12``, ``p340``, ``2026-03-01T12:00:00Z`` or ``latest``."""
        text = text.strip()
        if text.lower() == "latest":
            return cls()
        kind, digits = text[:1].lower(), text[1:]
        if kind in ("v", "p") and digits.isascii() and digits.isdigit() and len(digits) < 20:
            if 1 <= int(digits) <= MAX_NUMBER:
                return cls(version=int(digits)) if kind == "v" else cls(position=int(digits))
        else:
            try:
                return cls(at=_utc(datetime.fromisoformat(_LOST_PLUS.sub(r"+\1", text)), field))
            except ValueError:
                pass
        raise InvalidInput(f"{field}: {text[:64]!r} is not a moment ({MOMENT_SYNTAX})", field=field)


@dataclass(frozen=True)
class Point:
    """A moment resolved: the cooperative replayed to its last event at or before it."""

    coop: Cooperative
    position: int
    moment: datetime  # when the state is judged (is the mentor year still running?)

    def as_of(self) -> dict[str, Any]:
        c = self.coop
        as_of = {"version": c.version, "position": self.position, "timestamp": c.modified_on}
        return {**plain(as_of), "moment": plain(self.moment)}


def _events_table(ledger: Ledger) -> tuple[str, str, Callable[[UUID], str]]:
    """The events table, its notification id column, and how it stores an id."""
    position = "rowid" if ledger.config.kind == "sqlite" else "notification_id"
    return ledger.events_table, position, ledger.event_key


def positions(ledger: Ledger, cooperative_id: UUID, gt: int, lte: int) -> dict[int, int]:
    """The positions (notification ids) of the cooperative's versions in ``(gt, lte]``."""
    table, pos, spell = _events_table(ledger)
    with ledger.db.read() as cur:
        cur.execute(
            f"SELECT originator_version, {pos} FROM {table} WHERE originator_id = ?"
            " AND originator_version > ? AND originator_version <= ?",
            (spell(cooperative_id), gt, lte),
        )
        return {int(v): int(p) for v, p in cur.fetchall()}


def _version_at(ledger: Ledger, cooperative_id: UUID, position: int, field: str) -> int:
    head = ledger.recorder.max_notification_id() or 0
    if position > head:
        raise InvalidInput(f"position {position} is beyond the ledger's head {head}", field=field)
    table, pos, spell = _events_table(ledger)
    with ledger.db.read() as cur:
        # Versions and positions rise together: the writes of one cooperative are serialised.
        where = f"FROM {table} WHERE originator_id = ?"
        cur.execute(
            f"SELECT MAX(originator_version) {where} AND {pos} <= ?",
            (spell(cooperative_id), position),
        )
        version = cur.fetchone()[0]
        if version is not None:
            return int(version)
        cur.execute(f"SELECT MIN({pos}) {where}", (spell(cooperative_id),))
        first = cur.fetchone()[0]
    if first is None:
        raise CooperativeNotFound(f"no cooperative {cooperative_id}", field="cooperative_id")
    raise InvalidInput(
        f"position {position} is before the founding (position {first})", field=field
    )


def _replay_until(ledger: Ledger, cooperative_id: UUID, at: datetime, field: str) -> Cooperative:
    if at > ledger.clock():
        raise InvalidInput(f"{at.isoformat()} lies in the future", field=field)
    coop: Cooperative | None = None
    seen = False
    for event in ledger.events.get(cooperative_id):  # decoded lazily: stops at the first later
        seen = True
        if event.timestamp > at:  # type: ignore[attr-defined]
            break
        coop = event.mutate(coop)  # type: ignore[attr-defined]
    if not seen:
        raise CooperativeNotFound(f"no cooperative {cooperative_id}", field="cooperative_id")
    if coop is None:
        raise InvalidInput(f"the cooperative was founded after {at.isoformat()}", field=field)
    return coop


def locate(ledger: Ledger, cooperative_id: UUID, moment: Moment, field: str | None = None) -> Point:
    """Resolve ``moment``; one before the founding, or not reached yet, is refused by name."""
    if moment.at is not None:
        coop = _replay_until(ledger, cooperative_id, moment.at, field or "at")
        judged = moment.at
    else:
        version = moment.version
        if moment.position is not None:
            version = _version_at(ledger, cooperative_id, moment.position, field or "position")
        coop = ledger.get_cooperative(cooperative_id, version=version)
        if version is not None and coop.version != version:
            raise InvalidInput(
                f"the cooperative has reached version {coop.version}, not {version}",
                field=field or "version",
            )
        # The latest state is judged now; a past version at the time of its own last event.
        judged = ledger.clock() if moment == Moment() else coop.modified_on
    position = positions(ledger, cooperative_id, coop.version - 1, coop.version)[coop.version]
    return Point(coop, position, judged)


@dataclass(frozen=True)
class Settled:
    """What the aggregate no longer keeps, read from its events: decisions and all invoices."""

    decisions: list[dict[str, Any]]
    invoices: list[Invoice]


def settled(ledger: Ledger, cooperative_id: UUID, version: int) -> Settled:
    """Every decision and invoice of the cooperative up to ``version``, from its events."""
    raised: dict[UUID, tuple[datetime, Any]] = {}
    decided: dict[UUID, str] = {}
    invoices: dict[int, Invoice] = {}
    for e in ledger.events.get(cooperative_id, lte=version):
        if isinstance(e, Cooperative.ProposalRaised):
            raised[e.proposal_id] = (e.timestamp, e.kind)
        elif isinstance(e, Cooperative.ProposalDecided):
            decided[e.proposal_id] = OUTCOMES[type(e).__name__]
        elif isinstance(e, Cooperative.InvoiceIssued):
            invoices[e.number] = Invoice(
                e.number,
                e.client_ref,
                e.entry_ids,
                e.hourly_rate_cents,
                e.amount_cents,
                e.timestamp,
                e.actor,
            )
        elif isinstance(e, Cooperative.InvoicePaid):
            invoices[e.number].paid_cents += e.amount_cents
        elif isinstance(e, Cooperative.InvoiceCredited):
            invoices[e.number].credit_note_number = e.credit_note_number
    decisions = [
        {"id": p, "kind": raised[p][1], "outcome": outcome}
        for p, outcome in sorted(decided.items(), key=lambda d: (raised[d[0]][0], str(d[0])))
    ]
    return Settled(decisions, sorted(invoices.values(), key=lambda i: i.number))


def describe(coop: Cooperative, past: Settled, moment: datetime | None = None) -> CooperativeState:
    """The cooperative's state in JSON values; whether the mentor is active, at ``moment``.

    ``past`` (see ``settled``) comes from the events: the aggregate keeps only open
    business, not its decisions and settled invoices.
    """
    moment = moment or coop.modified_on
    proposals = sorted(coop.proposals.values(), key=lambda p: (p.raised_at, str(p.id)))
    work = sorted(coop.work.values(), key=lambda w: (w.since, str(w.id)))
    mentor: dict[str, Any] | None = None
    if coop.mentor_id is not None:
        mentor = {"person_id": coop.mentor_id, "until": coop.mentor_until}
        mentor |= {"ended": coop.mentorship_ended, "active": coop.mentor_is_active(moment)}
    state: CooperativeState = plain(
        {
            "cooperative_id": coop.id,
            "name": coop.name,
            "sector": coop.sector,
            "founded_at": coop.founded_at,
            "parent_id": coop.parent_id,
            "children": coop.children,
            "members": sorted(coop.members.values(), key=lambda m: str(m.person_id)),
            "former_members": dict(sorted(coop.former_members.items(), key=lambda i: str(i[0]))),
            "mentor": mentor,
            "coordinator_id": coop.coordinator_id,
            "rules": coop.rules,
            # The aggregate keeps a proposal's electorate and votes until it is decided.
            "open_proposals": [p for p in proposals if p.is_open],
            "decisions": past.decisions,
            "invoices": [
                {k: v for k, v in vars(i).items() if k != "entry_ids"}
                | {"status": i.status, "outstanding_cents": i.outstanding_cents}
                for i in past.invoices
            ],
            # Released work is open business too: it waits for a member to pick it up.
            "open_work": [w for w in work if w.status in (WorkStatus.OPEN, WorkStatus.RELEASED)],
        }
    )
    return state


def state_at(ledger: Ledger, cooperative_id: UUID, moment: Moment) -> CooperativeState:
    point = locate(ledger, cooperative_id, moment)
    past = settled(ledger, cooperative_id, point.coop.version)
    return {"as_of": point.as_of(), **describe(point.coop, past, point.moment)}


def state_as_of(
    ledger: Ledger,
    cooperative_id: UUID,
    *,
    version: int | None = None,
    position: int | None = None,
    at: datetime | None = None,
) -> CooperativeState:
    """The cooperative as of one moment (at most one of the three; none: its latest version)."""
    return state_at(ledger, cooperative_id, Moment.of(version=version, position=position, at=at))


# ---- diff -----------------------------------------------------------------------------------

_LISTS = "joined left started ended rules_changed raised decisions splits issued paid credited work"
Events = list[dict[str, Any]]


class _Walk:
    """Walks the events between two moments with just enough running state to name changes."""

    def __init__(self, start: Point, end: Point) -> None:
        self.start, self.end = start, end
        self.members = set(start.coop.members)
        self.holders = {w.id: w.holder for w in start.coop.work.values()}
        # Closed work leaves the aggregate: its client is known from the start or its taking.
        self.clients = {w.id: w.client_ref for w in start.coop.work.values()}
        self.raised: dict[UUID, Proposal | Cooperative.ProposalRaised] = dict(start.coop.proposals)
        self.owed = {n: [i.amount_cents, i.paid_cents] for n, i in start.coop.invoices.items()}
        self.rules = start.coop.rules
        self.decisions: dict[UUID, dict[str, Any]] = {}
        self.offers: dict[UUID, tuple[UUID, dict[str, Any]]] = {}
        self.out: dict[str, Events] = {key: [] for key in _LISTS.split()}

    def see(self, event: Any, position: int) -> None:
        name = type(event).__name__
        cause = {"version": event.originator_version, "position": position, "event": name}
        cause = plain(cause | {"timestamp": event.timestamp, "actor": event.actor})
        if isinstance(event, Cooperative.ProposalDecided):
            self._decided(event, cause, OUTCOMES[name])
        elif handler := getattr(self, "_" + name, None):  # votes, hours: not a diff's business
            handler(event, cause)

    def _add(self, key: str, events: Events, **values: Any) -> dict[str, Any]:
        record: dict[str, Any] = plain(values) | {"events": events}
        self.out[key].append(record)
        return record

    def _because(self, decision_id: UUID | None, cause: dict[str, Any]) -> Events:
        """A governance change's events: the adoption behind it (when in range), then itself."""
        decision = self.decisions.get(decision_id) if decision_id else None
        if decision is None:
            return [cause]
        decision["events"].append(cause)
        return [decision["events"][0], cause]

    def _work(self, work_id: UUID, change: str, to: UUID | None, events: Events) -> None:
        client = self.clients[work_id]
        holder = self.holders.get(work_id)
        self._add("work", events, work_id=work_id, client_ref=client, change=change)
        self.out["work"][-1] |= plain({"from": holder, "to": to})
        self.holders[work_id] = to

    def _MemberAdmitted(self, e: Cooperative.MemberAdmitted, cause: Any) -> None:
        self.members.add(e.person_id)
        how = "admitted_by_decision" if e.decision_id else "admitted_by_mentor"
        self._add("joined", self._because(e.decision_id, cause), person_id=e.person_id, how=how)

    def _MemberLeft(self, e: Cooperative.MemberLeft, cause: Any) -> None:
        self.members.discard(e.person_id)
        self._add("left", [cause], person_id=e.person_id, how="left")
        for work_id in e.released_work:
            self._work(work_id, "released", None, [cause])

    def _CoordinatorAppointed(self, e: Cooperative.CoordinatorAppointed, cause: Any) -> None:
        events = self._because(e.decision_id, cause)
        if e.replaces is not None:
            self._add("ended", events, role="coordinator", person_id=e.replaces, how="replaced")
        self._add("started", events, role="coordinator", person_id=e.member_id, how="appointed")

    def _CoordinatorVacated(self, e: Cooperative.CoordinatorVacated, cause: Any) -> None:
        # A split vacates the role before the coordinator moves; leaving, after they left.
        how = "moved_by_split" if e.decision_id else "stepped_down"
        how = "left" if e.member_id not in self.members else how
        events = self._because(e.decision_id, cause)
        self._add("ended", events, role="coordinator", person_id=e.member_id, how=how)

    def _MentorshipEnded(self, e: Cooperative.MentorshipEnded, cause: Any) -> None:
        how = "ended_early_by_decision" if e.early else "handover"
        events = self._because(e.decision_id, cause)
        self._add("ended", events, role="mentor", person_id=e.mentor_id, how=how)

    def _RulesChanged(self, e: Cooperative.RulesChanged, cause: Any) -> None:
        events = self._because(e.decision_id, cause)
        self._add("rules_changed", events, before=self.rules, after=e.rules)
        self.rules = e.rules

    def _ProposalRaised(self, e: Cooperative.ProposalRaised, cause: Any) -> None:
        self.raised[e.proposal_id] = e
        self._add(
            "raised", [cause], proposal_id=e.proposal_id, kind=e.kind, electorate=e.electorate
        )

    def _decided(self, e: Cooperative.ProposalDecided, cause: Any, outcome: str) -> None:
        # Open at the start or raised since: a decided proposal leaves the aggregate.
        proposal = self.raised[e.proposal_id]
        self.decisions[e.proposal_id] = self._add(
            "decisions",
            [cause],
            proposal_id=e.proposal_id,
            kind=proposal.kind,
            text=proposal.text,
            outcome=outcome,
            tally=e.tally,
            rule_applied=e.rule_applied,
            refusal=getattr(e, "refusal", None),
            # Deciding forgets who voted how; the state one version earlier still shows it.
            votes_as_of_version=e.originator_version - 1,
        )

    def _Split(self, e: Cooperative.Split, cause: Any) -> None:
        events = self._because(e.decision_id, cause)
        child = {"child_id": e.child_id, "child_name": e.child_name}
        self._add("splits", events, **child, moving_members=e.moving_members)
        for person in e.moving_members:
            self.members.discard(person)
            self._add("left", events, person_id=person, how="moved_by_split", to=e.child_id)
        for work_id in e.moved_work:
            self._work(work_id, "moved_by_split", None, events)
            self.out["work"][-1]["to_cooperative"] = str(e.child_id)

    def _WorkTaken(self, e: Cooperative.WorkTaken, cause: Any) -> None:
        # Work this cooperative knew already was released by a member who left.
        self.clients[e.work_id] = e.client_ref
        self._work(
            e.work_id, "picked_up" if e.work_id in self.holders else "taken", e.actor, [cause]
        )

    def _WorkHandedOver(self, e: Cooperative.WorkHandedOver, cause: Any) -> None:
        self.offers[e.work_id] = (e.to_member, cause)  # it moves only when accepted

    def _WorkAccepted(self, e: Cooperative.WorkAccepted, cause: Any) -> None:
        offer = self.offers.pop(e.work_id, None)
        self._work(e.work_id, "handed_over", e.actor, [offer[1], cause] if offer else [cause])

    def _WorkCompleted(self, e: Cooperative.WorkCompleted, cause: Any) -> None:
        self._work(e.work_id, "completed", None, [cause])
        self.holders[e.work_id] = e.actor

    def _InvoiceIssued(self, e: Cooperative.InvoiceIssued, cause: Any) -> None:
        self.owed[e.number] = [e.amount_cents, 0]
        client = {"client_ref": e.client_ref, "amount_cents": e.amount_cents}
        self._add("issued", [cause], number=e.number, **client)

    def _InvoicePaid(self, e: Cooperative.InvoicePaid, cause: Any) -> None:
        owed = self.owed[e.number]
        owed[1] += e.amount_cents
        full = owed[1] >= owed[0]
        self._add("paid", [cause], number=e.number, amount_cents=e.amount_cents, paid_in_full=full)

    def _InvoiceCredited(self, e: Cooperative.InvoiceCredited, cause: Any) -> None:
        note = {"credit_note_number": e.credit_note_number, "amount_cents": e.amount_cents}
        self._add("credited", [cause], number=e.number, **note)

    def result(self) -> dict[str, Any]:
        start, end, out = self.start.coop, self.end.coop, self.out
        for work_id, (to, cause) in self.offers.items():
            work = end.work.get(work_id)
            if work is not None and work.handover_to == to:  # offered, not (yet) accepted
                self._work(work_id, "handover_offered", to, [cause])
                self.holders[work_id] = work.holder
        lapsed = start.mentor_is_active(self.start.moment) and not end.mentor_is_active(
            self.end.moment
        )
        if lapsed and start.mentor_id and not any(r["role"] == "mentor" for r in out["ended"]):
            # No event ends a mentor year: time does, so there is only the date to cite.
            self._add("ended", [], role="mentor", person_id=start.mentor_id, how="year_over")
            out["ended"][-1]["at"] = plain(end.mentor_until)
        return {
            "members": {"joined": out["joined"], "left": out["left"]},
            "roles": {"started": out["started"], "ended": out["ended"]},
            "rules_changed": out["rules_changed"],
            "proposals_raised": out["raised"],
            "decisions": out["decisions"],
            "splits": out["splits"],
            "invoices": {k: out[k] for k in ("issued", "paid", "credited")},
            "work": out["work"],
        }


def _moment(spec: Moment | str | None, field: str) -> Moment:
    if isinstance(spec, Moment):
        return spec
    return Moment.parse(spec, field) if spec is not None else Moment()


def diff(
    ledger: Ledger, cooperative_id: UUID, from_: Moment | str, to: Moment | str | None = None
) -> dict[str, Any]:
    """What changed between two moments (``to`` defaults to the latest), each with its events."""
    start = locate(ledger, cooperative_id, _moment(from_, "from"), "from")
    end = locate(ledger, cooperative_id, _moment(to, "to"), "to")
    low, high = start.coop.version, end.coop.version
    if high < low:
        raise InvalidInput(f"'to' (version {high}) lies before 'from' (version {low})", field="to")
    walk = _Walk(start, end)
    where = positions(ledger, cooperative_id, low, high)
    for event in ledger.events.get(cooperative_id, gt=low, lte=high):
        walk.see(event, where[event.originator_version])
    changes = {"from": start.as_of(), "to": end.as_of(), **walk.result()}
    return {"cooperative_id": str(cooperative_id), **changes}
