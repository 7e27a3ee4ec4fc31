"""People: registered by the facilitator; their personal data can be erased."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from api.auth import Principal
from api.deps import CurrentPerson, Facilitator, ServicesDep
from api.errors import ApiError
from api.schemas import PersonIn, PersonOut, RegisteredPerson

router = APIRouter(prefix="/v1/people", tags=["people"])


def check_self_or_facilitator(principal: Principal, person_id: UUID) -> None:
    if not (principal.is_facilitator or principal.person_id == person_id):
        raise ApiError(403, "not_yourself", "only the person themselves or the facilitator")


@router.post("", status_code=201, response_model=RegisteredPerson)
def register(body: PersonIn, services: ServicesDep, _: Facilitator) -> RegisteredPerson:
    """Register a person; the token in the answer is shown this once."""
    person = services.ledger.register_person(body.name, body.contact)
    token = services.tokens.issue(person.id)
    return RegisteredPerson(
        id=person.id, name=person.name, contact=person.contact, erased=False, token=token
    )


@router.get("/me", response_model=PersonOut)
def me(principal: CurrentPerson, services: ServicesDep) -> PersonOut:
    return show(principal.person_id, principal, services)


@router.get("/{person_id}", response_model=PersonOut)
def show(person_id: UUID, principal: CurrentPerson, services: ServicesDep) -> PersonOut:
    check_self_or_facilitator(principal, person_id)
    person = services.ledger.people.get(person_id)
    return PersonOut(id=person.id, name=person.name, contact=person.contact, erased=person.erased)


@router.delete("/{person_id}/personal-data", status_code=204)
def erase(person_id: UUID, principal: CurrentPerson, services: ServicesDep) -> Response:
    """Forget a person's name and contact details; the history keeps their pseudonymous id."""
    check_self_or_facilitator(principal, person_id)
    if person_id == services.facilitator_id:
        raise ApiError(
            409,
            "facilitator_not_erasable",
            "the service's facilitator account holds no personal data and keeps the admin token",
            "person_id",
        )
    services.ledger.erase_person(person_id)
    services.tokens.set_token(person_id, None)
    return Response(status_code=204)
