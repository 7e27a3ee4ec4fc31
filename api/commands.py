"""Running a command over HTTP: If-Match, Idempotency-Key, and one response shape."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response

from api.auth import Principal
from api.deps import CurrentPerson, Services, ServicesDep
from api.errors import ApiError
from api.idempotency import MAX_KEY_LENGTH, Stored, fingerprint
from api.schemas import CommandOut, EventOut, ReceiptOut
from ledger.application import CommandResult
from ledger.errors import SaveOutcomeUnknown


def command_out(result: CommandResult, name: str | None = None) -> CommandOut:
    return CommandOut(
        cooperative_id=result.cooperative_id,
        version=result.version,
        position=result.position,
        events=[EventOut(**vars(e)) for e in result.events],
        receipt=ReceiptOut(**vars(result.receipt)),
        result={name: result.value} if name else {},
    )


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    cleaned = value.strip().removeprefix("W/").strip('"')
    if not cleaned.isdigit() or len(cleaned) > 12:
        raise ApiError(400, "invalid_if_match", "If-Match must be a version number", "If-Match")
    return int(cleaned)


@dataclass
class CommandContext:
    services: Services
    principal: Principal
    method: str
    path: str
    body: bytes
    key: str | None
    expected_version: int | None

    @property
    def actor(self) -> Any:
        return self.principal.person_id

    def run(
        self,
        call: Callable[[int | None], Any],
        render: Callable[[Any], Any],
        status: int = 200,
    ) -> Response:
        """Run ``call(expected_version)`` once per idempotency key; ``render`` shapes its result."""
        store = self.services.idempotency
        if self.key is not None:
            held = store.claim(
                self.principal.person_id, self.key, fingerprint(self.method, self.path, self.body)
            )
            if held is not None:
                return self._replay(held)
        try:
            result = call(self.expected_version)
        except SaveOutcomeUnknown:
            if self.key is not None:  # the command may be recorded: a retry must not rerun it
                # The store may be down too: the key then stays claimed, and its lease
                # running out tells the same.
                with contextlib.suppress(Exception):
                    store.keep_unknown(self.principal.person_id, self.key)
            raise
        except BaseException:
            if self.key is not None:
                store.release(self.principal.person_id, self.key)
            raise
        out = render(result)
        body = orjson.dumps(out.model_dump(mode="json") if hasattr(out, "model_dump") else out)
        if self.key is not None:
            store.complete(self.principal.person_id, self.key, status, body)
        headers = {"ETag": f'"{out.version}"'} if isinstance(out, CommandOut) else {}
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    def _replay(self, held: Stored) -> Response:
        if held.fingerprint != fingerprint(self.method, self.path, self.body):
            raise ApiError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
                "Idempotency-Key",
            )
        if held.outcome_unknown(datetime.now(UTC)):
            raise ApiError(
                409,
                "request_outcome_unknown",
                "the request with this Idempotency-Key was interrupted and may have been"
                " recorded: read the cooperative's events to see whether it was, and send"
                " it with a new Idempotency-Key only if it was not",
                "Idempotency-Key",
            )
        status, body = held.status, held.body
        if status is None or body is None:
            raise ApiError(
                409,
                "request_in_progress",
                "a request with this Idempotency-Key is still running",
                "Idempotency-Key",
                {"Retry-After": "1"},
            )
        headers = {"Idempotent-Replayed": "true"}
        version = orjson.loads(body).get("version") if body.startswith(b"{") else None
        if isinstance(version, int):
            headers["ETag"] = f'"{version}"'
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    def command(
        self,
        call: Callable[[int | None], CommandResult],
        name: str | None = None,
        status: int = 200,
    ) -> Response:
        return self.run(call, lambda result: command_out(result, name), status)


async def command_context(
    request: Request, services: ServicesDep, principal: CurrentPerson
) -> CommandContext:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            "Idempotency-Key",
        )
    return CommandContext(
        services=services,
        principal=principal,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
        key=key,
        expected_version=parse_if_match(request.headers.get("if-match")),
    )


Command = Annotated[CommandContext, Depends(command_context)]
