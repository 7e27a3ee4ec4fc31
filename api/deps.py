"""Dependencies the routers declare: the services, who is calling, and what they may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request

from api.auth import FailedAuthLimiter, Principal, TokenStore
from api.errors import ApiError
from api.idempotency import IdempotencyStore
from api.settings import Settings
from ledger.application import Ledger, Readers
from ledger.cooperative import Cooperative
from projections.registry import all_projections
from projections.runner import ProjectionRunner, wait_until


@dataclass
class Services:
    """Everything the lifespan opened; one instance per app."""

    settings: Settings
    ledger: Ledger
    tokens: TokenStore
    idempotency: IdempotencyStore
    limiter: FailedAuthLimiter
    facilitator_id: UUID
    runner: ProjectionRunner | None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def authenticate(request: Request, services: ServicesDep) -> Principal:
    client = request.client.host if request.client else "unknown"
    wait = services.limiter.retry_after(client)
    if wait:
        raise ApiError(
            429,
            "too_many_failed_attempts",
            "too many failed authentications from this address",
            "Authorization",
            {"Retry-After": str(wait)},
        )
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "authentication_required",
            "send 'Authorization: Bearer <token>'",
            "Authorization",
            {"WWW-Authenticate": "Bearer"},
        )
    person = services.tokens.authenticate(token.strip())
    if person is None:
        services.limiter.failed(client)
        raise ApiError(
            401,
            "invalid_token",
            "the token is not valid",
            "Authorization",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return Principal(person, person == services.facilitator_id)


CurrentPerson = Annotated[Principal, Depends(authenticate)]


def facilitator(principal: CurrentPerson) -> Principal:
    if not principal.is_facilitator:
        raise ApiError(403, "facilitator_only", "only the facilitator does this")
    return principal


Facilitator = Annotated[Principal, Depends(facilitator)]


def insider(coop_id: UUID, principal: CurrentPerson, services: ServicesDep) -> Readers:
    """Admit someone allowed to read the cooperative's internals: members, mentor, facilitator."""
    readers = services.ledger.readers(coop_id)
    if not (principal.is_facilitator or readers.admit(principal.person_id)):
        raise ApiError(
            403, "not_a_member", "only members (and the mentor) read a cooperative's internals"
        )
    return readers


Insider = Annotated[Readers, Depends(insider)]


def insider_state(coop_id: UUID, _: Insider, services: ServicesDep) -> Cooperative:
    """The cooperative as stored now, for an insider (see ``insider``)."""
    return services.ledger.get_cooperative(coop_id)


InsiderState = Annotated[Cooperative, Depends(insider_state)]


def caught_up(
    services: ServicesDep,
    min_position: Annotated[
        int | None,
        Query(ge=0, description="Wait (boundedly) until the projections have applied this."),
    ] = None,
) -> None:
    """Read-your-writes: hold the query until the projections reached ``min_position``."""
    if min_position:
        head = services.ledger.recorder.max_notification_id() or 0
        if min_position > head:
            raise ApiError(
                422,
                "min_position_ahead",
                f"min_position {min_position} is beyond the ledger's last position {head}",
                "min_position",
            )
        names = [p.name for p in all_projections()]
        wait_until(
            services.ledger.db,
            services.ledger.event_log,
            names,
            min_position,
            services.settings.max_wait_seconds,
        )


CaughtUp = Annotated[None, Depends(caught_up)]
