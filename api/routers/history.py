"""Time travel: a cooperative's state as of a past moment, and what changed between two.

Read from the ledger's events alone (``ledger.history``), never from the projections, so
an answer in a dispute cannot depend on how far a projection has caught up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import Insider, ServicesDep
from ledger import history
from ledger.history import MAX_NUMBER, MOMENT_SYNTAX

router = APIRouter(prefix="/v1", tags=["history"])

SPEC = f"A moment: {MOMENT_SYNTAX}."


@router.get("/cooperatives/{coop_id}/state")
def state(
    coop_id: UUID,
    _: Insider,
    services: ServicesDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_NUMBER)] = None,
    position: Annotated[int | None, Query(ge=1, le=MAX_NUMBER)] = None,
    at: Annotated[datetime | None, Query(description="A time with its zone.")] = None,
) -> dict[str, Any]:
    """The cooperative as it stood at one moment: a version, a position or a time (or now).

    Members, mentor (active then?), coordinator, rules in force, open proposals with their
    electorate and votes, invoices and open work; ``as_of`` names the event it rests on.
    """
    return history.state_as_of(services.ledger, coop_id, version=version, position=position, at=at)


@router.get("/cooperatives/{coop_id}/diff")
def diff(
    coop_id: UUID,
    _: Insider,
    services: ServicesDep,
    start: Annotated[str, Query(alias="from", min_length=1, max_length=64, description=SPEC)],
    end: Annotated[
        str, Query(alias="to", min_length=1, max_length=64, description=SPEC)
    ] = "latest",
) -> dict[str, Any]:
    """What changed between two moments (``to``: the latest by default), each change with
    the events that caused it: members, roles, rules, decisions, invoices, work."""
    return history.diff(services.ledger, coop_id, start, end)
