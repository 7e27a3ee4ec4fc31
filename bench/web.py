"""HTTP figures: a real ``coop-ledger serve`` (uvicorn) under a real load generator.

wrk (Debian's package) when it is installed; otherwise a Python load generator (httpx
clients in several processes), and the figure says which one ran. The bench installs
nothing itself.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.ledger_figures import percentile
from bench.procs import Ready, run_parallel

CONNECTIONS = 16
STARTS = 3
PY_CLIENTS = 4
COOPERATIVES = 16


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str
    body: str | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _healthy(process: subprocess.Popen[bytes], base: str, log: Path) -> bool:
    """Answering, and still up a second later with no worker that failed to start."""
    deadline = time.monotonic() + 60
    while process.poll() is None:
        try:
            if httpx.get(f"{base}/openapi.json", timeout=1).is_success:
                time.sleep(1.0)
                return process.poll() is None and "startup failed" not in log.read_text()
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return False


@contextmanager
def running_server(database_url: str, admin_token: str, log: Path) -> Iterator[tuple[str, int]]:
    """``coop-ledger serve --port P`` with its own admin token; yields (base URL, starts).

    A start is tried again when a worker fails at startup: on PostgreSQL the workers and
    the projection process each create the tables, and the library's CREATE OR REPLACE
    FUNCTION run at once in two processes can fail ('tuple concurrently updated').
    """
    script = Path(sys.executable).with_name("coop-ledger")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "ledger.cli"]
    env = {
        **os.environ,
        "COOP_LEDGER_DATABASE_URL": database_url,
        "COOP_LEDGER_ADMIN_TOKEN": admin_token,
    }
    for attempt in range(1, STARTS + 1):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = _start([*program, "serve", "--port", str(port)], env, log)
        if _healthy(process, base, log):
            break
        _stop(process)
        if attempt == STARTS:
            raise RuntimeError(f"the service did not start:\n{log.read_text()[-3000:]}")
    try:
        yield base, attempt
    finally:
        _stop(process)


def populate(base: str, admin_token: str) -> tuple[list[Request], list[Request]]:
    """Cooperatives with one working member each; (log-hours requests, roster requests)."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base, timeout=30) as client:

        def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
            response = client.post(path, json=body, headers=headers)
            response.raise_for_status()
            return response.json()

        mentor = post("/v1/people", {"name": "Mentor"}, admin)["id"]
        commands, queries = [], []
        for n in range(COOPERATIVES):
            member = post("/v1/people", {"name": f"Worker {n}"}, admin)
            founded = post(
                "/v1/cooperatives",
                {
                    "name": f"Coop {n}",
                    "sector": "cleaning",
                    "members": [{"person_id": member["id"]}],
                    "mentor_id": mentor,
                },
                admin,
            )
            coop = founded["cooperative_id"]
            mine = {"Authorization": f"Bearer {member['token']}"}
            work = post(f"/v1/cooperatives/{coop}/work", {"client_ref": "client-1"}, mine)
            work_id = work["result"]["work_id"]
            commands.append(
                Request(
                    "POST",
                    f"/v1/cooperatives/{coop}/work/{work_id}/hours",
                    member["token"],
                    '{"minutes": 30}',
                )
            )
            queries.append(Request("GET", f"/v1/cooperatives/{coop}/roster", member["token"]))
    return commands, queries


def lua_script(requests: list[Request]) -> str:
    def entry(r: Request) -> str:
        body = "nil" if r.body is None else f"'{r.body}'"
        return f"  {{'{r.method}', '{r.path}', '{r.token}', {body}}},"

    rows = "\n".join(entry(r) for r in requests)
    return f"""local requests = {{
{rows}
}}
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local i = 0
request = function()
  -- Each thread rotates over its own half: two in-flight commands rarely share a cooperative.
  i = i + 1
  local r = requests[((id + 2 * i) % #requests) + 1]
  local headers = {{["Authorization"] = "Bearer " .. r[3], ["Content-Type"] = "application/json"}}
  return wrk.format(r[1], r[2], headers, r[4])
end
"""


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def run_wrk(
    wrk: str, base: str, requests: list[Request], seconds: float, workdir: Path
) -> dict[str, Any]:
    script = workdir / f"wrk-{secrets.token_hex(3)}.lua"
    script.write_text(lua_script(requests))
    duration = f"-d{max(1, round(seconds))}s"
    args = ["-t2", f"-c{CONNECTIONS}", duration, "--latency", "--timeout", "10s"]
    output = subprocess.run(
        [wrk, *args, "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50 and p99 (ms) and non-2xx answers from ``wrk --latency``'s report."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if rps is None or p99 is None or p50 is None:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    return {
        "value": float(rps.group(1)),
        "p99_ms": float(p99.group(1)) * UNITS[p99.group(2)],
        "p50_ms": float(p50.group(1)) * UNITS[p50.group(2)],
        "errors": (int(errors.group(1)) if errors else 0)
        + (sum(int(n) for n in sockets.groups()) if sockets else 0),
    }


@dataclass(frozen=True)
class LoadJob:
    base: str
    requests: list[Request]
    seconds: float


def _python_load(ready: Ready, job: LoadJob) -> tuple[list[float], int, float]:
    """One keep-alive client per process (threads would share one GIL), closed loop."""
    with httpx.Client(base_url=job.base, timeout=10) as client:
        ready()
        latencies, errors, n = [], 0, 0
        started = time.perf_counter()
        while time.perf_counter() - started < job.seconds:
            r = job.requests[n % len(job.requests)]
            n += 1
            sent = time.perf_counter()
            response = client.request(
                r.method,
                r.path,
                content=r.body,
                headers={"Authorization": f"Bearer {r.token}", "Content-Type": "application/json"},
            )
            latencies.append(time.perf_counter() - sent)
            errors += not response.is_success
        return latencies, errors, time.perf_counter() - started


def run_python(base: str, requests: list[Request], seconds: float) -> dict[str, Any]:
    jobs = [LoadJob(base, requests[n::PY_CLIENTS] or requests, seconds) for n in range(PY_CLIENTS)]
    results = run_parallel(_python_load, jobs)
    latencies = [x for lat, _, _ in results for x in lat]
    return {
        "value": len(latencies) / max(s for _, _, s in results),
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "errors": sum(e for _, e, _ in results),
    }


def http_figures(database_url: str, seconds: float, workdir: Path) -> dict[str, dict[str, Any]]:
    token = secrets.token_urlsafe(24)
    wrk = shutil.which("wrk")
    with running_server(database_url, token, workdir / "server.log") as (base, starts):
        commands, queries = populate(base, token)
        out = {}
        for name, requests in (("http_command", commands), ("http_query", queries)):
            if wrk is not None:
                result = run_wrk(wrk, base, requests, seconds, workdir)
                result["connections"] = CONNECTIONS
                result["tool"] = "wrk -t2 -c16"
            else:
                result = run_python(base, requests, seconds)
                result["connections"] = PY_CLIENTS
                result["tool"] = f"python httpx, {PY_CLIENTS} processes (wrk not installed)"
            result["server_starts"] = starts
            out[name] = result
    return out
