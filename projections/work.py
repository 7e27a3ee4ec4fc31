"""Work allocation: who holds which client work, the time they logged, what is not yet billed.

Hour entries live in the books of the cooperative that holds them: in a split the
child's SplitOff carries the moved work's unbilled entries and the parent's Split
drops them, while billed entries stay where they were invoiced. Weeks and months
are computed here in Python from the day worked, because the two stores share no
SQL for ISO weeks. Names are joined from the people registry when read, so an
erased person's name disappears from every answer at once.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from ledger.state import HoursEntry, Work
from ledger.storage import Database
from projections.framework import Context, Projection, collect_handlers, handles, iso, uid

DDL = (
    "CREATE TABLE IF NOT EXISTS {work_members} ("
    " coop_id TEXT NOT NULL, person_id TEXT NOT NULL, since TEXT NOT NULL, left_at TEXT,"
    " PRIMARY KEY (coop_id, person_id))",
    "CREATE TABLE IF NOT EXISTS {work_items} ("
    " coop_id TEXT NOT NULL, work_id TEXT NOT NULL, client_ref TEXT NOT NULL,"
    " holder TEXT, since TEXT NOT NULL, status TEXT NOT NULL,"
    " PRIMARY KEY (coop_id, work_id))",
    "CREATE TABLE IF NOT EXISTS {work_entries} ("
    " coop_id TEXT NOT NULL, entry_id TEXT NOT NULL, work_id TEXT NOT NULL,"
    " member_id TEXT NOT NULL, minutes INTEGER NOT NULL, worked_on TEXT NOT NULL,"
    " iso_week TEXT NOT NULL, month TEXT NOT NULL, invoice_number INTEGER,"
    " PRIMARY KEY (coop_id, entry_id))",
    # Keyed by the offer's position: two offers can share a timestamp, never a position.
    "CREATE TABLE IF NOT EXISTS {work_handovers} ("
    " coop_id TEXT NOT NULL, position BIGINT NOT NULL, work_id TEXT NOT NULL,"
    " from_member TEXT NOT NULL, to_member TEXT NOT NULL, offered_at TEXT NOT NULL,"
    " accepted_at TEXT, lapsed_at TEXT, PRIMARY KEY (coop_id, position))",
)


def iso_week(day: date) -> str:
    """'2026-W02'; the ISO year, so 31 December 2025 falls in 2026-W01."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _entry(ctx: Context, coop_id: UUID, entry: HoursEntry) -> None:
    ids = (str(coop_id), str(entry.id), str(entry.work_id), str(entry.member_id))
    day = entry.worked_on
    ctx.execute(
        "INSERT INTO {work_entries} (coop_id, entry_id, work_id, member_id, minutes, worked_on,"
        " iso_week, month) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*ids, entry.minutes, day.isoformat(), iso_week(day), month(day)),
    )


def _hold(ctx: Context, coop_id: UUID, work: Work) -> None:
    # Taking released work again keeps its client: the aggregate reuses the work's own.
    ctx.execute(
        "INSERT INTO {work_items} (coop_id, work_id, client_ref, holder, since, status)"
        " VALUES (?, ?, ?, ?, ?, 'open') ON CONFLICT (coop_id, work_id) DO UPDATE SET"
        " holder = excluded.holder, since = excluded.since, status = 'open'",
        (str(coop_id), str(work.id), work.client_ref, uid(work.holder), iso(work.since)),
    )


def _join(ctx: Context, coop_id: UUID, person_id: UUID, e: Any) -> None:
    # A former member can be admitted again: one row per person, the latest membership.
    key = (str(coop_id), str(person_id))
    ctx.execute("DELETE FROM {work_members} WHERE coop_id = ? AND person_id = ?", key)
    ctx.execute(
        "INSERT INTO {work_members} (coop_id, person_id, since) VALUES (?, ?, ?)",
        (*key, iso(e.timestamp)),
    )


def _settle(ctx: Context, e: Any, outcome: str, column: str, value: UUID) -> None:
    """End the pending offers of a work, or to a person: ``accepted_at`` or ``lapsed_at``."""
    ctx.execute(
        f"UPDATE {{work_handovers}} SET {outcome} = ? WHERE coop_id = ? AND {column} = ?"
        " AND accepted_at IS NULL AND lapsed_at IS NULL",
        (iso(e.timestamp), str(e.originator_id), str(value)),
    )


def _leave(ctx: Context, e: Any, person_id: UUID) -> None:
    key = (str(e.originator_id), str(person_id))
    ctx.execute(
        "UPDATE {work_members} SET left_at = ? WHERE coop_id = ? AND person_id = ?",
        (iso(e.timestamp), *key),
    )
    # An offer to someone who is no longer a member can't be accepted (the aggregate clears it).
    _settle(ctx, e, "lapsed_at", "to_member", person_id)


def _end_work(ctx: Context, e: Any, work_id: UUID, status: str) -> None:
    """Released or moved work has no holder any more, and no offer of it is pending."""
    ctx.execute(
        "UPDATE {work_items} SET status = ?, holder = NULL WHERE coop_id = ? AND work_id = ?",
        (status, str(e.originator_id), str(work_id)),
    )
    _settle(ctx, e, "lapsed_at", "work_id", work_id)


@handles("Founded", "SplitOff")
def founded(ctx: Context, e: Any) -> None:
    for member in e.members:
        _join(ctx, e.originator_id, member.person_id, e)
    for carried in getattr(e, "carried_work", ()):
        _hold(ctx, e.originator_id, carried.work)
        for entry in carried.entries:
            _entry(ctx, e.originator_id, entry)


@handles("MemberAdmitted")
def admitted(ctx: Context, e: Any) -> None:
    _join(ctx, e.originator_id, e.person_id, e)


@handles("MemberLeft")
def left(ctx: Context, e: Any) -> None:
    _leave(ctx, e, e.person_id)
    for work_id in e.released_work:
        _end_work(ctx, e, work_id, "released")


@handles("Split")
def split(ctx: Context, e: Any) -> None:
    for person_id in e.moving_members:
        _leave(ctx, e, person_id)
    for work_id in e.moved_work:
        _end_work(ctx, e, work_id, "moved")
        # Its unbilled entries went to the child with it (the child's SplitOff carries them).
        ctx.execute(
            "DELETE FROM {work_entries} WHERE coop_id = ? AND work_id = ?"
            " AND invoice_number IS NULL",
            (str(e.originator_id), str(work_id)),
        )


@handles("WorkTaken")
def taken(ctx: Context, e: Any) -> None:
    _hold(ctx, e.originator_id, Work(e.work_id, e.client_ref, "", e.actor, e.timestamp))


@handles("HoursLogged")
def hours_logged(ctx: Context, e: Any) -> None:
    _entry(ctx, e.originator_id, HoursEntry(e.entry_id, e.work_id, e.actor, e.minutes, e.worked_on))


@handles("WorkHandedOver")
def handed_over(ctx: Context, e: Any) -> None:
    # A new offer replaces a pending one: the aggregate keeps only the latest recipient.
    _settle(ctx, e, "lapsed_at", "work_id", e.work_id)
    coop_id, at = str(e.originator_id), iso(e.timestamp)
    ctx.execute(
        "INSERT INTO {work_handovers} (coop_id, position, work_id, from_member, to_member,"
        " offered_at) VALUES (?, ?, ?, ?, ?, ?)",
        (coop_id, ctx.position, str(e.work_id), str(e.actor), str(e.to_member), at),
    )


@handles("WorkAccepted")
def accepted(ctx: Context, e: Any) -> None:
    _settle(ctx, e, "accepted_at", "work_id", e.work_id)
    ctx.execute(
        "UPDATE {work_items} SET holder = ?, since = ? WHERE coop_id = ? AND work_id = ?",
        (str(e.actor), iso(e.timestamp), str(e.originator_id), str(e.work_id)),
    )


@handles("WorkCompleted")
def completed(ctx: Context, e: Any) -> None:
    ctx.execute(
        "UPDATE {work_items} SET status = 'completed' WHERE coop_id = ? AND work_id = ?",
        (str(e.originator_id), str(e.work_id)),
    )
    _settle(ctx, e, "lapsed_at", "work_id", e.work_id)


@handles("InvoiceIssued")
def invoiced(ctx: Context, e: Any) -> None:
    for entry_id in e.entry_ids:
        ctx.execute(
            "UPDATE {work_entries} SET invoice_number = ? WHERE coop_id = ? AND entry_id = ?",
            (e.number, str(e.originator_id), str(entry_id)),
        )


@handles("InvoiceCredited")
def credited(ctx: Context, e: Any) -> None:
    # An entry is on at most one uncredited invoice, so its number finds exactly its entries.
    ctx.execute(
        "UPDATE {work_entries} SET invoice_number = NULL WHERE coop_id = ? AND invoice_number = ?",
        (str(e.originator_id), e.number),
    )


class WorkAllocation(Projection):
    name = "work"
    tables = ("work_members", "work_items", "work_entries", "work_handovers")
    ddl = DDL
    handlers = collect_handlers(globals())


# ---- queries ------------------------------------------------------------------------


def _fetch(db: Database, coop_id: UUID, *queries: str) -> list[list[Any]]:
    return WorkAllocation().fetch(db, coop_id, *queries)


def work_allocation(db: Database, coop_id: UUID) -> dict[str, Any] | None:
    """Per current member: open work, minutes per ISO week and per month, minutes not invoiced.

    ``others`` are people who are not members now but whose time is in this
    cooperative's books: they left, moved away in a split, or their unbilled hours
    came along with work a moving member carried here.
    """
    members, held, logged = _fetch(
        db,
        coop_id,
        "SELECT m.person_id, p.name, m.left_at FROM {work_members} m"
        " LEFT JOIN {people} p ON p.id = m.person_id WHERE m.coop_id = ?"
        " ORDER BY m.since, m.person_id",
        "SELECT w.holder, p.name, w.work_id, w.client_ref, w.since FROM {work_items} w"
        " LEFT JOIN {people} p ON p.id = w.holder WHERE w.coop_id = ? AND w.status = 'open'"
        " ORDER BY w.since, w.work_id",
        # One row per person, week and month: a week spanning two months gives two rows.
        "SELECT e.member_id, p.name, e.iso_week, e.month, SUM(e.minutes),"
        " SUM(CASE WHEN e.invoice_number IS NULL THEN e.minutes ELSE 0 END)"
        " FROM {work_entries} e LEFT JOIN {people} p ON p.id = e.member_id"
        " WHERE e.coop_id = ? GROUP BY e.member_id, p.name, e.iso_week, e.month"
        " ORDER BY e.iso_week, e.month",
    )
    if not members:
        return None
    people: dict[str, dict[str, Any]] = {}

    def person(person_id: str, name: str | None) -> dict[str, Any]:
        blank: dict[str, Any] = {"open_work": [], "minutes_by_week": {}, "minutes_by_month": {}}
        totals = {"logged_minutes": 0, "uninvoiced_minutes": 0}
        return people.setdefault(person_id, {"person_id": person_id, "name": name} | blank | totals)

    current = [person(r[0], r[1])["person_id"] for r in members if r[2] is None]
    for holder, name, work_id, client_ref, since in held:
        work = {"work_id": work_id, "client_ref": client_ref, "since": since}
        person(holder, name)["open_work"].append(work)
    for member_id, name, week, in_month, minutes, uninvoiced in logged:
        row = person(member_id, name)
        for key, period in (("minutes_by_week", week), ("minutes_by_month", in_month)):
            row[key][period] = row[key].get(period, 0) + int(minutes)
        row["logged_minutes"] += int(minutes)
        row["uninvoiced_minutes"] += int(uninvoiced)
    others = [r for p, r in sorted(people.items()) if p not in current and r["logged_minutes"]]
    current_rows = [people[p] for p in current]
    return {"cooperative_id": str(coop_id), "members": current_rows, "others": others}


def client_contacts(db: Database, coop_id: UUID) -> list[dict[str, Any]]:
    """Per client with open or released work: its contacts, the members who hold its open work.

    A client whose work a leaving member released has no contact until someone takes it.
    """
    (rows,) = _fetch(
        db,
        coop_id,
        "SELECT w.client_ref, w.work_id, w.status, w.holder, p.name, w.since FROM {work_items} w"
        " LEFT JOIN {people} p ON p.id = w.holder"
        " WHERE w.coop_id = ? AND w.status IN ('open', 'released')"
        " ORDER BY w.client_ref, w.since, w.work_id",
    )
    clients: dict[str, dict[str, Any]] = {}
    for client_ref, work_id, status, holder, name, since in rows:
        client = clients.setdefault(
            client_ref, {"client_ref": client_ref, "contacts": [], "released_work": []}
        )
        if status == "released":
            client["released_work"].append(work_id)
        elif holder not in [c["person_id"] for c in client["contacts"]]:
            client["contacts"].append({"person_id": holder, "name": name, "since": since})
    return list(clients.values())


HANDOVER_FIELDS = (
    "work_id", "client_ref", "from_member", "from_name", "to_member", "to_name",
    "offered_at", "accepted_at", "lapsed_at",
)  # fmt: skip


def handovers(db: Database, coop_id: UUID) -> list[dict[str, Any]]:
    """Every offer of work in order: from whom, to whom, when offered, accepted or lapsed."""
    (rows,) = _fetch(
        db,
        coop_id,
        "SELECT h.work_id, w.client_ref, h.from_member, pf.name, h.to_member, pt.name,"
        " h.offered_at, h.accepted_at, h.lapsed_at FROM {work_handovers} h"
        " LEFT JOIN {work_items} w ON w.coop_id = h.coop_id AND w.work_id = h.work_id"
        " LEFT JOIN {people} pf ON pf.id = h.from_member"
        " LEFT JOIN {people} pt ON pt.id = h.to_member"
        " WHERE h.coop_id = ? ORDER BY h.position",
    )
    return [
        {
            **dict(zip(HANDOVER_FIELDS, r, strict=True)),
            "status": "accepted" if r[7] else "lapsed" if r[8] else "offered",
        }
        for r in rows
    ]


def evenness(db: Database, coop_id: UUID) -> dict[str, Any]:
    """How evenly logged time is spread over the current members: 1.0 is perfectly even.

    evenness = 1 - sum over pairs i<j of |x_i - x_j| / ((n - 1) * sum of x), where the
    x are the minutes each of the n current members has in this cooperative's books
    (a member with none counts, as 0). That is 1 minus the Gini coefficient scaled by
    n/(n-1), so one member doing all the work gives 0.0 whatever the size, and
    cooperatives of different sizes compare. A lone member is even (1.0); with no
    time logged at all the figure is undefined (None).
    """
    (rows,) = _fetch(
        db,
        coop_id,
        "SELECT m.person_id, COALESCE(SUM(e.minutes), 0) FROM {work_members} m"
        " LEFT JOIN {work_entries} e ON e.coop_id = m.coop_id AND e.member_id = m.person_id"
        " WHERE m.coop_id = ? AND m.left_at IS NULL GROUP BY m.person_id",
    )
    minutes = [int(r[1]) for r in rows]
    n, total = len(minutes), sum(minutes)
    even: float | None = None
    if total and n == 1:
        even = 1.0
    elif total:
        spread = sum(abs(a - b) for i, a in enumerate(minutes) for b in minutes[i + 1 :])
        even = round(1 - spread / ((n - 1) * total), 4)
    return {"cooperative_id": str(coop_id), "evenness": even, "members": n, "logged_minutes": total}
