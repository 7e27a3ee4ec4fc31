"""N concurrent HTTP clients, each a thread with its own connections, mixing commands.

Every attempt opens a fresh connection (no keep-alive), so the kernel spreads them over
the workers and a connection broken by a killed worker is one attempt, not a stale pool.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from soak.journal import Journal, Sample, error_code, execute
from soak.scenario import Coop, learn, pick

Assign = Callable[[int, random.Random], Coop]


@dataclass
class LoadConfig:
    clients: int = 16
    duration_s: float | None = None  # run until then (or until stopped) ...
    commands_per_client: int | None = None  # ... or this many commands each
    seed: int = 1
    timeout_s: float = 15.0
    read_share: float = 0.05  # reads with min_position, to exercise read-your-writes
    run_id: str = "soak"
    retry_within_s: float = 60.0  # how long one command is retried (503, broken connection)


@dataclass
class Load:
    base: str
    coops: list[Coop]
    assign: Assign
    config: LoadConfig
    journal: Journal = field(default_factory=Journal)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.config.clients):
            thread = threading.Thread(target=self._client, args=(n,), name=f"client-{n}")
            thread.start()
            self.threads.append(thread)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the clients; True when all have finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(t.is_alive() for t in self.threads)

    def run(self) -> Journal:
        self.start()
        self.join()
        return self.journal

    def _client(self, n: int) -> None:
        rng = random.Random(f"{self.config.seed}-{n}")
        limits = httpx.Limits(max_keepalive_connections=0)
        started = time.monotonic()
        with httpx.Client(timeout=self.config.timeout_s, limits=limits) as http:
            seq = 0
            while not self.stop.is_set():
                if self._done(seq, started):
                    return
                seq += 1
                coop = self.assign(n, rng)
                try:
                    if rng.random() < self.config.read_share:
                        self._read(http, coop, rng)
                        continue
                    marker = f"{self.config.run_id}-c{n}-{seq}"
                    command = pick(coop, rng, marker)
                    response = execute(
                        http,
                        self.base,
                        self.journal,
                        command,
                        rng,
                        retry_within_s=self.config.retry_within_s,
                        stop=self.stop,
                    )
                    learn(coop, command, response)
                except Exception:
                    self.errors.append(traceback.format_exc())
                    time.sleep(0.1)

    def _done(self, seq: int, started: float) -> bool:
        config = self.config
        if config.commands_per_client is not None and seq >= config.commands_per_client:
            return True
        return config.duration_s is not None and time.monotonic() - started >= config.duration_s

    def _read(self, http: httpx.Client, coop: Coop, rng: random.Random) -> None:
        with self.journal.lock:
            positions = [a.position for a in self.journal.acks[-50:]]
        wait = f"?min_position={max(positions)}" if positions and rng.random() < 0.5 else ""
        headers = {"Authorization": f"Bearer {coop.mentor.token}"}
        start = time.monotonic()
        try:
            response = http.get(f"{self.base}/cooperatives/{coop.id}/roster{wait}", headers=headers)
        except httpx.TimeoutException:
            self.journal.sample(Sample("read", start, time.monotonic(), None, "timeout"))
            return
        except httpx.TransportError as error:
            kind = type(error).__name__
            self.journal.sample(Sample("read", start, time.monotonic(), None, kind))
            return
        code = "" if response.is_success else error_code(response)
        retry_after = "retry-after" in response.headers
        status = response.status_code
        self.journal.sample(
            Sample("read", start, time.monotonic(), status, None, retry_after, code)
        )


def same_cooperative(coops: list[Coop]) -> Assign:
    return lambda _n, _rng: coops[0]


def own_cooperative(coops: list[Coop]) -> Assign:
    return lambda n, _rng: coops[n % len(coops)]


def mixed(coops: list[Coop], hot_share: float = 0.5) -> Assign:
    """Half the commands go to the first (hot) cooperative, the rest anywhere."""
    return lambda _n, rng: coops[0] if rng.random() < hot_share else rng.choice(coops)
