"""Faults at random moments: SIGKILL a worker or the projection process, restart PostgreSQL.

Three threads:

* the injector follows a plan drawn from the seed: kills at random offsets, database
  restarts spread over the run (``pg_ctl stop`` fast or immediate, a pause, ``start``);
  some restarts also kill a worker while the database is down (``kill_in_outage``);
* the supervisor does what an init system would: it starts ``serve`` again when it
  died (once the database answers) and a projection process when none is alive;
* the probe sends one small command every 0.25 s (at most 8 in flight), so the time
  from "database back" to "first 2xx" is measured without waiting on the load's backoff.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import httpx

from soak.cluster import Cluster
from soak.journal import Journal, execute
from soak.scenario import Coop, take_work
from soak.service import Service


@dataclass(frozen=True)
class Plan:
    duration_s: float
    kills: int
    db_restarts: int
    kill_in_outage: int = 0  # how many of the restarts also kill a worker while down
    pause_s: tuple[float, float] = (1.0, 4.0)
    # Long enough for the replacement worker's startup to fail on the missing database.
    long_pause_s: tuple[float, float] = (9.0, 11.0)

    def draw(self, rng: random.Random) -> list[tuple[float, str]]:
        """(offset, action) in time order; actions: kill_worker, kill_projector, restart_db."""
        margin = min(3.0, self.duration_s / 10)
        steps = [
            (rng.uniform(margin, self.duration_s - margin), rng.choice(KILLS))
            for _ in range(self.kills)
        ]
        # Restarts spread over the first 75 %, so the last recovery is seen before the end.
        span = 0.75 * self.duration_s / (self.db_restarts + 1)
        for n in range(self.db_restarts):
            last = n >= self.db_restarts - self.kill_in_outage  # after the plain ones
            action = "restart_db+kill" if last else "restart_db"
            steps.append((span * (n + 1) + rng.uniform(-span / 5, span / 5), action))
        return sorted(steps)


KILLS = ("kill_worker", "kill_worker", "kill_projector")


@dataclass
class Outage:
    kind: str  # "restart_db" or "restart_db+kill"
    down_at: float
    up_at: float | None = None
    mode: str = "fast"


@dataclass
class Faults:
    service: Service
    cluster: Cluster
    plan: Plan
    rng: random.Random
    probe_coop: Coop
    run_id: str = "soak"
    journal: Journal = field(default_factory=Journal)
    kills: list[tuple[float, str, int]] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    service_down: list[tuple[float, float | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_injecting: threading.Event = field(default_factory=threading.Event)
    db_up: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Random kills wait while the database is down and for a while after it is back, so a
    # recovery time measures the restart alone (restart_db+kill adds its one kill on purpose).
    quiet_until: float = 0.0

    def start(self) -> None:
        self.db_up.set()
        for target in (self._inject, self._supervise, self._probe):
            thread = threading.Thread(target=target, name=target.__name__, daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self, recovery_timeout_s: float = 60) -> None:
        """Stop injecting, see the service answer 2xx again, then stop supervising.

        Leaves the database up, the service and a projection process running.
        """
        self.stop_injecting.set()
        self.threads[0].join(timeout=120)
        if not self.cluster.is_running():
            self.cluster.start()
        self.db_up.set()
        last_up = max((o.up_at or 0.0 for o in self.outages), default=0.0)
        deadline = time.monotonic() + recovery_timeout_s
        while time.monotonic() < deadline and not self._answered_after(last_up):
            time.sleep(0.1)
        self.stop.set()
        for thread in self.threads[1:]:
            thread.join(timeout=60)
        self._keep_alive(time.monotonic())
        if not self.service.projectors_now():
            self.service.start_projector()

    def _answered_after(self, moment: float) -> bool:
        with self.journal.lock:
            return any(
                s.status is not None and s.status < 300 and s.end >= moment
                for s in self.journal.samples[-50:]
            )

    # ---- the injector ---------------------------------------------------------------

    def _inject(self) -> None:
        started = time.monotonic()
        restarts: list[threading.Thread] = []
        for offset, action in self.plan.draw(self.rng):
            if self.stop_injecting.wait(max(0.0, started + offset - time.monotonic())):
                break
            if action.startswith("restart_db"):
                thread = threading.Thread(target=self._restart_db, args=(action,), daemon=True)
                thread.start()
                restarts.append(thread)
            else:
                while time.monotonic() < self.quiet_until and not self.stop_injecting.is_set():
                    time.sleep(0.1)
                self.kill(action.removeprefix("kill_"))
                time.sleep(0.3)  # postponed kills do not all land in the same instant
        for thread in restarts:
            thread.join()

    def kill(self, target: str) -> bool:
        """SIGKILL one worker or projection process (waiting up to 3 s for one to exist)."""
        deadline = time.monotonic() + 3.0
        while True:
            service = self.service
            pids = service.workers_now() if target == "worker" else service.projectors_now()
            pids = [p for p in pids if p not in {pid for _, _, pid in self.kills}]
            if pids or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not pids:
            return False
        pid = self.rng.choice(pids)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.kills.append((time.monotonic(), target, pid))
        return True

    def _restart_db(self, kind: str) -> None:
        mode = self.rng.choice(["fast", "immediate"])
        try:
            self.quiet_until = float("inf")
            outage = Outage(kind, time.monotonic(), mode=mode)
            self.db_up.clear()
            self.cluster.stop(mode)
            self.outages.append(outage)
            if kind.endswith("+kill"):
                pause = self.rng.uniform(*self.plan.long_pause_s)
                time.sleep(1.0)
                self.kill("worker")
                time.sleep(pause - 1.0)
            else:
                time.sleep(self.rng.uniform(*self.plan.pause_s))
            self.cluster.start()
            outage.up_at = time.monotonic()
            self.db_up.set()
            self.quiet_until = outage.up_at + 4.0
        except Exception as error:
            self.errors.append(f"database restart: {error}")

    # ---- the supervisor -------------------------------------------------------------

    def _supervise(self) -> None:
        no_projector_since: float | None = None
        while not self.stop.wait(0.2):
            now = time.monotonic()
            try:
                self._keep_alive(now)
                if self.service.projectors_now():
                    no_projector_since = None
                elif no_projector_since is None:
                    no_projector_since = now
                elif now - no_projector_since > self.rng.uniform(0.5, 2.0):
                    self.service.start_projector()
                    no_projector_since = None
            except Exception as error:
                self.errors.append(f"supervisor: {error}")

    def _keep_alive(self, now: float) -> None:
        if self.service.alive():
            return
        if not self.service_down or self.service_down[-1][1] is not None:
            self.service_down.append((now, None))
        if self.db_up.is_set():
            self.service.start()
            self.service_down[-1] = (self.service_down[-1][0], time.monotonic())

    # ---- the probe ------------------------------------------------------------------

    def _probe(self) -> None:
        in_flight = threading.Semaphore(8)
        seq = 0
        while not self.stop.wait(0.25):
            if not in_flight.acquire(blocking=False):
                continue
            seq += 1
            threading.Thread(target=self._one_probe, args=(seq, in_flight), daemon=True).start()

    def _one_probe(self, seq: int, in_flight: threading.Semaphore) -> None:
        try:
            with self.probe_coop.lock:
                command = take_work(self.probe_coop, self.rng, f"{self.run_id}-probe-{seq}")
            if command is not None:
                with httpx.Client(timeout=30) as http:
                    execute(http, self.service.base, self.journal, command, self.rng, retry=False)
        except Exception as error:
            self.errors.append(f"probe: {error}")
        finally:
            in_flight.release()
