"""The read models: roster, work allocation, audit trail, equality, projection status."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import CaughtUp, CurrentPerson, Insider, ServicesDep
from api.schemas import Moment
from projections import governance_queries, roster, work
from projections.registry import all_projections
from projections.runner import read_status

router = APIRouter(prefix="/v1", tags=["views"])


@router.get("/cooperatives/{coop_id}/roster")
def roster_view(coop_id: UUID, _: Insider, services: ServicesDep, __: CaughtUp) -> Any:
    """Members (since when, group, role), former members, mentor and coordinator terms."""
    return roster.roster(services.ledger.db, coop_id)


@router.get("/cooperatives/{coop_id}/work-allocation")
def work_allocation(coop_id: UUID, _: Insider, services: ServicesDep, __: CaughtUp) -> Any:
    """Per member: open work, hours per ISO week and month, uninvoiced; contacts; evenness."""
    db = services.ledger.db
    return {
        **(work.work_allocation(db, coop_id) or {}),
        "client_contacts": work.client_contacts(db, coop_id),
        "handovers": work.handovers(db, coop_id),
        "evenness": work.evenness(db, coop_id),
    }


@router.get("/cooperatives/{coop_id}/audit")
def audit(
    coop_id: UUID,
    _: Insider,
    services: ServicesDep,
    __: CaughtUp,
    member: UUID | None = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The governance audit trail: who did what, when, why, and the decision behind it."""
    page = governance_queries.audit_trail(
        services.ledger.db,
        coop_id,
        member=member,
        kind=kind,
        since=since,
        until=until,
        after_position=cursor,
        limit=limit,
    )
    next_position = page["next_after_position"]
    return {
        "items": page["entries"],
        "next_cursor": None if next_position is None else str(next_position),
    }


@router.get("/cooperatives/{coop_id}/equality")
def equality(coop_id: UUID, _: Insider, services: ServicesDep, __: CaughtUp) -> Any:
    """Equality indicators per member and for the cooperative."""
    return governance_queries.equality(services.ledger.db, coop_id)


@router.get("/projections")
def projection_status(services: ServicesDep, _: CurrentPerson) -> dict[str, Any]:
    """Each projection's position, lag behind the ledger, state and any error."""
    head = services.ledger.recorder.max_notification_id() or 0
    names = [p.name for p in all_projections()]
    return {
        "head": head,
        "items": [{**vars(s), "lag": s.lag} for s in read_status(services.ledger.db, names, head)],
    }
