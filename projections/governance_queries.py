"""Reading the governance projection: audit trail, decisions register, equality indicators.

Plain SQL over the tables ``projections.governance`` fills. Names come from the
people registry at the moment of reading (a LEFT JOIN), so an erased person reads
as ``None`` everywhere while their pseudonymous id stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.errors import InvalidInput
from ledger.storage import Cursor, Database
from projections.governance import Governance, at_utc

MAX_LIMIT = 1000

PROPOSAL_COLUMNS = (
    "p.proposal_id, p.kind, p.text, p.subject_id, ps.name, p.raised_by, pr.name, p.raised_at,"
    " p.closes_at, p.electorate_size, p.turnout, p.votes_for, p.votes_against, p.abstentions,"
    " p.quorum_min, p.rule_applied, p.outcome, p.refusal, p.closed_at, p.closed_by, pc.name"
)


def _tables(db: Database) -> dict[str, str]:
    return {**Governance().table_names(db), "people": db.table("people")}


def _moment(value: datetime, field: str) -> str:
    # A naive time would be compared as if it were UTC and silently shift the window.
    if value.tzinfo is None:
        raise InvalidInput(f"{field} must carry a time zone", field=field)
    return at_utc(value)


# ---- audit trail ----------------------------------------------------------------------


def audit_trail(
    db: Database,
    coop_id: UUID,
    *,
    member: UUID | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_position: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """One cooperative's events in order, oldest first, ``limit`` at a time.

    ``member`` keeps events the person did or that are about them; ``since`` is
    inclusive and ``until`` exclusive. Pass the answer's ``next_after_position`` as
    ``after_position`` for the next page; it is None on the last page.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    t = _tables(db)
    where: list[str] = ["a.coop_id = ?"]
    params: list[Any] = [str(coop_id)]
    if member is not None:
        where.append(
            f"(a.actor_id = ? OR EXISTS (SELECT 1 FROM {t['governance_audit_people']} s"
            " WHERE s.coop_id = a.coop_id AND s.person_id = ? AND s.position = a.position))"
        )
        params += [str(member), str(member)]
    if kind is not None:
        where.append("a.kind = ?")
        params.append(kind)
    if since is not None:
        where.append("a.at >= ?")
        params.append(_moment(since, "since"))
    if until is not None:
        where.append("a.at < ?")
        params.append(_moment(until, "until"))
    if after_position is not None:
        where.append("a.position > ?")
        params.append(after_position)
    with db.read() as cur:
        # One row more than asked tells whether another page follows.
        cur.execute(
            "SELECT a.position, a.version, a.at, a.actor_id, p.name, a.kind, a.summary,"
            f" a.reason, a.decision_id FROM {t['governance_audit']} a"
            f" LEFT JOIN {t['people']} p ON p.id = a.actor_id"
            f" WHERE {' AND '.join(where)} ORDER BY a.position LIMIT ?",
            (*params, limit + 1),
        )
        rows = cur.fetchall()
    page = rows[:limit]
    return {
        "cooperative_id": str(coop_id),
        "entries": [
            {
                "position": r[0],
                "version": r[1],
                "at": r[2],
                "actor_id": r[3],
                "actor_name": r[4],
                "kind": r[5],
                "summary": r[6],
                "reason": r[7],
                "decision_id": r[8],
            }
            for r in page
        ],
        "next_after_position": page[-1][0] if len(rows) > limit else None,
    }


# ---- decisions register -----------------------------------------------------------------


def _proposal(row: Any) -> dict[str, Any]:
    return {
        "proposal_id": row[0],
        "kind": row[1],
        "text": row[2],
        "subject_id": row[3],
        "subject_name": row[4],
        "raised_by": row[5],
        "raised_by_name": row[6],
        "raised_at": row[7],
        "closes_at": row[8],
        "electorate_size": row[9],
        "turnout": row[10],
        "votes_for": row[11],
        "votes_against": row[12],
        "abstentions": row[13],
        "quorum_min": row[14],
        "rule_applied": row[15],
        "outcome": row[16] or "open",
        "refusal": row[17],
        "closed_at": row[18],
        "closed_by": row[19],
        "closed_by_name": row[20],
    }


def _select_proposals(cur: Cursor, t: dict[str, str], where: str, params: tuple[Any, ...]) -> Any:
    cur.execute(
        f"SELECT {PROPOSAL_COLUMNS} FROM {t['governance_proposals']} p"
        f" LEFT JOIN {t['people']} ps ON ps.id = p.subject_id"
        f" LEFT JOIN {t['people']} pr ON pr.id = p.raised_by"
        f" LEFT JOIN {t['people']} pc ON pc.id = p.closed_by"
        f" WHERE {where} ORDER BY p.position",
        params,
    )
    return cur.fetchall()


def decisions(db: Database, coop_id: UUID) -> list[dict[str, Any]]:
    """Every proposal of the cooperative, in the order raised, with its tally once closed."""
    t = _tables(db)
    with db.read() as cur:
        rows = _select_proposals(cur, t, "p.coop_id = ?", (str(coop_id),))
    return [_proposal(r) for r in rows]


def decision(db: Database, coop_id: UUID, proposal_id: UUID) -> dict[str, Any] | None:
    """One proposal with its electorate and each member's current vote (None: not voted)."""
    t = _tables(db)
    with db.read() as cur:
        rows = _select_proposals(
            cur, t, "p.coop_id = ? AND p.proposal_id = ?", (str(coop_id), str(proposal_id))
        )
        if not rows:
            return None
        cur.execute(
            "SELECT e.person_id, p.name, e.choice, e.voted_at, e.changes"
            f" FROM {t['governance_electorate']} e LEFT JOIN {t['people']} p ON p.id = e.person_id"
            " WHERE e.coop_id = ? AND e.proposal_id = ? ORDER BY e.person_id",
            (str(coop_id), str(proposal_id)),
        )
        electorate = cur.fetchall()
    return {
        **_proposal(rows[0]),
        "electorate": [
            {"person_id": r[0], "name": r[1], "vote": r[2], "voted_at": r[3], "changes": r[4]}
            for r in electorate
        ],
    }


# ---- equality indicators ----------------------------------------------------------------


def equality(db: Database, coop_id: UUID) -> dict[str, Any] | None:
    """How evenly the cooperative governs itself, and any action taken without a mandate.

    Participation counts every proposal a member could vote on, open ones included.
    A decision is adopted close to the quorum when its turnout was at most one vote
    above the smallest turnout that met the quorum under the rules then in force.
    """
    t = _tables(db)
    cid = str(coop_id)
    with db.read() as cur:
        cur.execute(f"SELECT 1 FROM {t['governance_cooperatives']} WHERE coop_id = ?", (cid,))
        if cur.fetchone() is None:
            return None
        cur.execute(
            "SELECT m.person_id, p.name, m.left_at IS NULL"
            f" FROM {t['governance_members']} m LEFT JOIN {t['people']} p ON p.id = m.person_id"
            " WHERE m.coop_id = ? ORDER BY m.joined_at, m.person_id",
            (cid,),
        )
        members = cur.fetchall()
        cur.execute(
            f"SELECT g.raised_by, p.name, COUNT(*) FROM {t['governance_proposals']} g"
            f" LEFT JOIN {t['people']} p ON p.id = g.raised_by"
            " WHERE g.coop_id = ? GROUP BY g.raised_by, p.name",
            (cid,),
        )
        raisers = cur.fetchall()
        # The electorate's key makes each row one proposal, so these counts are distinct.
        cur.execute(
            "SELECT person_id, COUNT(*), COUNT(choice)"
            f" FROM {t['governance_electorate']} WHERE coop_id = ? GROUP BY person_id",
            (cid,),
        )
        votes = {r[0]: (int(r[1]), int(r[2])) for r in cur.fetchall()}
        cur.execute(
            f"SELECT COUNT(*) FROM {t['governance_proposals']} WHERE coop_id = ?"
            " AND outcome = 'adopted' AND turnout <= quorum_min + 1",
            (cid,),
        )
        close_to_quorum = int(cur.fetchone()[0])
        cur.execute(
            "SELECT u.position, u.at, u.kind, u.actor_id, p.name, u.why"
            f" FROM {t['governance_unauthorised']} u LEFT JOIN {t['people']} p"
            " ON p.id = u.actor_id WHERE u.coop_id = ? ORDER BY u.position",
            (cid,),
        )
        unauthorised = cur.fetchall()
    raised = {r[0]: int(r[2]) for r in raisers}
    per_member = []
    for person_id, name, current in members:
        eligible, voted = votes.get(person_id, (0, 0))
        per_member.append(
            {
                "person_id": person_id,
                "name": name,
                "current_member": bool(current),
                "proposals_raised": raised.get(person_id, 0),
                "votes_cast": voted,
                "eligible": eligible,
                "participation_rate": voted / eligible if eligible else None,
            }
        )
    total = sum(n for _, _, n in raisers)
    top = max((n for _, _, n in raisers), default=0)
    return {
        "cooperative_id": cid,
        "members": per_member,
        "proposals_raised": total,
        "most_active_share": top / total if total else None,
        # Every member who shares the top count: naming one of a tie would be arbitrary.
        "most_active": [
            {"person_id": p, "name": name, "proposals_raised": n}
            for p, name, n in sorted(raisers)
            if n == top
        ],
        "adopted_close_to_quorum": close_to_quorum,
        "unauthorised_actions": len(unauthorised),
        "unauthorised": [
            {
                "position": r[0],
                "at": r[1],
                "kind": r[2],
                "actor_id": r[3],
                "actor_name": r[4],
                "why": r[5],
            }
            for r in unauthorised
        ],
    }
