"""The service as it is deployed: a real server process, spoken to over real HTTP.

Each test starts the service the way an operator does, ``coop-ledger serve``
(run as ``python -m ledger.cli serve``: on SQLite one uvicorn worker with the
projections inline; on PostgreSQL two workers and a separate ``coop-ledger
project`` process), or plain ``uvicorn api.app:create_app --factory`` for the
admin-token test, on a free port with its settings in the environment
(``COOP_LEDGER_DATABASE_URL``, ``COOP_LEDGER_ADMIN_TOKEN``). It waits (boundedly)
until ``/openapi.json`` answers, talks to it with httpx, then sends SIGTERM to
the main process and expects a graceful shutdown of it and of every process it
started, within a few seconds.

The workflow test also prints request latencies (p50/p99 of a command and of a
projection query over a couple of hundred requests each). They are printed, not
asserted: timings on a shared CI machine are not a contract.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import ADMIN_TOKEN, bearer

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0
SHUTDOWN_SECONDS = 10.0  # a loaded 2-core machine; observed 0.2-1.3 s when quiet
SAMPLES = 200
# Both wordings: the app's lifespan prints "... token, shown once: <token>", `serve`
# prints "... token, shown this once; keep it:" with the token on a line of its own.
TOKEN = re.compile(r"facilitator \(admin\) token[^\n]*:\s*([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One server process (and whatever it starts); its stdout and stderr, line by line."""

    def __init__(self, launcher: str, database_url: str, admin_token: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COOP_LEDGER_")}
        env["COOP_LEDGER_DATABASE_URL"] = database_url
        if admin_token is not None:
            env["COOP_LEDGER_ADMIN_TOKEN"] = admin_token
        env["PYTHONUNBUFFERED"] = "1"
        listen = ["--host", "127.0.0.1", "--port", str(self.port)]
        if launcher == "serve":
            command = [sys.executable, "-m", "ledger.cli", "serve", *listen]
            if database_url.startswith("postgresql"):
                command += ["--workers", "2"]
        else:
            command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", *listen]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a failed test can kill it all
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _collect(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "stdout:\n" + "\n".join(self.stdout) + "\nstderr:\n" + "\n".join(self.stderr)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"the server did not answer within {STARTUP_SECONDS:g}s\n{self.output()}")

    def terminate(self) -> tuple[int, float, list[int]]:
        """SIGTERM to the main process only, as a supervisor sends it.

        The exit code, the seconds until the process and all it started were gone,
        and the ids of any of its processes still alive after SHUTDOWN_SECONDS.
        """
        children = descendants(self.process.pid)
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the server ignored SIGTERM for {SHUTDOWN_SECONDS:g}s\n{self.output()}")
        deadline = started + SHUTDOWN_SECONDS
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.02)
        seconds = time.monotonic() - started
        for reader in self.readers:
            reader.join(timeout=2)
        return code, seconds, [pid for pid in children if alive(pid)]

    def kill(self) -> None:
        """SIGKILL to the process group the server was started in (only its processes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (Linux /proc; none known elsewhere)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (an exited, not yet reaped process does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def start() -> Iterator[Callable[..., Server]]:
    """Start servers for the test; whatever is still running at the end is killed."""
    servers: list[Server] = []

    def started(
        database_url: str, admin_token: str | None = ADMIN_TOKEN, launcher: str = "serve"
    ) -> Server:
        server = Server(launcher, database_url, admin_token)
        servers.append(server)
        server.wait_ready()
        return server

    yield started
    for server in servers:
        if server.process.poll() is None:
            server.kill()


def stop_cleanly(server: Server) -> None:
    """SIGTERM: the lifespan shuts down, nothing fails, the process is gone in a few seconds.

    uvicorn re-raises the signal it caught once it has shut down gracefully, so a
    clean stop exits by SIGTERM (-15), the status a supervisor expects; 0 is fine too.
    """
    code, seconds, left = server.terminate()
    assert code in (0, -signal.SIGTERM), f"exit code {code}\n{server.output()}"
    assert not left, f"processes still running after SIGTERM: {left}\n{server.output()}"
    for line in ("Application shutdown complete", "Finished server process"):
        assert any(line in logged for logged in server.stderr), server.output()
    assert not any("Traceback" in line or "ERROR" in line for line in server.stderr), (
        server.output()
    )
    print(f"  SIGTERM -> exit status {code} after {seconds:.2f}s")


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms (n={len(samples)})"


def timed(call: Callable[[], httpx.Response], expected: int) -> float:
    began = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - began
    assert response.status_code == expected, response.text
    return elapsed


def test_workflow_over_http(start: Callable[..., Server], database_url: str) -> None:
    server = start(database_url)
    admin = bearer(ADMIN_TOKEN)
    with httpx.Client(base_url=server.url, timeout=10.0) as http:

        def register(name: str) -> tuple[str, dict[str, str]]:
            response = http.post("/v1/people", json={"name": name}, headers=admin)
            assert response.status_code == 201, response.text
            return response.json()["id"], bearer(response.json()["token"])

        (ana, ana_auth), (bo, _), (cas, _), (mentor, _) = (
            register(name) for name in ("Ana", "Bo", "Cas", "Mentor")
        )
        founded = http.post(
            "/v1/cooperatives",
            json={
                "name": "De Schoonmakers",
                "sector": "cleaning",
                "members": [{"person_id": p, "conversation_group": "g1"} for p in (ana, bo, cas)],
                "mentor_id": mentor,
            },
            headers=admin,
        )
        assert founded.status_code == 201, founded.text
        coop = f"/v1/cooperatives/{founded.json()['cooperative_id']}"

        taken = http.post(f"{coop}/work", json={"client_ref": "acme"}, headers=ana_auth)
        assert taken.status_code == 201, taken.text
        work_id = taken.json()["result"]["work_id"]
        logged = http.post(f"{coop}/work/{work_id}/hours", json={"minutes": 90}, headers=ana_auth)
        assert logged.status_code == 201, logged.text

        allocation = http.get(
            f"{coop}/work-allocation",
            params={"min_position": logged.json()["position"]},
            headers=ana_auth,
        )
        assert allocation.status_code == 200, allocation.text
        by_member = {m["person_id"]: m for m in allocation.json()["members"]}
        assert by_member[ana]["logged_minutes"] == 90
        assert by_member[ana]["uninvoiced_minutes"] == 90
        assert [w["work_id"] for w in by_member[ana]["open_work"]] == [work_id]
        assert by_member[bo]["logged_minutes"] == 0

        command = [
            timed(
                lambda: http.post(
                    f"{coop}/work/{work_id}/hours", json={"minutes": 5}, headers=ana_auth
                ),
                201,
            )
            for _ in range(SAMPLES)
        ]
        query = [
            timed(lambda: http.get(f"{coop}/work-allocation", headers=ana_auth), 200)
            for _ in range(SAMPLES)
        ]
        # The floor under both: no store, no authentication.
        floor = [timed(lambda: http.get("/openapi.json"), 200) for _ in range(SAMPLES // 4)]

        last = http.post(f"{coop}/work/{work_id}/hours", json={"minutes": 5}, headers=ana_auth)
        assert last.status_code == 201, last.text
        caught_up = http.get(
            f"{coop}/work-allocation",
            params={"min_position": last.json()["position"]},
            headers=ana_auth,
        )
        assert caught_up.status_code == 200, caught_up.text
        ana_now = next(m for m in caught_up.json()["members"] if m["person_id"] == ana)
        assert ana_now["logged_minutes"] == 90 + 5 * (SAMPLES + 1)

    store = database_url.split(":", 1)[0]
    print(f"\nreal server on {store}, latencies over HTTP (keep-alive, one client):")
    print(f"  command  POST .../work/{{id}}/hours:   {percentiles(command)}")
    print(f"  query    GET  .../work-allocation:   {percentiles(query)}")
    print(f"  floor    GET  /openapi.json:         {percentiles(floor)}")
    early, late = statistics.median(command[:20]), statistics.median(command[-20:])
    print(f"  command median, first 20 vs last 20: {early * 1000:.1f} ms -> {late * 1000:.1f} ms")
    stop_cleanly(server)


@pytest.mark.parametrize("launcher", ["serve", "uvicorn"])
def test_generated_admin_token_is_printed_once(
    start: Callable[..., Server], sqlite_url: str, launcher: str
) -> None:
    first = start(sqlite_url, admin_token=None, launcher=launcher)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not (printed := TOKEN.findall("\n".join(first.stdout))):
        assert time.monotonic() < deadline, f"no admin token printed\n{first.output()}"
        time.sleep(0.02)
    token = printed[0]
    me = httpx.get(f"{first.url}/v1/people/me", headers=bearer(token), timeout=10.0)
    assert me.status_code == 200, me.text
    facilitator_id = me.json()["id"]
    registered = httpx.post(
        f"{first.url}/v1/people", json={"name": "Ana"}, headers=bearer(token), timeout=10.0
    )
    assert registered.status_code == 201, registered.text
    stop_cleanly(first)  # the output is complete once the process has exited
    assert TOKEN.findall("\n".join(first.stdout)) == [token], first.output()
    assert not any(token in line for line in first.stderr), "the token leaked into the logs"

    second = start(sqlite_url, admin_token=None, launcher=launcher)
    again = httpx.get(f"{second.url}/v1/people/me", headers=bearer(token), timeout=10.0)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == facilitator_id
    stop_cleanly(second)
    assert not TOKEN.findall("\n".join(second.stdout)), second.output()
