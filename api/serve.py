"""Starting the service: one command for SQLite (one worker, projections inline) and
PostgreSQL (several workers, projections in their own process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import uvicorn
from uvicorn.supervisors import Multiprocess

from api.app import open_services
from api.settings import Settings
from projections.registry import all_projections
from projections.runner import ProjectionRunner


class NoDelayConfig(uvicorn.Config):
    """Uvicorn's shared listening socket for several workers lacks TCP_NODELAY, which adds
    ~40 ms (Nagle + delayed ACK) to every keep-alive reply (uvicorn issue #3149); accepted
    sockets inherit the option from the listener on Linux."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class Supervised:
    """A child process kept alive: restarted a second after it dies, stopped on request."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.process = subprocess.Popen(command)  # noqa: S603 (our own interpreter and module)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            if self.process.poll() is not None:
                print(f"projection process exited ({self.process.returncode}); restarting")
                self.process = subprocess.Popen(self.command)  # noqa: S603

    def stop(self) -> None:
        self.stopping.set()
        self.process.terminate()
        self.thread.join(timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def prepare(settings: Settings) -> None:
    """Create tables and the facilitator once, before any worker starts (workers must not race)."""
    services, generated = open_services(settings)
    try:
        if services.runner is None:  # external projections: their tables must exist too
            ProjectionRunner(services.ledger, all_projections())
        if generated:
            print(
                "\nThe facilitator (admin) token, shown this once; keep it:\n\n"
                f"    {generated}\n\n"
                "(set COOP_LEDGER_ADMIN_TOKEN to choose your own)\n",
                flush=True,
            )
    finally:
        services.ledger.close()


def serve(host: str, port: int, workers: int | None = None) -> int:
    settings = Settings.from_env()
    prepare(settings)
    print(
        f"coop-ledger on {settings.store.kind}: http://{host}:{port}/v1  (docs: /docs)", flush=True
    )
    if settings.store.kind == "sqlite":
        uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=1)
        return 0
    # PostgreSQL: the projections run once, in their own process; the workers only answer.
    # Tables exist from here on (prepare): the workers and the projector must not race.
    os.environ["COOP_LEDGER_PROJECTIONS"] = "external"
    os.environ["COOP_LEDGER_CREATE_TABLES"] = "n"
    projector = Supervised([sys.executable, "-m", "ledger.cli", "project"])
    try:
        config = NoDelayConfig(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers or max(2, (os.cpu_count() or 2)),
            # A stop must not wait on idle keep-alive clients.
            timeout_graceful_shutdown=3,
        )
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        projector.stop()
    return 0
