"""The service under soak: ``coop-ledger serve`` in PostgreSQL mode, as an operator runs it.

``serve`` starts a uvicorn supervisor with several workers and one ``coop-ledger project``
process. uvicorn 0.54 restarts a worker that dies (``Multiprocess.keep_subprocess_alive``
checks every 0.5 s), so SIGKILL on a worker is survivable as shipped. Nobody restarts the
projection process: ``serve`` only terminates it on the way out. The soak driver therefore
plays the missing supervisor: when no projection process is alive it starts one of its
own (``coop-ledger project``) after a short pause, and kills whichever one is current.

If the whole ``serve`` process exits (uvicorn stops the parent when a replacement worker
fails its startup, which happens when a worker is killed while the database is down), the
driver records the death and starts ``serve`` again on the same port once the database
answers: the run goes on and the report says how often the service died.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live children of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) != pid or fields[0] == "Z":
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        found.append((int(entry), cmdline))
    return found


def is_worker(cmdline: str) -> bool:
    return "multiprocessing.spawn" in cmdline


def is_projector(cmdline: str) -> bool:
    return "ledger.cli project" in cmdline


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service exited early (code {process.returncode})")
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answered at {url} within {timeout:g} s")
        time.sleep(0.1)


@dataclass
class Service:
    """``coop-ledger serve`` plus the projection process the driver keeps alive."""

    database_url: str
    admin_token: str
    port: int
    workers: int = 2
    log_path: Path = Path(os.devnull)
    process: subprocess.Popen[bytes] | None = None
    own_projector: subprocess.Popen[bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COOP_LEDGER_DATABASE_URL": self.database_url,
            "COOP_LEDGER_ADMIN_TOKEN": self.admin_token,
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, timeout: float = 60) -> None:
        argv = [PYTHON, "-m", "ledger.cli", "serve", "--port", str(self.port)]
        argv += ["--workers", str(self.workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for_http(f"http://127.0.0.1:{self.port}/openapi.json", timeout, self.process)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def workers_now(self) -> list[int]:
        if not self.alive() or self.process is None:
            return []
        return [pid for pid, cmd in children(self.process.pid) if is_worker(cmd)]

    def projectors_now(self) -> list[int]:
        found = []
        if self.alive() and self.process is not None:
            found = [pid for pid, cmd in children(self.process.pid) if is_projector(cmd)]
        own = self.own_projector
        if own is not None and own.poll() is None:
            found.append(own.pid)
        return found

    def start_projector(self) -> None:
        """A ``coop-ledger project`` process of the driver's own (the one serve lacks)."""
        with self.lock:
            if self.own_projector is not None and self.own_projector.poll() is None:
                return
            with open(self.log_path, "ab") as log:
                self.own_projector = subprocess.Popen(
                    [PYTHON, "-m", "ledger.cli", "project"],
                    env={**self.env(), "COOP_LEDGER_PROJECTIONS": "external"},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def stop(self) -> None:
        for process in (self.process, self.own_projector):
            if process is None or process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        # Workers or projectors left behind by a serve that died are in its process group.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
