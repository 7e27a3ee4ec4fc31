"""The HTTP service: create_app() wires the ledger, the projections and the routers.

Resources open in the lifespan, never at import time; settings are read once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.auth import FailedAuthLimiter, TokenStore
from api.deps import Services
from api.idempotency import IdempotencyStore
from api.responses import OrjsonResponse
from api.routers import (
    cooperatives,
    history,
    invoices,
    people,
    proofs,
    proposals,
    views,
    work,
)
from api.settings import Settings
from ledger.application import Ledger
from projections.registry import all_projections
from projections.runner import ProjectionRunner, ensure_tracking, is_transient

log = logging.getLogger("coop_ledger.api")


class BodyLimit:
    """Read the whole request body before the app sees it: at most ``limit`` bytes (else 413),
    each chunk within ``stall_s`` seconds (else 408), so a slow or endless upload can neither
    exhaust memory nor hold a connection for ever."""

    def __init__(self, app: ASGIApp, limit: int, stall_s: float = 5.0) -> None:
        self.app, self.limit, self.stall_s = app, limit, stall_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(
                send, 413, "body_too_large", f"bodies are limited to {self.limit} bytes"
            )
            return
        messages: list[Message] = []
        seen = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.stall_s)
            except TimeoutError:
                await self._refuse(
                    send, 408, "body_too_slow", f"no part of the body came for {self.stall_s:g} s"
                )
                return
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await self._refuse(
                    send, 413, "body_too_large", f"bodies are limited to {self.limit} bytes"
                )
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, status: int, code: str, message: str) -> None:
        response = errors.error_response(status, code, message)
        headers = [*response.raw_headers, (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def open_services(settings: Settings) -> tuple[Services, str | None]:
    ledger = Ledger(settings.store)
    tokens = TokenStore(ledger)
    facilitator, generated = tokens.bootstrap_facilitator(settings.admin_token)
    runner = None
    ensure_tracking(ledger.db)  # status and read-your-writes read it, whoever projects
    if settings.projections == "inline":
        runner = ProjectionRunner(ledger, all_projections())
        ledger.saved_listeners.append(lambda _: runner.wakeup.set())
    services = Services(
        settings=settings,
        ledger=ledger,
        tokens=tokens,
        idempotency=IdempotencyStore(ledger.db),
        limiter=FailedAuthLimiter(settings.failed_auth_per_minute),
        facilitator_id=facilitator,
        runner=runner,
    )
    return services, generated


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A worker restarted while the database is down waits for it instead of dying
        # (which would take the whole multi-worker service down with it).
        for attempt in range(60):
            try:
                services, generated = await asyncio.to_thread(open_services, settings)
                break
            except Exception as error:
                if attempt == 59 or not is_transient(error):
                    raise
                log.warning("store not reachable at startup (%s); retrying", error)
                await asyncio.sleep(1)
        if generated:
            print(f"facilitator (admin) token, shown once: {generated}", flush=True)
        if services.runner is not None:
            services.runner.start()
        app.state.services = services
        try:
            yield
        finally:
            if services.runner is not None:
                services.runner.stop()
            services.ledger.close()

    app = FastAPI(
        title="coop-ledger",
        version="1",
        summary="The auditable decision history of small worker cooperatives",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (people, cooperatives, proposals, work, invoices, views, history, proofs):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
