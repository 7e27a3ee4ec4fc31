"""Schemathesis against the service's own OpenAPI schema, in process.

The schema is the one the app serves at ``/openapi.json``; every request goes
through the real ASGI app (routing, validation, authentication, the error
handlers, the response models) with its lifespan running. SQLite only: this
suite exercises the HTTP layer, and everything below it is the same code on both
stores, which the other e2e and integration tests run on SQLite and PostgreSQL.
Each operation gets its own app on its own SQLite file, so operations cannot
disturb each other and a failure reproduces alone.

Callers:

* the facilitator, on every operation, with whatever ids Schemathesis generates:
  unknown cooperatives, people and proposals (the 404/403/422 paths), on an
  empty store;
* a founding member of a seeded cooperative (open work, logged hours, an issued
  invoice, an open proposal), on the cooperative's operations and the directory,
  with the path ids pinned to that cooperative, so that bodies and queries are
  fuzzed against real state;
* its mentor, on the operations only a mentor (or coordinator) may run: invoices,
  admitting founding members, the handover;
* the facilitator on their own person record (``person_id`` pinned to it);
* the facilitator again in a stateful run: scenarios of up to STATEFUL_STEPS
  calls following the links Schemathesis 4 infers from the schema (it declares no
  OpenAPI links itself). In practice they start at ``GET /v1/people/me`` and go
  on to ``GET /v1/people/{person_id}``, ``DELETE .../personal-data``,
  ``POST /v1/cooperatives`` and ``POST .../members``; each scenario runs on a
  fresh seeded app so that a failure replays from its own steps.

Three hints help the generator past the first refusal: ``kind`` is free text in
the schema but a closed set in the ledger, an invoice needs a client with logged
hours, and a proposal's ``closes_at`` must lie ahead while generated date-times
mostly lie behind; so those body fields are often drawn from known good values.

Checks, on every response:

* ``not_a_server_error``: no 5xx;
* ``response_schema_conformance`` and ``content_type_conformance``;
* ``negative_data_rejection``: a request the schema says is invalid is refused
  (413 counts: the body limit is deliberate);
* ``documented_success``: a 2xx status is one the schema documents for the
  operation. Schemathesis' ``status_code_conformance`` is not used as is: the
  schema documents only 2xx and 422, while 400/401/403/404/405/409/412/413 are
  deliberate answers (``api/errors.py``), so it would fail nearly every
  operation on the documentation gap rather than on behaviour;
* ``error_envelope``: every error is the one shape ``{"error", "message", "field"}``;
* ``facilitator_keeps_access``: the configured admin token is never refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import CheckContext, CheckFunction, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.case import Case as GenericCase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from api import Settings, create_app
from ledger.rules import ProposalKind
from ledger.storage import StoreConfig
from tests.conftest import build_sqlite_url
from tests.e2e.support import ADMIN_TOKEN, Api, bearer

Case = GenericCase[Any]

# Examples per operation: the facilitator mostly meets unknown ids (cheap refusals);
# the member and the mentor meet real state, where the bugs live.
FACILITATOR_EXAMPLES = 10
INSIDER_EXAMPLES = 25
STATEFUL_EXAMPLES = 15
STATEFUL_STEPS = 8
# A read that waits for a position the projections never reach must not cost the
# default five seconds per example.
MAX_WAIT_SECONDS = 0.2
ERROR_KEYS = {"error", "message", "field"}
CLIENT = "acme"
FUTURE_MOMENTS = ["2099-12-31T23:00:00Z", "2099-12-31T23:00:00+00:00", "2099-12-31T23:00:00+01:00"]
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


class WithoutLifespan:
    """The app as Schemathesis' in-process client sees it: without a lifespan.

    The test's own TestClient runs the app's lifespan (opening the store, starting
    the projection runner) and ends it when the test ends; Schemathesis would
    otherwise start a second one and keep it until the interpreter exits.
    Declining the lifespan scope before receiving anything is how an ASGI app says
    it has none.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("the lifespan is run by the test's TestClient")
        await self.app(scope, receive, send)


def schema_app() -> WithoutLifespan:
    """An app that only serves its schema: without a lifespan, no store is ever opened."""
    unused = StoreConfig.from_url("sqlite:///never-opened.sqlite3")
    return WithoutLifespan(create_app(Settings(store=unused, admin_token=ADMIN_TOKEN)))


config = schemathesis.Config.from_dict(
    {
        "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
        # `kind` is free text in the schema but a closed set in the ledger: without the
        # known kinds nearly every generated proposal stops at 422 unknown_proposal_kind
        # and its other fields (closes_at, rules, split ...) are never exercised.
        # Likewise invoices need a client with logged hours (the seeded one), and a
        # proposal's deadline must lie ahead while generated date-times mostly lie behind.
        "dictionaries": {
            "proposal-kinds": {"values": [k.value for k in ProposalKind]},
            "clients": {"values": [CLIENT]},
            "deadlines": {"values": FUTURE_MOMENTS},
        },
        "parameters": {
            "body.kind": {"dictionary": "proposal-kinds", "probability": 0.8},
            "body.client_ref": {"dictionary": "clients", "probability": 0.5},
            "body.closes_at": {"dictionary": "deadlines", "probability": 0.5},
        },
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", schema_app(), config=config)


@dataclass
class Service:
    app: WithoutLifespan
    facilitator_id: str
    coop_id: str
    work_id: str
    proposal_id: str
    invoice_number: int
    member_headers: dict[str, str]
    mentor_headers: dict[str, str]


@contextmanager
def running_app(path: Path) -> Iterator[tuple[WithoutLifespan, TestClient]]:
    """A fresh app on its own SQLite file, its lifespan running; and a client for seeding."""
    settings_ = Settings(
        store=StoreConfig.from_url(build_sqlite_url(path)),
        admin_token=ADMIN_TOKEN,
        max_wait_seconds=MAX_WAIT_SECONDS,
    )
    app = create_app(settings_)
    with TestClient(app) as client:
        yield WithoutLifespan(app), client


@contextmanager
def running_service(path: Path) -> Iterator[Service]:
    """A fresh app on its own SQLite file, lifespan running, with one seeded cooperative.

    Ana, Bo and Cas are its members, with a mentor; Ana holds open work for the client
    CLIENT with hours on it (some invoiced as invoice 1, some not) and an open proposal.
    """
    with running_app(path) as (app, client):
        api = Api(client)
        ana, bo, cas = (api.register(name) for name in ("Ana", "Bo", "Cas"))
        mentor = api.register("Mentor")
        coop_id = api.found([ana, bo, cas], mentor)
        base = f"/v1/cooperatives/{coop_id}"
        work = client.post(f"{base}/work", json={"client_ref": CLIENT}, headers=ana.headers)
        assert work.status_code == 201, work.text
        work_id = work.json()["result"]["work_id"]
        hours = client.post(
            f"{base}/work/{work_id}/hours", json={"minutes": 90}, headers=ana.headers
        )
        assert hours.status_code == 201, hours.text
        invoice = client.post(
            f"{base}/invoices",
            json={"client_ref": CLIENT, "hourly_rate_cents": 4000},
            headers=mentor.headers,
        )
        assert invoice.status_code == 201, invoice.text
        more = client.post(
            f"{base}/work/{work_id}/hours", json={"minutes": 30}, headers=ana.headers
        )
        assert more.status_code == 201, more.text  # so that there is something to invoice
        raised = client.post(
            f"{base}/proposals", json={"kind": "general", "text": "Buy a van"}, headers=ana.headers
        )
        assert raised.status_code == 201, raised.text
        me = client.get("/v1/people/me", headers=bearer(ADMIN_TOKEN))
        assert me.status_code == 200, me.text
        yield Service(
            app=app,
            facilitator_id=me.json()["id"],
            coop_id=coop_id,
            work_id=work_id,
            proposal_id=raised.json()["result"]["proposal_id"],
            invoice_number=invoice.json()["result"]["invoice_number"],
            member_headers=ana.headers,
            mentor_headers=mentor.headers,
        )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path / "ledger.sqlite3") as running:
        yield running


@pytest.fixture
def empty_app(tmp_path: Path) -> Iterator[WithoutLifespan]:
    """For the facilitator's unknown ids a seeded cooperative would not matter."""
    with running_app(tmp_path / "ledger.sqlite3") as (app, _):
        yield app


def error_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx/5xx answer has the one documented shape: error, message, field."""
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict), body
        assert set(body) == ERROR_KEYS, body
        assert isinstance(body["error"], str), body
        assert isinstance(body["message"], str), body
    return None


def documented_success(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 2xx answer uses a status the schema documents for the operation."""
    if 200 <= response.status_code < 300:
        documented = set(case.operation.definition.raw.get("responses", {}))
        assert str(response.status_code) in documented, (response.status_code, documented)
    return None


def facilitator_keeps_access(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The configured admin token keeps working, whatever the requests before did."""
    sent = response.request.headers.get("Authorization")
    if sent == bearer(ADMIN_TOKEN)["Authorization"]:
        assert response.status_code != 401, (
            f"the admin token was refused ({response.text}); an earlier step in the scenario"
            " (e.g. DELETE /v1/people/<the facilitator's id>/personal-data) locked it out"
        )
    return None


def pin(case: Case, service: Service, *names: str) -> list[CheckFunction]:
    """Point the case's path ids at the seeded records: the cooperative, its work,
    proposal and invoice, and the facilitator's own person id as ``person_id``.

    The checks to leave out for this case: when the generator had made the path
    invalid on purpose, the case no longer is what it was generated as, and
    ``negative_data_rejection`` would judge it by the path it replaced.
    """
    generated = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    seeded = {
        "coop_id": service.coop_id,
        "work_id": service.work_id,
        "proposal_id": service.proposal_id,
        "number": service.invoice_number,
        "person_id": service.facilitator_id,
    }
    for name in case.path_parameters or {}:
        if name in names:
            case.path_parameters[name] = seeded[name]
    if generated is not None and generated.mode.is_negative:
        return [negative_data_rejection]
    return []


CHECKS: list[CheckFunction] = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
]
EXTRA: list[CheckFunction] = [error_envelope, documented_success, facilitator_keeps_access]


def fuzzing(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@schema.parametrize()
@fuzzing(FACILITATOR_EXAMPLES)
def test_as_facilitator(case: Case, empty_app: WithoutLifespan) -> None:
    case.call_and_validate(
        app=empty_app, headers=bearer(ADMIN_TOKEN), checks=CHECKS, additional_checks=EXTRA
    )


@schema.include(
    path_regex=r"^/v1/(cooperatives(/\{coop_id\}.*)?|projections|people/me)$"
).parametrize()
@fuzzing(INSIDER_EXAMPLES)
def test_as_member(case: Case, service: Service) -> None:
    excluded = pin(case, service, "coop_id", "work_id", "proposal_id", "number")
    case.call_and_validate(
        app=service.app,
        headers=service.member_headers,
        checks=CHECKS,
        additional_checks=EXTRA,
        excluded_checks=excluded,
    )


@schema.include(
    path_regex=r"^/v1/cooperatives/\{coop_id\}/(invoices|members|mentorship)"
).parametrize()
@fuzzing(INSIDER_EXAMPLES)
def test_as_mentor(case: Case, service: Service) -> None:
    """The mentor's own powers: invoicing, admitting founding members, the handover."""
    excluded = pin(case, service, "coop_id", "number")
    case.call_and_validate(
        app=service.app,
        headers=service.mentor_headers,
        checks=CHECKS,
        additional_checks=EXTRA,
        excluded_checks=excluded,
    )


@schema.include(path_regex=r"^/v1/people/\{person_id\}").parametrize()
@fuzzing(FACILITATOR_EXAMPLES)
def test_facilitator_on_own_record(case: Case, service: Service) -> None:
    """What the facilitator may do to their own person record: read it, erase it ...
    and still be the facilitator afterwards (``facilitator_keeps_access``)."""
    excluded = pin(case, service, "person_id")
    case.call_and_validate(
        app=service.app,
        headers=bearer(ADMIN_TOKEN),
        checks=CHECKS,
        additional_checks=EXTRA,
        excluded_checks=excluded,
    )


def test_stateful_as_facilitator(tmp_path: Path) -> None:
    """Scenarios of linked calls, each on a fresh seeded app, with ``coop_id`` pinned to it."""
    base = schema.as_state_machine()
    scenarios = count()

    class Workflow(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            self.stack = ExitStack()
            path = tmp_path / f"scenario-{next(scenarios)}.sqlite3"
            self.service = self.stack.enter_context(running_service(path))

        def teardown(self) -> None:
            self.stack.close()

        def before_call(self, case: Case) -> None:
            self.excluded = pin(case, self.service, "coop_id")

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"app": self.service.app, "headers": bearer(ADMIN_TOKEN)}

        def validate_response(
            self,
            response: Response,
            case: Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(
                response,
                checks=CHECKS,
                additional_checks=EXTRA,
                excluded_checks=self.excluded,
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs,
            )

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
