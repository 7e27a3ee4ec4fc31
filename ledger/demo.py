"""The seed story as a demo: a year of cooperatives, loaded through the Ledger.

A calendar of scenes from about fourteen months before ``today``; the demo owns the ledger's
clock and sets it to each scene's moment, so every event lies in the past and positions follow
timestamps. People, founding, membership, proposals, votes, handovers and the credit note go
through the Ledger's use cases, one command each. The bulk (work, hours, invoice runs,
payments: nine events in ten) runs through the aggregate's own commands on a copy the story
keeps between scenes, as ``ledger.loadgen`` does: the same rules, without reloading a
cooperative for every line of a timesheet. So the demo must be the store's only writer while
it loads (another writer makes a save fail, never corrupts). Choices come from
``random.Random(seed)``; only the ids differ from run to run.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from ledger.application import CommandResult, Ledger, balanced_chunks
from ledger.cooperative import Cooperative
from ledger.demo_people import TOPICS, Cast
from ledger.errors import ManagerRoleDoesNotExist
from ledger.rules import DecisionMode, DecisionRules
from ledger.state import FoundingMember, SplitPlan
from ledger.storage import StoreConfig

COMPANY = "Schoonmaakbedrijf Van Dijk"
DE_BRUG, HET_ANKER = "Jeugdzorgcoöperatie De Brug", "Jeugdzorgcoöperatie Het Anker"
VAN_DIJK_1, VAN_DIJK_2 = f"{COMPANY} 1", f"{COMPANY} 2"
CLEANING_RATE, YOUTH_CARE_RATE = 3450, 7850  # cents per hour
STORY_DAYS = 427  # about fourteen months: the mentor year and some time after it

Scene = Callable[[], object]


@dataclass(frozen=True)
class DemoSummary:
    """What was loaded; no personal data, no tokens."""

    facilitator_id: UUID
    cooperatives: Mapping[str, UUID]
    events: int
    last_position: int


@dataclass
class DemoClock:
    """The clock the demo's ledger reads; only the story moves it, and only forward."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Coop:
    """What the story remembers of a cooperative, so that no choice depends on id order."""

    id: UUID
    name: str
    rate: int
    task: str
    members: list[UUID]
    active: bool  # whether the demo tells its members' daily work
    buildings: list[str] = field(default_factory=list)  # clients shared by members (cleaning)
    work: dict[UUID, tuple[UUID, str, date]] = field(default_factory=dict)  # holder, client, since
    payments: list[tuple[datetime, int, bool]] = field(default_factory=list)  # due, number, split
    aggregate: Cooperative | None = None  # the story's copy, while no use case changed it


class Story:
    """The seed story: scenes on a calendar, told through one Ledger whose clock it moves."""

    def __init__(
        self, ledger: Ledger, clock: DemoClock, rng: random.Random, end: datetime, scale: float
    ) -> None:
        self.ledger, self.clock, self.rng, self.end = ledger, clock, rng, end
        self.presence = 0.85 * scale  # the share of working days a member logs hours for
        self.scenes: list[tuple[datetime, int, Scene]] = []
        self.order = itertools.count()  # scenes at the same moment run in the planned order
        self.coops: dict[str, Coop] = {}
        self.clients = itertools.count(1)
        self.misbilled: str | None = DE_BRUG  # where one invoice goes out wrong and is credited
        self.cast = Cast.register(ledger, rng)

    def client(self) -> str:
        return f"client-{next(self.clients):04d}"  # an opaque reference, never a name (rule 12)

    # ---- the calendar -------------------------------------------------------------

    def at(self, when: datetime, scene: Scene) -> None:
        if when < self.end:  # the story never reaches into the future
            heapq.heappush(self.scenes, (when, next(self.order), scene))

    def later(self, **delta: float) -> datetime:
        return self.clock.now + timedelta(**delta)

    def run(self) -> None:
        while self.scenes:
            when, _, scene = heapq.heappop(self.scenes)
            # A scene with many votes takes a while; the next one starts after it.
            self.clock.now = max(self.clock.now, when)
            scene()

    def plan(self, start: datetime) -> None:
        anker, brug, dijk1, dijk2 = HET_ANKER, DE_BRUG, VAN_DIJK_1, VAN_DIJK_2
        decide, admit = self.decide, self.admit
        consent = DecisionRules(mode=DecisionMode.CONSENT)
        # Days from the start, and what happens; votes are (against, abstain, silent).
        # fmt: off
        story: list[tuple[int, Scene]] = [
            (0, self.convert),
            (10, partial(self.found, brug, 8)),
            (17, partial(self.found, anker, 12)),
            (18, partial(self.someone_takes_the_lead, anker)),
            (35, partial(admit, anker, by_mentor=True)),
            (44, partial(decide, dijk2, "change_rules", "We decide by consent", (3, 2, 0),
                         new_rules=consent)),
            (49, partial(admit, anker, by_mentor=True)),
            (63, partial(decide, dijk1, "general", "One supplier for all buildings", (4, 0, 0),
                         change=True)),
            (91, partial(decide, dijk1, "general", "Lease a van", (11, 2, 0))),
            (112, partial(decide, brug, "general", "Meet on Thursdays", (0, 0, 5))),
            *((d, partial(admit, anker, by_mentor=False)) for d in range(140, 225, 28)),
            (252, partial(self.split, anker, f"{anker} Oost")),
            *((d, partial(decide, (dijk1, brug, dijk2, anker)[n % 4], "general", TOPICS[n],
                          (n % 3, 0, 0))) for n, d in enumerate(range(30, 340, 45))),
        ]
        # fmt: on
        for d, scene in story:
            self.at(start + timedelta(days=d, hours=2), scene)
        for d in range(STORY_DAYS + 7):
            if (start + timedelta(days=d)).weekday() == 4:  # Friday afternoon: timesheets
                self.at(start + timedelta(days=d, hours=9), self.week)
            if (start + timedelta(days=d)).day == 1:
                self.at(start + timedelta(days=d, hours=1), self.invoice_all)

    # ---- the ledger ---------------------------------------------------------------

    def use(self, coop: Coop, case: Callable[..., CommandResult], *args: Any, **kw: Any) -> Any:
        """One of the Ledger's use cases on ``coop``; the story's copy is stale after it."""
        coop.aggregate = None
        return case(coop.id, *args, **kw).value

    def aggregate(self, coop: Coop) -> Cooperative:
        """For bulk work: the cooperative as the story last saved it, loaded only when stale."""
        if coop.aggregate is None:
            coop.aggregate = self.ledger.get_cooperative(coop.id)
        return coop.aggregate

    # ---- founding, membership, decisions ------------------------------------------

    def add(self, coop: Coop) -> None:
        self.coops[coop.name] = coop
        if (until := self.aggregate(coop).mentor_until) is not None:
            # The handover a day or a few after the year: not all thirteen on one morning.
            handover = until + timedelta(days=1 + len(self.coops) % 5)
            self.at(handover, partial(self.hand_over, coop.name))

    def convert(self) -> None:
        cast = self.cast
        results = self.ledger.convert_company(
            company=COMPANY, sector="cleaning", employees=cast.employees, mentor_id=cast.mentor,
            actor=cast.facilitator, reason="the company re-houses all its employees",
        )  # fmt: skip
        # The conversion's own chunks: ten of twenty, in the employees' order.
        chunks = balanced_chunks(cast.employees, 20)
        for n, (result, members) in enumerate(zip(results, chunks, strict=True), start=1):
            # Two of the ten tell their daily work; the other eight work off-stage.
            buildings = [self.client() for _ in range(5)] if n <= 2 else []
            self.add(Coop(result.cooperative_id, f"{COMPANY} {n}", CLEANING_RATE, "cleaning",
                          members, active=n <= 2, buildings=buildings))  # fmt: skip

    def found(self, name: str, size: int) -> None:
        people = [self.cast.youth_workers.pop(0) for _ in range(size)]
        groups = enumerate(balanced_chunks(people, 6), start=1)  # conversation groups of ~six
        result = self.ledger.found_cooperative(
            name=name, sector="youth care", mentor_id=self.cast.mentor,
            members=[FoundingMember(p, f"gespreksgroep {g}") for g, group in groups for p in group],
            actor=self.cast.facilitator, reason="youth workers and municipal staff together",
        )  # fmt: skip
        coop_id = result.cooperative_id
        self.add(Coop(coop_id, name, YOUTH_CARE_RATE, "family support", people, active=True))

    def someone_takes_the_lead(self, name: str) -> None:
        # "Then I'll take the lead": refused by name (rules 2 and 5); nothing is recorded.
        coop = self.coops[name]
        with contextlib.suppress(ManagerRoleDoesNotExist):
            self.use(coop, self.ledger.raise_proposal, kind="appoint_manager",
                     text="Someone has to lead", actor=coop.members[0])  # fmt: skip

    def admit(self, name: str, *, by_mentor: bool) -> None:
        coop, newcomer = self.coops[name], self.cast.youth_workers.pop(0)
        if by_mentor:  # the mentor's own authority, in the mentor year only (rule 6)
            self.use(coop, self.ledger.admit_founding_member, newcomer, actor=self.cast.mentor,
                     conversation_group="gespreksgroep 3")  # fmt: skip
        else:
            text = "There is work for one more of us"
            self.decide(name, "admit_member", text, (0, 1, 0), subject=newcomer)
        coop.members.append(newcomer)

    def split(self, name: str, new_name: str) -> None:
        coop = self.coops[name]
        half = len(coop.members) // 2
        stay, move = coop.members[:half], coop.members[half:]
        text = "There is work for more of us: we split to stay small"
        self.decide(name, "split", text, (2, 1, 0), split=SplitPlan(new_name, tuple(move)))
        child = self.aggregate(coop).children[-1]
        # Open work goes with the member who holds it (rule 8); invoices stay.
        moved = {w: held for w, held in coop.work.items() if held[0] in move}
        coop.members, coop.work = stay, {w: h for w, h in coop.work.items() if w not in moved}
        self.add(Coop(child, new_name, coop.rate, coop.task, move, active=True, work=moved))

    def hand_over(self, name: str) -> None:
        coop = self.coops[name]
        self.use(coop, self.ledger.complete_mentor_year, actor=self.cast.mentor, reason="a year")
        # No name in the text: free text is stored forever, like every event (rule 12).
        text = "One of us becomes coordinator and does the invoices; no boss, no extra vote"
        coordinator = self.rng.choice(coop.members)
        self.decide(name, "appoint_coordinator", text, (0, 1, 0), subject=coordinator)

    def decide(
        self, name: str, kind: str, text: str, votes: tuple[int, int, int] = (0, 0, 0),
        change: bool = False, **payload: Any,
    ) -> None:  # fmt: skip
        """Raise a proposal; all members vote, (against, abstain, silent) of them not for."""
        coop = self.coops[name]
        voters = self.rng.sample(coop.members, len(coop.members))
        raise_ = self.ledger.raise_proposal
        proposal = self.use(coop, raise_, kind=kind, text=text, actor=voters[0], **payload)
        against, abstain, silent = votes
        choices = ["against"] * against + ["abstain"] * abstain
        choices += ["for"] * (len(voters) - silent - len(choices))
        self.rng.shuffle(choices)
        for voter, choice in zip(voters, choices, strict=False):
            self.clock.now = self.later(minutes=self.rng.randint(1, 8))  # in the meeting
            if change and choice == "for":  # persuaded in the meeting: the vote changes
                change = False
                self.use(coop, self.ledger.vote, proposal, "against", actor=voter)
            self.use(coop, self.ledger.vote, proposal, choice, actor=voter)
        close = partial(self.use, coop, self.ledger.close_proposal, proposal, actor=voters[0])
        if silent:  # not everyone voted: closed after the deadline, it expires without quorum
            self.at(self.later(days=8), close)
        else:
            close()

    # ---- work and invoices: bulk, on the story's copy, saved as it goes --------------

    def week(self) -> None:
        """Each member's timesheet for the week, and the payments the bank statement shows."""
        at = self.clock.now
        days = [at.date() - timedelta(days=n) for n in range(4, -1, -1)]
        for coop in [c for c in self.coops.values() if c.active]:
            aggregate = self.aggregate(coop)
            holders = {holder for holder, _, _ in coop.work.values()}
            for member in coop.members:
                if member not in holders:  # a member takes work on themselves (rule 9)
                    self.take(aggregate, coop, member)
            for work_id, (holder, client, since) in list(coop.work.items()):
                for day in days:
                    if day >= since and self.rng.random() < self.presence:
                        minutes = self.rng.randrange(60, 361, 15)
                        aggregate.log_hours(work_id, minutes, day, actor=holder, at=at)
                roll = self.rng.random()
                if roll < 0.01:  # the job is done; the member takes on a new one
                    aggregate.complete_work(work_id, actor=holder, at=at)
                    del coop.work[work_id]
                    self.take(aggregate, coop, holder)
                elif roll < 0.015:  # handed over to a colleague, who accepts
                    other = self.rng.choice([m for m in coop.members if m != holder])
                    aggregate.hand_over_work(work_id, other, actor=holder, at=at)
                    aggregate.accept_work(work_id, actor=other, at=at)
                    coop.work[work_id] = (other, client, at.date())
            self.book_payments(coop, aggregate)
            self.ledger.save(aggregate)

    def take(self, aggregate: Cooperative, coop: Coop, member: UUID) -> None:
        client = self.rng.choice(coop.buildings) if coop.buildings else self.client()
        work_id = aggregate.take_work(client, coop.task, actor=member, at=self.clock.now)
        coop.work[work_id] = (member, client, self.clock.now.date())

    def book_payments(self, coop: Coop, aggregate: Cooperative) -> None:
        if (actor := self.invoicer(coop)) is None:  # handed over, nobody appointed yet
            return
        due = [p for p in coop.payments if p[0] <= self.clock.now]
        coop.payments = [p for p in coop.payments if p[0] > self.clock.now]
        for _, number, in_parts in due:
            amount = aggregate.invoices[number].outstanding_cents
            if in_parts and amount > 1 and self.rng.random() < 0.15:  # some pay in two parts
                amount = amount * 6 // 10
                coop.payments.append((self.later(days=self.rng.randint(14, 28)), number, False))
            aggregate.register_payment(number, amount, actor=actor, at=self.clock.now)

    def invoicer(self, coop: Coop) -> UUID | None:
        """The mentor in the mentor year, then the coordinator (rule 10)."""
        aggregate = self.aggregate(coop)
        mentor_active = aggregate.mentor_is_active(self.clock.now)
        return aggregate.mentor_id if mentor_active else aggregate.coordinator_id

    def invoice_all(self) -> None:
        for coop in [c for c in self.coops.values() if c.active]:
            self.invoice(coop.name)

    def invoice(self, name: str) -> None:
        coop = self.coops[name]
        if (actor := self.invoicer(coop)) is None:  # handed over, nobody appointed yet
            self.at(self.later(days=1), partial(self.invoice, name))
            return
        if name == self.misbilled and self.aggregate(coop).invoices_issued and self.unbilled(coop):
            self.misbilled = None
            wrong = self.use(coop, self.ledger.issue_invoice, client_ref=self.unbilled(coop)[0],
                             hourly_rate_cents=coop.rate + 1000, actor=actor)  # fmt: skip
            self.clock.now = self.later(hours=2)
            # Never changed, never deleted: a credit note; the hours are billed again below.
            self.use(coop, self.ledger.credit_invoice, wrong, actor=actor, reason="wrong rate")
        aggregate = self.aggregate(coop)
        for client in self.unbilled(coop):
            number = aggregate.issue_invoice(client, coop.rate, actor=actor, at=self.clock.now)
            coop.payments.append((self.later(days=self.rng.randint(7, 25)), number, True))
        self.ledger.save(aggregate)

    def unbilled(self, coop: Coop) -> list[str]:
        aggregate = self.aggregate(coop)
        entries = [e for e in aggregate.hours.values() if e.invoice_number is None]
        return sorted({aggregate.work[e.work_id].client_ref for e in entries})


def load_demo(
    config: StoreConfig, *, seed: int = 2026, today: datetime | None = None, scale: float = 1.0
) -> DemoSummary:
    """Load the seed story into the store of ``config``; the same ``seed`` tells the same story.

    It opens (and closes) its own Ledger, whose clock it moves. The story ends just before
    ``today`` (default: now; a naive time is read as local time). ``scale`` (0 to 1) thins
    the logged hours only, for a quicker load of the same story: members log hours on most
    working days at 1, on a quarter as many at 0.25.
    """
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be above 0 and at most 1, got {scale}")
    end = (today or datetime.now(UTC)).astimezone(UTC)
    first = end - timedelta(days=STORY_DAYS)
    # A Monday morning, so the weeks have their working days where one expects them.
    start = datetime.combine(first.date() - timedelta(days=first.weekday()), time(8), UTC)
    clock = DemoClock(start)
    with Ledger(config, clock=clock) as ledger:
        rng = random.Random(seed)  # noqa: S311 (a story, not a secret)
        story = Story(ledger, clock, rng, end, scale)
        story.plan(start)
        story.run()
        ids = {c.name: c.id for c in story.coops.values()}
        return DemoSummary(
            facilitator_id=story.cast.facilitator,
            cooperatives=ids,
            # A cooperative's version counts its events: true even when the store held others.
            events=sum(ledger.get_cooperative(i).version for i in ids.values()),
            last_position=ledger.recorder.max_notification_id() or 0,
        )
