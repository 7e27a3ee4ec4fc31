"""Roster: who is in each cooperative, since when, in which conversation group, in which role.

Names are joined from the people registry when read, so an erased person
disappears from the roster at once while their pseudonymous id stays.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.cooperative import one_year_after
from ledger.storage import Database
from projections.framework import Context, Projection, collect_handlers, handles, iso, uid

DDL = (
    "CREATE TABLE IF NOT EXISTS {roster_members} ("
    " coop_id TEXT NOT NULL, person_id TEXT NOT NULL, since TEXT NOT NULL,"
    " conversation_group TEXT, decision_id TEXT, left_at TEXT, joined_position BIGINT NOT NULL,"
    # Keyed by the event's position: two events may share a timestamp, never a position.
    " PRIMARY KEY (coop_id, person_id, joined_position))",
    "CREATE TABLE IF NOT EXISTS {roster_roles} ("
    " coop_id TEXT NOT NULL, role TEXT NOT NULL, person_id TEXT NOT NULL,"
    " started_at TEXT NOT NULL, planned_end TEXT, ended_at TEXT, decision_id TEXT,"
    " ended_by_decision TEXT, started_position BIGINT NOT NULL,"
    " PRIMARY KEY (coop_id, role, started_position))",
    "CREATE TABLE IF NOT EXISTS {roster_cooperatives} ("
    " coop_id TEXT PRIMARY KEY, member_cap INTEGER NOT NULL, member_count INTEGER NOT NULL)",
)


def _join(ctx: Context, coop_id: UUID, person_id: UUID, e: Any, group: str | None) -> None:
    ctx.execute(
        "INSERT INTO {roster_members} (coop_id, person_id, since, conversation_group,"
        " decision_id, joined_position) VALUES (?, ?, ?, ?, ?, ?)",
        (
            str(coop_id),
            str(person_id),
            iso(e.timestamp),
            group,
            uid(getattr(e, "decision_id", None)),
            ctx.position,
        ),
    )


def _leave(ctx: Context, coop_id: UUID, person_id: UUID, e: Any) -> None:
    ctx.execute(
        "UPDATE {roster_members} SET left_at = ? WHERE coop_id = ? AND person_id = ?"
        " AND left_at IS NULL",
        (iso(e.timestamp), str(coop_id), str(person_id)),
    )


def _count(ctx: Context, coop_id: UUID, delta: int) -> None:
    ctx.execute(
        "UPDATE {roster_cooperatives} SET member_count = member_count + ? WHERE coop_id = ?",
        (delta, str(coop_id)),
    )


def _end_role(ctx: Context, coop_id: UUID, role: str, e: Any) -> None:
    ctx.execute(
        "UPDATE {roster_roles} SET ended_at = ?, ended_by_decision = ?"
        " WHERE coop_id = ? AND role = ? AND ended_at IS NULL",
        (iso(e.timestamp), uid(getattr(e, "decision_id", None)), str(coop_id), role),
    )


@handles("Founded", "SplitOff")
def founded(ctx: Context, e: Any) -> None:
    for member in e.members:
        _join(ctx, e.originator_id, member.person_id, e, member.conversation_group)
    ctx.execute(
        "INSERT INTO {roster_cooperatives} (coop_id, member_cap, member_count) VALUES (?, ?, ?)",
        (str(e.originator_id), e.rules.member_cap, len(e.members)),
    )
    if e.mentor_id is not None:
        planned = getattr(e, "mentor_until", None) or one_year_after(e.timestamp)
        ctx.execute(
            "INSERT INTO {roster_roles} (coop_id, role, person_id, started_at, planned_end,"
            " started_position) VALUES (?, 'mentor', ?, ?, ?, ?)",
            (str(e.originator_id), str(e.mentor_id), iso(e.timestamp), iso(planned), ctx.position),
        )


@handles("MemberAdmitted")
def admitted(ctx: Context, e: Any) -> None:
    _join(ctx, e.originator_id, e.person_id, e, e.conversation_group)
    _count(ctx, e.originator_id, 1)


@handles("MemberLeft")
def left(ctx: Context, e: Any) -> None:
    _leave(ctx, e.originator_id, e.person_id, e)
    _count(ctx, e.originator_id, -1)


@handles("Split")
def split(ctx: Context, e: Any) -> None:
    for person_id in e.moving_members:
        _leave(ctx, e.originator_id, person_id, e)
    _count(ctx, e.originator_id, -len(e.moving_members))


@handles("CoordinatorAppointed")
def coordinator_appointed(ctx: Context, e: Any) -> None:
    _end_role(ctx, e.originator_id, "coordinator", e)
    ctx.execute(
        "INSERT INTO {roster_roles} (coop_id, role, person_id, started_at, decision_id,"
        " started_position) VALUES (?, 'coordinator', ?, ?, ?, ?)",
        (
            str(e.originator_id),
            str(e.member_id),
            iso(e.timestamp),
            str(e.decision_id),
            ctx.position,
        ),
    )


@handles("CoordinatorVacated")
def coordinator_vacated(ctx: Context, e: Any) -> None:
    _end_role(ctx, e.originator_id, "coordinator", e)


@handles("MentorshipEnded")
def mentorship_ended(ctx: Context, e: Any) -> None:
    _end_role(ctx, e.originator_id, "mentor", e)


@handles("RulesChanged")
def rules_changed(ctx: Context, e: Any) -> None:
    ctx.execute(
        "UPDATE {roster_cooperatives} SET member_cap = ? WHERE coop_id = ?",
        (e.rules.member_cap, str(e.originator_id)),
    )


class Roster(Projection):
    name = "roster"
    tables = ("roster_members", "roster_roles", "roster_cooperatives")
    ddl = DDL
    handlers = collect_handlers(globals())


# ---- queries ------------------------------------------------------------------------


def roster(db: Database, coop_id: UUID) -> dict[str, Any] | None:
    """Current and former members, the mentor and coordinator terms, the count against the cap."""
    t = Roster().table_names(db)
    people = db.table("people")
    with db.read() as cur:
        cur.execute(
            f"SELECT member_cap, member_count FROM {t['roster_cooperatives']} WHERE coop_id = ?",
            (str(coop_id),),
        )
        head = cur.fetchone()
        if head is None:
            return None
        cur.execute(
            "SELECT m.person_id, p.name, m.since, m.conversation_group, m.decision_id, m.left_at"
            f" FROM {t['roster_members']} m LEFT JOIN {people} p ON p.id = m.person_id"
            " WHERE m.coop_id = ? ORDER BY m.joined_position, m.person_id",
            (str(coop_id),),
        )
        members = cur.fetchall()
        cur.execute(
            "SELECT r.role, r.person_id, p.name, r.started_at, r.planned_end, r.ended_at,"
            f" r.decision_id, r.ended_by_decision FROM {t['roster_roles']} r"
            f" LEFT JOIN {people} p ON p.id = r.person_id"
            " WHERE r.coop_id = ? ORDER BY r.started_position",
            (str(coop_id),),
        )
        roles = cur.fetchall()
    coordinator = next((r[1] for r in roles if r[0] == "coordinator" and r[5] is None), None)

    def member(row: Any) -> dict[str, Any]:
        return {
            "person_id": row[0],
            "name": row[1],
            "since": row[2],
            "conversation_group": row[3],
            "admitted_by_decision": row[4],
            "role": "coordinator" if row[0] == coordinator and row[5] is None else "member",
            **({"left_at": row[5]} if row[5] else {}),
        }

    return {
        "cooperative_id": str(coop_id),
        "member_cap": head[0],
        "member_count": head[1],
        "members": [member(r) for r in members if r[5] is None],
        "former_members": [member(r) for r in members if r[5] is not None],
        "roles": [
            {
                "role": r[0],
                "person_id": r[1],
                "name": r[2],
                "started_at": r[3],
                "planned_end": r[4],
                "ended_at": r[5],
                "decision_id": r[6],
                "ended_by_decision": r[7],
            }
            for r in roles
        ],
    }
