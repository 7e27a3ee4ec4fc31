"""Proposals and votes: raise, vote (cast or change), close; the register and each tally."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response

from api.commands import Command
from api.deps import CaughtUp, Insider, ServicesDep
from api.errors import ApiError
from api.routers.cooperatives import rules_of
from api.schemas import CommandOut, ProposalIn, ReasonIn, VoteIn
from ledger.state import SplitPlan
from projections import governance_queries as views

router = APIRouter(prefix="/v1/cooperatives/{coop_id}/proposals", tags=["proposals"])


@router.post("", status_code=201, response_model=CommandOut)
def raise_proposal(coop_id: UUID, body: ProposalIn, ctx: Command) -> Response:
    """Put a question to all members; the electorate is the membership right now."""
    split = SplitPlan(body.split.new_name, tuple(body.split.moving_members)) if body.split else None
    return ctx.command(
        lambda version: ctx.services.ledger.raise_proposal(
            coop_id,
            kind=body.kind,
            text=body.text,
            actor=ctx.actor,
            closes_at=body.closes_at,
            subject=body.subject,
            new_rules=rules_of(body.rules),
            split=split,
            reason=body.reason,
            expected_version=version,
        ),
        name="proposal_id",
        status=201,
    )


@router.put("/{proposal_id}/vote", response_model=CommandOut)
def vote(coop_id: UUID, proposal_id: UUID, body: VoteIn, ctx: Command) -> Response:
    """Cast one's one vote, or change it while the proposal is open."""
    return ctx.command(
        lambda version: ctx.services.ledger.vote(
            coop_id,
            proposal_id,
            body.choice,
            actor=ctx.actor,
            reason=body.reason,
            expected_version=version,
        )
    )


@router.post("/{proposal_id}/close", response_model=CommandOut)
def close(coop_id: UUID, proposal_id: UUID, body: ReasonIn, ctx: Command) -> Response:
    """Close when everyone voted or the deadline passed; an adoption takes effect at once."""
    return ctx.command(
        lambda version: ctx.services.ledger.close_proposal(
            coop_id, proposal_id, actor=ctx.actor, reason=body.reason, expected_version=version
        ),
        name="new_cooperative_id",
    )


@router.get("")
def register(coop_id: UUID, _: Insider, services: ServicesDep, __: CaughtUp) -> dict[str, Any]:
    """The decisions register: every proposal, its electorate, turnout, tally and outcome."""
    return {"items": views.decisions(services.ledger.db, coop_id), "next_cursor": None}


@router.get("/{proposal_id}")
def show(
    coop_id: UUID, proposal_id: UUID, _: Insider, services: ServicesDep, __: CaughtUp
) -> dict[str, Any]:
    """One proposal with its electorate and how each member voted."""
    found = views.decision(services.ledger.db, coop_id, proposal_id)
    if found is None:
        raise ApiError(404, "proposal_not_found", f"no proposal {proposal_id}", "proposal_id")
    return found
