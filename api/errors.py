"""One place that turns errors into HTTP answers, all in one JSON shape.

    {"error": "cooperative_full", "message": "...", "field": "person_id"}

A refused rule names itself; malformed input is 400 (unreadable JSON) or 422
(well-formed but wrong); an unreachable database is 503 with Retry-After.
"""

from __future__ import annotations

import logging
import sqlite3

import psycopg
import psycopg_pool
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from api.responses import OrjsonResponse
from ledger import errors as e
from projections.runner import ProjectionTimeout

log = logging.getLogger("coop_ledger.api")

STATUS: dict[type[e.LedgerError], int] = {
    e.InvalidInput: 422,
    e.CapAboveMaximum: 422,
    e.ManagerRoleDoesNotExist: 422,
    e.UnknownProposalKind: 422,
    e.NotAMember: 403,
    e.NoMandate: 403,
    e.NotEligibleToVote: 403,
    e.NotYourWork: 403,
    e.CooperativeNotFound: 404,
    e.PersonNotFound: 404,
    e.ProposalNotFound: 404,
    e.WorkNotFound: 404,
    e.InvoiceNotFound: 404,
    e.StaleVersion: 412,
    e.ConcurrencyConflict: 409,
    # Every other refusal depends on the cooperative's current state: a conflict.
    e.RuleViolation: 409,
}


class ApiError(Exception):
    """An HTTP-level refusal (authentication, authorization, idempotency ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> OrjsonResponse:
    return OrjsonResponse(
        {"error": code, "message": message, "field": field}, status_code=status, headers=headers
    )


def status_of(error: e.LedgerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(e.LedgerError)
    async def ledger_error(_: Request, error: e.LedgerError) -> OrjsonResponse:
        return error_response(status_of(error), error.code, error.message, error.field)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> OrjsonResponse:
        return error_response(error.status, error.code, error.message, error.field, error.headers)

    @app.exception_handler(ProjectionTimeout)
    async def projection_timeout(_: Request, error: ProjectionTimeout) -> OrjsonResponse:
        return error_response(503, error.code, str(error), "min_position", {"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> OrjsonResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        if first.get("type") == "json_invalid":
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        message = f"{'.'.join(location) or 'request'}: {first.get('msg', 'invalid')}"
        return error_response(422, "invalid_input", message, ".".join(location) or None)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> OrjsonResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        if error.status_code == 400 and "parsing the body" in str(error.detail):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        headers = dict(error.headers) if error.headers else None
        return error_response(error.status_code, code, str(error.detail), None, headers)

    unavailable = (
        psycopg.OperationalError,
        psycopg.InterfaceError,
        psycopg_pool.PoolTimeout,
        OperationalError,
        InterfaceError,
        sqlite3.OperationalError,
    )
    for cls in unavailable:

        @app.exception_handler(cls)
        async def store_unavailable(_: Request, error: Exception) -> OrjsonResponse:
            log.warning("store unavailable: %s", error)
            return error_response(
                503,
                "store_unavailable",
                "the ledger's database is not reachable; try again shortly",
                None,
                {"Retry-After": "2"},
            )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> OrjsonResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "an unexpected error occurred")
