"""Cooperatives: founding, conversion, membership and roles, the directory and family tree."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.commands import Command, command_out
from api.deps import CaughtUp, CurrentPerson, Facilitator, InsiderState, ServicesDep
from api.errors import ApiError
from api.schemas import AdmitIn, CommandOut, ConversionIn, ConversionOut, FoundIn, ReasonIn, RulesIn
from ledger.rules import DecisionMode, DecisionRules
from ledger.state import FoundingMember
from projections import directory as views

router = APIRouter(prefix="/v1", tags=["cooperatives"])


def rules_of(body: RulesIn | None) -> DecisionRules | None:
    if body is None:
        return None
    return DecisionRules(**{**body.model_dump(), "mode": DecisionMode(body.mode)})


@router.post("/cooperatives", status_code=201, response_model=CommandOut)
def found(body: FoundIn, ctx: Command, _: Facilitator) -> Response:
    """Found a cooperative of at most 20 members from its conversation groups."""
    return ctx.command(
        lambda _: ctx.services.ledger.found_cooperative(
            name=body.name,
            sector=body.sector,
            members=[FoundingMember(m.person_id, m.conversation_group) for m in body.members],
            mentor_id=body.mentor_id,
            actor=ctx.actor,
            rules=rules_of(body.rules),
            reason=body.reason,
        ),
        status=201,
    )


@router.post("/conversions", status_code=201, response_model=ConversionOut)
def convert(body: ConversionIn, ctx: Command, _: Facilitator) -> Response:
    """Convert a company's employees into as few cooperatives of at most 20 as needed."""
    return ctx.run(
        lambda _: ctx.services.ledger.convert_company(
            company=body.company,
            sector=body.sector,
            employees=body.employees,
            mentor_id=body.mentor_id,
            actor=ctx.actor,
            rules=rules_of(body.rules),
            reason=body.reason,
        ),
        lambda results: ConversionOut(cooperatives=[command_out(r) for r in results]),
        status=201,
    )


@router.get("/cooperatives")
def directory(
    services: ServicesDep,
    _: CurrentPerson,
    __: CaughtUp,
    sector: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """All cooperatives: name, sector, member count, founded, status (cursor-paginated)."""
    page = views.directory(services.ledger.db, sector=sector, after=cursor, limit=limit)
    return {"items": page["cooperatives"], "next_cursor": page["next"]}


@router.get("/cooperatives/{coop_id}")
def show(coop_id: UUID, coop: InsiderState, response: Response) -> dict[str, Any]:
    """The cooperative's current state, straight from its events (members, roles, rules)."""
    response.headers["ETag"] = f'"{coop.version}"'
    return {
        "id": str(coop.id),
        "version": coop.version,
        "name": coop.name,
        "sector": coop.sector,
        "founded_at": coop.founded_at.isoformat(),
        "members": sorted(str(m) for m in coop.members),
        "member_cap": coop.rules.member_cap,
        "mentor_id": str(coop.mentor_id) if coop.mentor_id else None,
        "mentor_until": coop.mentor_until.isoformat() if coop.mentor_until else None,
        "mentorship_ended": coop.mentorship_ended,
        "coordinator_id": str(coop.coordinator_id) if coop.coordinator_id else None,
        "rules": {k: str(v) if k == "mode" else v for k, v in vars(coop.rules).items()},
        "parent_id": str(coop.parent_id) if coop.parent_id else None,
        "children": [str(c) for c in coop.children],
        "open_proposals": [str(p.id) for p in coop.proposals.values() if p.is_open],
    }


@router.get("/cooperatives/{coop_id}/family-tree")
def family_tree(coop_id: UUID, services: ServicesDep, _: CurrentPerson, __: CaughtUp) -> Any:
    """The whole tree of splits this cooperative belongs to, from its root."""
    tree = views.family_tree(services.ledger.db, coop_id)
    if tree is None:
        raise ApiError(404, "cooperative_not_found", f"no cooperative {coop_id}", "coop_id")
    return tree


@router.get("/conversions/{conversion_id}")
def conversion(conversion_id: UUID, services: ServicesDep, _: CurrentPerson) -> Any:
    found_ = views.conversion(services.ledger.db, conversion_id)
    if found_ is None:
        raise ApiError(
            404, "conversion_not_found", f"no conversion {conversion_id}", "conversion_id"
        )
    return found_


@router.post("/cooperatives/{coop_id}/members", response_model=CommandOut)
def admit_founding_member(coop_id: UUID, body: AdmitIn, ctx: Command) -> Response:
    """The mentor admits a founding member during the mentor year."""
    return ctx.command(
        lambda version: ctx.services.ledger.admit_founding_member(
            coop_id,
            body.person_id,
            actor=ctx.actor,
            conversation_group=body.conversation_group,
            reason=body.reason,
            expected_version=version,
        )
    )


@router.post("/cooperatives/{coop_id}/leave", response_model=CommandOut)
def leave(coop_id: UUID, body: ReasonIn, ctx: Command) -> Response:
    """Leave the cooperative on one's own word."""
    return ctx.command(
        lambda version: ctx.services.ledger.leave(
            coop_id, actor=ctx.actor, reason=body.reason, expected_version=version
        )
    )


@router.post("/cooperatives/{coop_id}/coordinator/step-down", response_model=CommandOut)
def step_down(coop_id: UUID, body: ReasonIn, ctx: Command) -> Response:
    return ctx.command(
        lambda version: ctx.services.ledger.step_down_as_coordinator(
            coop_id, actor=ctx.actor, reason=body.reason, expected_version=version
        )
    )


@router.post("/cooperatives/{coop_id}/mentorship/handover", response_model=CommandOut)
def handover(coop_id: UUID, body: ReasonIn, ctx: Command) -> Response:
    """Record the mentor's handover once the mentor year is over."""
    return ctx.command(
        lambda version: ctx.services.ledger.complete_mentor_year(
            coop_id, actor=ctx.actor, reason=body.reason, expected_version=version
        )
    )
