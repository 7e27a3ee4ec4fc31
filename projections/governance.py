"""Governance: the audit trail, the decisions register and the equality indicators.

Every event of a cooperative becomes one audit row with a plain-English summary
built from ids only; names are joined from the people registry when read, so an
erased person's name disappears from every answer while their id stays.

The projection also checks, independently of the ledger's guards, that each
action which needs a mandate had one (rules 3, 6 and 10). The ledger refuses such
actions, so in a normal history the count is 0: the point is that a reader can
see that for themselves, from the events alone. The queries live in
``projections.governance_queries``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from ledger.cooperative import one_year_after
from ledger.rules import DecisionMode, DecisionRules, ProposalKind, VoteChoice
from ledger.state import FoundingMember
from projections.framework import Context, Projection, collect_handlers, event_name, handles, uid

# No secondary indexes: the primary keys lead with coop_id and serve every query,
# and an index named with ``{ix}`` would be created anew each time a runner starts.
DDL = (
    "CREATE TABLE IF NOT EXISTS {governance_audit} ("
    " coop_id TEXT NOT NULL, position BIGINT NOT NULL, version INTEGER NOT NULL,"
    " at TEXT NOT NULL, actor_id TEXT, kind TEXT NOT NULL, summary TEXT NOT NULL,"
    " reason TEXT, decision_id TEXT, PRIMARY KEY (coop_id, position))",
    # The people an audit row is about besides its actor, for the member filter.
    "CREATE TABLE IF NOT EXISTS {governance_audit_people} ("
    " coop_id TEXT NOT NULL, person_id TEXT NOT NULL, position BIGINT NOT NULL,"
    " PRIMARY KEY (coop_id, person_id, position))",
    "CREATE TABLE IF NOT EXISTS {governance_proposals} ("
    " coop_id TEXT NOT NULL, proposal_id TEXT NOT NULL, position BIGINT NOT NULL,"
    " kind TEXT NOT NULL, text TEXT NOT NULL, subject_id TEXT, raised_by TEXT NOT NULL,"
    " raised_at TEXT NOT NULL, closes_at TEXT NOT NULL, electorate_size INTEGER NOT NULL,"
    " turnout INTEGER, votes_for INTEGER, votes_against INTEGER, abstentions INTEGER,"
    " quorum_min INTEGER, rule_applied TEXT, outcome TEXT, refusal TEXT,"
    " closed_at TEXT, closed_by TEXT, PRIMARY KEY (coop_id, proposal_id))",
    "CREATE TABLE IF NOT EXISTS {governance_electorate} ("
    " coop_id TEXT NOT NULL, proposal_id TEXT NOT NULL, person_id TEXT NOT NULL,"
    " choice TEXT, voted_at TEXT, changes INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (coop_id, proposal_id, person_id))",
    "CREATE TABLE IF NOT EXISTS {governance_members} ("
    " coop_id TEXT NOT NULL, person_id TEXT NOT NULL, joined_at TEXT NOT NULL,"
    " left_at TEXT, PRIMARY KEY (coop_id, person_id))",
    # What the mandate checks need to know at each event: roles and the rules in force.
    "CREATE TABLE IF NOT EXISTS {governance_cooperatives} ("
    " coop_id TEXT PRIMARY KEY, mentor_id TEXT, mentor_until TEXT, mentorship_ended_at TEXT,"
    " coordinator_id TEXT, quorum_numerator INTEGER NOT NULL,"
    " quorum_denominator INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {governance_unauthorised} ("
    " coop_id TEXT NOT NULL, position BIGINT NOT NULL, at TEXT NOT NULL, actor_id TEXT,"
    " kind TEXT NOT NULL, why TEXT NOT NULL, PRIMARY KEY (coop_id, position))",
)

OUTCOMES = {
    "ProposalAdopted": "adopted",
    "ProposalRejected": "rejected",
    "ProposalExpired": "expired",
    "ProposalLapsed": "lapsed",
}
BASE_FIELDS = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "reason"}
)
# Fields that name a person, in today's events and, by the same names, in later ones.
PERSON_FIELDS = (
    "person_id",
    "member_id",
    "mentor_id",
    "to_member",
    "from_member",
    "replaces",
    "subject",
    "moving_members",
    "members",
)
MAX_SUMMARY = 500


def at_utc(moment: datetime) -> str:
    """ISO text in UTC, so that text order is time order whatever offset an event carried."""
    return moment.astimezone(UTC).isoformat()


def coop(e: Any) -> str:
    return str(e.originator_id)


# ---- summaries: one readable line per event, ids only ------------------------------------

Summary = Callable[[Any], str]
SUMMARIES: dict[str, Summary] = {}


def summarises(*names: str) -> Callable[[Summary], Summary]:
    def mark(func: Summary) -> Summary:
        for name in names:
            SUMMARIES[name] = func
        return func

    return mark


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {nouns or noun + 's'}"


def ids(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def by(decision_id: UUID | None) -> str:
    return f" by decision {decision_id}" if decision_id else " without a decision"


def money(cents: int) -> str:
    return f"€{cents // 100:,}.{cents % 100:02d}"


def duration(minutes: int) -> str:
    # "2 h 5 min", "2 h", "5 min": written out, since every hour logged is summarised.
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    if hours:
        return f"{hours} h"
    return f"{rest} min" if rest else ""


def short(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def words(name: str) -> str:
    """``WorkPaused`` as ``Work paused``: a later event's name, readable without a summary."""
    return re.sub(r"(?<!^)([A-Z])", r" \1", name).capitalize()


def rules_text(rules: DecisionRules) -> str:
    quorum = f"quorum more than {rules.quorum_numerator}/{rules.quorum_denominator}"
    if rules.mode is DecisionMode.CONSENT:
        how = "consent"
    else:
        how = (
            f"majority ({rules.supermajority_numerator}/{rules.supermajority_denominator}"
            " for splits and rule changes)"
        )
    return f"{quorum}, {how}, at most {rules.member_cap} members"


def proposal_text(e: Any) -> str:
    kind = str(e.kind)
    if kind == ProposalKind.ADMIT_MEMBER:
        return f"admit {e.subject}"
    if kind == ProposalKind.APPOINT_COORDINATOR:
        return f"appoint {e.subject} as coordinator"
    if kind == ProposalKind.END_MENTORSHIP:
        return "end the mentorship early"
    if kind == ProposalKind.SPLIT and e.split is not None:
        moving = e.split.moving_members
        return f"split off {plural(len(moving), 'member')} ({ids(moving)}) as '{e.split.new_name}'"
    if kind == ProposalKind.CHANGE_RULES and e.new_rules is not None:
        return f"change the decision rules to {rules_text(e.new_rules)}"
    return "decide a general question" if kind == ProposalKind.GENERAL else f"decide ({kind})"


def tally_text(t: Any) -> str:
    return (
        f"{t.votes_for} for, {t.votes_against} against, {t.abstentions} abstaining;"
        f" turnout {t.votes_for + t.votes_against + t.abstentions} of {t.electorate}"
    )


@summarises("Founded")
def _founded(e: Any) -> str:
    via = f", converted in {e.conversion_id}" if e.conversion_id else ""
    return (
        f"Founded '{e.name}' ({e.sector}) with {plural(len(e.members), 'founding member')}"
        f" and mentor {e.mentor_id}{via}; rules: {rules_text(e.rules)}"
    )


@summarises("SplitOff")
def _split_off(e: Any) -> str:
    ms = [m.person_id for m in e.members]
    work = f", carrying {plural(len(e.carried_work), 'piece')} of work" if e.carried_work else ""
    return (
        f"Split off from cooperative {e.parent_id}{by(e.decision_id)} as '{e.name}'"
        f" with {plural(len(ms), 'member')} ({ids(ms)}){work}"
    )


@summarises("MemberAdmitted")
def _admitted(e: Any) -> str:
    if e.decision_id:
        return f"Admitted {e.person_id} as a member by decision {e.decision_id}"
    group = f" in conversation group '{e.conversation_group}'" if e.conversation_group else ""
    # Says "without a decision" because only the mentor's authority makes that legitimate.
    return f"Admitted {e.person_id} as a founding member{group}, without a decision"


@summarises("MemberLeft")
def _left(e: Any) -> str:
    n = len(e.released_work)
    released = f", releasing {plural(n, 'piece')} of open work" if n else ""
    return f"{e.person_id} left the cooperative{released}"


@summarises("CoordinatorAppointed")
def _appointed(e: Any) -> str:
    replacing = f", replacing {e.replaces}" if e.replaces else ""
    return f"Appointed {e.member_id} as coordinator{by(e.decision_id)}{replacing}"


@summarises("CoordinatorVacated")
def _vacated(e: Any) -> str:
    decision = f" by decision {e.decision_id}" if e.decision_id else ""
    return f"The coordinator role of {e.member_id} became vacant{decision}"


@summarises("MentorshipEnded")
def _mentorship_ended(e: Any) -> str:
    when = " early" if e.early else " after the mentor year"
    decision = by(e.decision_id) if e.early or e.decision_id else ""
    return f"Ended the mentorship of {e.mentor_id}{when}{decision}"


@summarises("RulesChanged")
def _rules_changed(e: Any) -> str:
    return f"Changed the decision rules{by(e.decision_id)} to {rules_text(e.rules)}"


@summarises("ProposalRaised")
def _raised(e: Any) -> str:
    return (
        f'Raised proposal {e.proposal_id} to {proposal_text(e)}: "{short(e.text)}";'
        f" electorate {len(e.electorate)}, closes {at_utc(e.closes_at)}"
    )


@summarises("VoteCast")
def _vote_cast(e: Any) -> str:
    return vote_line(e.choice, e.proposal_id)


def vote_line(choice: Any, proposal_id: Any) -> str:
    """A vote's summary from its values: a rebuild writes it without making the event."""
    if choice == VoteChoice.ABSTAIN:
        return f"Abstained on proposal {proposal_id}"
    return f"Voted {choice} proposal {proposal_id}"


@summarises("VoteChanged")
def _vote_changed(e: Any) -> str:
    return f"Changed their vote on proposal {e.proposal_id} from '{e.previous}' to '{e.choice}'"


@summarises("ProposalAdopted", "ProposalRejected", "ProposalExpired")
def _decided(e: Any) -> str:
    verb = {"adopted": "was adopted", "rejected": "was rejected", "expired": "expired"}
    return f"Proposal {e.proposal_id} {verb[OUTCOMES[event_name(e)]]} ({tally_text(e.tally)})"


@summarises("ProposalLapsed")
def _lapsed(e: Any) -> str:
    return (
        f"Proposal {e.proposal_id} lapsed: the vote adopted it ({tally_text(e.tally)})"
        f" but it could no longer take effect ({e.refusal})"
    )


@summarises("Split")
def _split(e: Any) -> str:
    n = len(e.moved_work)
    work = f", taking {plural(n, 'piece')} of open work" if n else ""
    return (
        f"Split{by(e.decision_id)}: {plural(len(e.moving_members), 'member')}"
        f" ({ids(e.moving_members)}) moved to the new cooperative {e.child_id}"
        f" '{e.child_name}'{work}"
    )


@summarises("WorkTaken")
def _work_taken(e: Any) -> str:
    return f"Took on work {e.work_id} for client {e.client_ref}"


@summarises("HoursLogged")
def _hours(e: Any) -> str:
    return hours_line(e.minutes, e.work_id, e.worked_on.isoformat())


def hours_line(minutes: int, work_id: Any, worked_on: str) -> str:
    """An hour's summary from its values: a rebuild writes it without making the event."""
    return f"Logged {duration(minutes)} on work {work_id} for {worked_on}"


@summarises("WorkHandedOver")
def _handed_over(e: Any) -> str:
    return f"Offered work {e.work_id} to {e.to_member}"


@summarises("WorkAccepted")
def _accepted(e: Any) -> str:
    return f"Accepted work {e.work_id} from {e.from_member}"


@summarises("WorkCompleted")
def _completed(e: Any) -> str:
    return f"Completed work {e.work_id}"


@summarises("InvoiceIssued")
def _issued(e: Any) -> str:
    entries = plural(len(e.entry_ids), "entry", "entries")
    return (
        f"Issued invoice {e.number} to client {e.client_ref} for {money(e.amount_cents)}"
        f" ({entries} of logged hours at {money(e.hourly_rate_cents)} an hour)"
    )


@summarises("InvoicePaid")
def _paid(e: Any) -> str:
    return f"Registered a payment of {money(e.amount_cents)} on invoice {e.number}"


@summarises("InvoiceCredited")
def _credited(e: Any) -> str:
    return (
        f"Cancelled invoice {e.number} with credit note {e.credit_note_number}"
        f" for {money(e.amount_cents)}"
    )


def event_fields(e: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(e):
        values = {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}
    else:
        values = dict(vars(e))
    return {k: v for k, v in values.items() if k not in BASE_FIELDS}


def shown(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return str(value)


def generic_summary(e: Any) -> str:
    """For an event this projection does not know yet: its name and its own fields."""
    details = ", ".join(f"{k.replace('_', ' ')} {shown(v)}" for k, v in event_fields(e).items())
    return f"{words(event_name(e))}: {details}" if details else words(event_name(e))


def summary(e: Any) -> str:
    return clip(SUMMARIES.get(event_name(e), generic_summary)(e))


def clip(line: str) -> str:
    return line if len(line) <= MAX_SUMMARY else line[: MAX_SUMMARY - 1] + "…"


def people_named(e: Any) -> set[str]:
    found: set[str] = set()
    for field in PERSON_FIELDS:
        value = getattr(e, field, None)
        for item in value if isinstance(value, tuple | list) else (value,):
            person = item.person_id if isinstance(item, FoundingMember) else item
            if isinstance(person, UUID):
                found.add(str(person))
    found.discard(str(getattr(e, "actor", None)))
    return found


def record_audit(ctx: Context, e: Any) -> None:
    ctx.execute(
        "INSERT INTO {governance_audit} (coop_id, position, version, at, actor_id, kind,"
        " summary, reason, decision_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            coop(e),
            ctx.position,
            e.originator_version,
            at_utc(e.timestamp),
            uid(getattr(e, "actor", None)),
            event_name(e),
            summary(e),
            getattr(e, "reason", None),
            uid(getattr(e, "decision_id", None)),
        ),
    )
    for person in sorted(people_named(e)):
        ctx.execute(
            "INSERT INTO {governance_audit_people} (coop_id, person_id, position) VALUES (?, ?, ?)",
            (coop(e), person, ctx.position),
        )


# ---- mandates: did an action that needs authority have it? ------------------------------


def unauthorised(ctx: Context, e: Any, why: str) -> None:
    ctx.execute(
        "INSERT INTO {governance_unauthorised} (coop_id, position, at, actor_id, kind, why)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (coop(e), ctx.position, at_utc(e.timestamp), uid(e.actor), event_name(e), why),
    )


def roles(ctx: Context, e: Any) -> Any:
    return ctx.one(
        "SELECT mentor_id, mentor_until, mentorship_ended_at, coordinator_id,"
        " quorum_numerator, quorum_denominator FROM {governance_cooperatives} WHERE coop_id = ?",
        (coop(e),),
    )


def no_mentor_authority(ctx: Context, e: Any) -> str | None:
    """Why the actor did not hold the mentor's authority at the event; None if they did."""
    row = roles(ctx, e)
    if row is None or row[0] != str(e.actor):
        return f"{e.actor} is not the mentor"
    if row[2] is not None:
        return "the mentorship had ended"
    if row[1] is None or e.timestamp >= datetime.fromisoformat(row[1]):
        return f"the mentor year was over ({row[1]})"
    return None


def check_decision(ctx: Context, e: Any, kind: ProposalKind, subject: UUID | None = None) -> None:
    """A governance effect names a proposal of its kind, adopted in this cooperative (rule 3)."""
    what = words(event_name(e))
    if e.decision_id is None:
        unauthorised(ctx, e, f"{what} without a decision")
        return
    row = ctx.one(
        "SELECT kind, subject_id, outcome FROM {governance_proposals}"
        " WHERE coop_id = ? AND proposal_id = ?",
        (coop(e), str(e.decision_id)),
    )
    if row is None or row[0] != kind.value or row[2] != "adopted" or row[1] != uid(subject):
        to = f"to {kind.value}" + (f" {subject}" if subject else "")
        unauthorised(
            ctx,
            e,
            f"{what} cites decision {e.decision_id},"
            f" which is not an adopted proposal {to} in this cooperative",
        )


# ---- handlers -----------------------------------------------------------------------------


def join(ctx: Context, coop_id: str, person_id: UUID, at: datetime) -> None:
    # A former member can be admitted again: they become current, first joining kept.
    ctx.execute(
        "INSERT INTO {governance_members} (coop_id, person_id, joined_at) VALUES (?, ?, ?)"
        " ON CONFLICT (coop_id, person_id) DO UPDATE SET left_at = NULL",
        (coop_id, str(person_id), at_utc(at)),
    )


def leave(ctx: Context, coop_id: str, person_id: UUID, at: datetime) -> None:
    ctx.execute(
        "UPDATE {governance_members} SET left_at = ? WHERE coop_id = ? AND person_id = ?",
        (at_utc(at), coop_id, str(person_id)),
    )


def set_role(ctx: Context, e: Any, column: str, value: str | None) -> None:
    ctx.execute(
        f"UPDATE {{governance_cooperatives}} SET {column} = ? WHERE coop_id = ?", (value, coop(e))
    )


@handles("Founded", "SplitOff")
def founded(ctx: Context, e: Any) -> None:
    # A split-off child inherits the rest of its parent's mentor year, if any is left.
    until = e.mentor_until if hasattr(e, "mentor_until") else one_year_after(e.timestamp)
    ctx.execute(
        "INSERT INTO {governance_cooperatives} (coop_id, mentor_id, mentor_until,"
        " quorum_numerator, quorum_denominator) VALUES (?, ?, ?, ?, ?)",
        (
            coop(e),
            uid(e.mentor_id),
            at_utc(until) if until and e.mentor_id else None,
            e.rules.quorum_numerator,
            e.rules.quorum_denominator,
        ),
    )
    for member in e.members:
        join(ctx, coop(e), member.person_id, e.timestamp)


@handles("MemberAdmitted")
def admitted(ctx: Context, e: Any) -> None:
    if e.decision_id is not None:
        check_decision(ctx, e, ProposalKind.ADMIT_MEMBER, e.person_id)
    elif (why := no_mentor_authority(ctx, e)) is not None:
        unauthorised(ctx, e, f"admitted {e.person_id} without a decision, and {why}")
    join(ctx, coop(e), e.person_id, e.timestamp)


@handles("MemberLeft")
def left(ctx: Context, e: Any) -> None:
    leave(ctx, coop(e), e.person_id, e.timestamp)


@handles("Split")
def split(ctx: Context, e: Any) -> None:
    check_decision(ctx, e, ProposalKind.SPLIT)
    for person_id in e.moving_members:
        leave(ctx, coop(e), person_id, e.timestamp)


@handles("CoordinatorAppointed")
def coordinator_appointed(ctx: Context, e: Any) -> None:
    check_decision(ctx, e, ProposalKind.APPOINT_COORDINATOR, e.member_id)
    set_role(ctx, e, "coordinator_id", str(e.member_id))


@handles("CoordinatorVacated")
def coordinator_vacated(ctx: Context, e: Any) -> None:
    set_role(ctx, e, "coordinator_id", None)


@handles("MentorshipEnded")
def mentorship_ended(ctx: Context, e: Any) -> None:
    if e.early or e.decision_id is not None:
        check_decision(ctx, e, ProposalKind.END_MENTORSHIP)
    else:
        row = roles(ctx, e)
        # Without a decision the mentorship ends only once the mentor year is over (rule 6).
        if row is None or row[1] is None or e.timestamp < datetime.fromisoformat(row[1]):
            unauthorised(ctx, e, "ended the mentorship before the mentor year was over")
    set_role(ctx, e, "mentorship_ended_at", at_utc(e.timestamp))


@handles("RulesChanged")
def rules_changed(ctx: Context, e: Any) -> None:
    check_decision(ctx, e, ProposalKind.CHANGE_RULES)
    ctx.execute(
        "UPDATE {governance_cooperatives} SET quorum_numerator = ?, quorum_denominator = ?"
        " WHERE coop_id = ?",
        (e.rules.quorum_numerator, e.rules.quorum_denominator, coop(e)),
    )


@handles("ProposalRaised")
def proposal_raised(ctx: Context, e: Any) -> None:
    ctx.execute(
        "INSERT INTO {governance_proposals} (coop_id, proposal_id, position, kind, text,"
        " subject_id, raised_by, raised_at, closes_at, electorate_size)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            coop(e),
            str(e.proposal_id),
            ctx.position,
            str(e.kind),
            e.text,
            uid(e.subject),
            str(e.actor),
            at_utc(e.timestamp),
            at_utc(e.closes_at),
            len(e.electorate),
        ),
    )
    for person_id in e.electorate:
        ctx.execute(
            "INSERT INTO {governance_electorate} (coop_id, proposal_id, person_id)"
            " VALUES (?, ?, ?)",
            (coop(e), str(e.proposal_id), str(person_id)),
        )


@handles("VoteCast", "VoteChanged")
def voted(ctx: Context, e: Any) -> None:
    # The first vote's moment is kept; a change only counts as one more change.
    ctx.execute(
        "UPDATE {governance_electorate} SET choice = ?, voted_at = COALESCE(voted_at, ?),"
        " changes = changes + ? WHERE coop_id = ? AND proposal_id = ? AND person_id = ?",
        (
            str(e.choice),
            at_utc(e.timestamp),
            1 if event_name(e) == "VoteChanged" else 0,
            coop(e),
            str(e.proposal_id),
            str(e.actor),
        ),
    )


@handles(*OUTCOMES)
def decided(ctx: Context, e: Any) -> None:
    t = e.tally
    row = roles(ctx, e)
    # The smallest turnout that met the quorum under the rules in force at closing.
    quorum_min = None if row is None else t.electorate * row[4] // row[5] + 1
    ctx.execute(
        "UPDATE {governance_proposals} SET turnout = ?, votes_for = ?, votes_against = ?,"
        " abstentions = ?, quorum_min = ?, rule_applied = ?, outcome = ?, refusal = ?,"
        " closed_at = ?, closed_by = ? WHERE coop_id = ? AND proposal_id = ?",
        (
            t.votes_for + t.votes_against + t.abstentions,
            t.votes_for,
            t.votes_against,
            t.abstentions,
            quorum_min,
            e.rule_applied,
            OUTCOMES[event_name(e)],
            getattr(e, "refusal", None),
            at_utc(e.timestamp),
            str(e.actor),
            coop(e),
            str(e.proposal_id),
        ),
    )


@handles("InvoiceIssued", "InvoicePaid", "InvoiceCredited")
def invoicing(ctx: Context, e: Any) -> None:
    row = roles(ctx, e)
    # Rule 7 as well as rule 10: the coordinator's authority lasts only while a member.
    member = ctx.one(
        "SELECT 1 FROM {governance_members} WHERE coop_id = ? AND person_id = ?"
        " AND left_at IS NULL",
        (coop(e), str(e.actor)),
    )
    if row is not None and row[3] == str(e.actor) and member is not None:
        return
    if no_mentor_authority(ctx, e) is None:
        return
    unauthorised(
        ctx,
        e,
        f"{words(event_name(e))} by {e.actor}, who was neither the coordinator"
        " nor the mentor within the mentor year",
    )


class Governance(Projection):
    name = "governance"
    tables = (
        "governance_audit",
        "governance_audit_people",
        "governance_proposals",
        "governance_electorate",
        "governance_members",
        "governance_cooperatives",
        "governance_unauthorised",
    )
    ddl = DDL
    handlers = collect_handlers(globals())

    def apply(self, ctx: Context, event: Any) -> None:
        # Every event gets its audit row, kinds added after this code included: a trail
        # that silently skipped what it did not recognise would not be an audit trail.
        record_audit(ctx, event)
        super().apply(ctx, event)
