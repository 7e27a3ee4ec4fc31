"""A throwaway PostgreSQL cluster that may be stopped and started at will.

The recipe is ``scripts/lib/postgres.sh``'s (``coop_pg_start_throwaway``): initdb with
trust auth, 127.0.0.1 only, data and socket in a short ``/tmp`` directory owned by a
non-root user (``postgres`` when it exists, else ``nobody``), the first free port from
55432. It is written again here because the shell helper removes its cluster in an EXIT
trap, which ``exec`` (``scripts/soak``) and pytest would lose, and because the soak run
restarts the cluster, which needs its data directory and owner.

Durability: ``fsync`` is off (a crashed server process, not a crashed machine, is what
this module simulates), but ``synchronous_commit`` stays on. With postgres.sh's
``synchronous_commit=off``, an ``immediate`` stop loses commits that were already
acknowledged: a restart test would then measure the configuration, not the service.
This module never touches any other server (the shared one at 5432 included).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

SERVER_OPTS = "-c fsync=off -c full_page_writes=off -c max_connections=200"


def find_bindir() -> Path:
    """The newest PostgreSQL server binaries (COOP_PG_BINDIR first), as postgres.sh finds them."""
    configured = os.environ.get("COOP_PG_BINDIR")
    candidates = [configured] if configured else glob.glob("/usr/lib/postgresql/*/bin")
    found = [Path(c) for c in candidates if (Path(c) / "initdb").exists()]
    found.sort(key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")])
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found")


def owner() -> str:
    """Who runs the server: PostgreSQL refuses root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    configured = os.environ.get("COOP_PG_OWNER")
    if configured:
        return configured
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"
    return "postgres"


def free_port(start: int = 55432) -> int:
    for port in range(start, start + 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {start}..{start + 199}")


class Cluster:
    """One throwaway cluster: ``start()``, ``stop()``, ``restart()``, ``remove()``."""

    def __init__(self, port_start: int = 55432) -> None:
        self.bindir = find_bindir()
        self.user = owner()
        self.dir = Path(tempfile.mkdtemp(prefix="coop-soak-pg.", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port(port_start)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, self.user)
        self._run(
            "initdb",
            *("-D", str(self.data), "--username=postgres", "--auth=trust"),
            *("--encoding=UTF8", "--no-locale", "--no-sync"),
        )
        (self.dir / "socket").mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir / "socket", self.user)

    def _as_owner(self, *argv: str) -> list[str]:
        if os.geteuid() != 0:
            return list(argv)
        return ["runuser", "-u", self.user, "--", *argv]

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = self._as_owner(str(self.bindir / tool), *args)
        result = subprocess.run(
            argv, cwd=self.dir, capture_output=True, text=True, check=False, timeout=120
        )
        if check and result.returncode != 0:
            log = self.dir / "server.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{result.stderr}\n{tail}")
        return result

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir / 'socket'}"
        opts += " " + SERVER_OPTS
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", opts, "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """``fast`` rolls back open transactions and checkpoints; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, pause: float, mode: str = "fast") -> None:
        self.stop(mode)
        time.sleep(pause)
        self.start()

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def remove(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A started cluster, stopped and removed afterwards whatever happens."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
