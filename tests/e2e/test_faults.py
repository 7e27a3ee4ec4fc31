"""Crashes and database restarts under load, on PostgreSQL (short versions of scripts/soak).

The service is ``coop-ledger serve`` with two uvicorn workers and its projection process,
on a throwaway cluster of its own (``soak.cluster``: never the shared server, which
other tests use). uvicorn restarts a killed worker; the driver (``soak.faults``) restarts
a killed projection process, which ``serve`` does not do. Clients retry after a 503 or a
broken connection with the same Idempotency-Key; afterwards the store is checked.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from ledger.application import Ledger
from ledger.loadgen import long_history
from ledger.storage import StoreConfig
from projections.framework import Context
from projections.roster import Roster
from projections.runner import ProjectionRunner
from soak.cluster import Cluster, throwaway_cluster
from soak.faults import Faults, Plan
from soak.load import Load, LoadConfig, mixed
from soak.run import ADMIN_TOKEN, verify
from soak.scenario import Coop, found
from soak.service import Service, free_port

CLIENT_TIMEOUT_S = 15.0
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Rig:
    cluster: Cluster
    service: Service
    coops: list[Coop]
    probe: Coop

    def ensure_up(self) -> None:
        """The database up, serve running (a test may have left it dead) and a projector."""
        if not self.cluster.is_running():
            self.cluster.start()
        if not self.service.alive():
            self.service.start()
        if not self.service.projectors_now():
            self.service.start_projector()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    log = tmp_path_factory.mktemp("faults") / "serve.log"
    with throwaway_cluster() as cluster:
        service = Service(cluster.url, ADMIN_TOKEN, free_port(), 2, log)
        service.start()
        try:
            with httpx.Client(timeout=30) as http:
                coops = [found(http, service.base, ADMIN_TOKEN, f"F{n}", 24) for n in range(2)]
                probe = found(http, service.base, ADMIN_TOKEN, "F probe", 2)
            yield Rig(cluster, service, coops, probe)
        finally:
            service.stop()


def run(rig: Rig, plan: Plan, seed: int) -> dict[str, Any]:
    """The load for ``plan.duration_s`` with the plan's faults; the soak's summary."""
    rig.ensure_up()
    run_id = f"faults{seed}"
    config = LoadConfig(
        clients=12,
        duration_s=plan.duration_s,
        seed=seed,
        timeout_s=CLIENT_TIMEOUT_S,
        run_id=run_id,
        retry_within_s=10,
    )
    load = Load(rig.service.base, rig.coops, mixed(rig.coops), config)
    faults = Faults(rig.service, rig.cluster, plan, random.Random(seed), rig.probe, run_id=run_id)
    faults.start()
    load.start()
    time.sleep(plan.duration_s)
    faults.finish(recovery_timeout_s=30)
    load.join(timeout=12)
    load.stop.set()
    load.join()
    assert not load.errors, load.errors[0]
    return verify(rig.cluster.url, load, faults, run_id)


def assert_nothing_lost_and_converged(summary: dict[str, Any]) -> None:
    assert summary["acknowledged"], "some commands were acknowledged"
    for key in ("lost", "duplicates", "half_written", "rule_violations"):
        assert summary[key] == 0, f"{key}: {summary}"
    assert summary["projections_caught_up"], f"a projection failed or lags: {summary}"
    assert summary["projection_mismatches"] == 0, summary


def test_sigkill_of_workers_and_the_projection_process_loses_nothing(rig: Rig) -> None:
    summary = run(rig, Plan(duration_s=9, kills=5, db_restarts=0), seed=7)
    assert summary["kills"] >= 4, summary
    assert_nothing_lost_and_converged(summary)


def test_a_database_restart_answers_503_with_retry_after_then_recovers(rig: Rig) -> None:
    """Down for 11 s: longer than the pools wait, so clients see the service's answer."""
    plan = Plan(duration_s=12, kills=0, db_restarts=1, pause_s=(11.0, 11.0))
    summary = run(rig, plan, seed=11)
    outage = summary["outage"]
    assert isinstance(outage, dict)
    assert outage["status_codes"].get("503", 0) > 0, f"503 while down: {outage}"
    assert outage["violations"] == 0, f"only 503 + Retry-After while down: {outage}"
    assert summary["client_timeouts"] == 0, f"answers within {CLIENT_TIMEOUT_S} s: {summary}"
    assert summary["http_500"] == 0, summary
    recovery = summary["max_recovery_s"]
    assert isinstance(recovery, float), summary
    assert recovery <= 5.0, f"2xx again within 5 s of the database: {summary}"
    assert_nothing_lost_and_converged(summary)


def test_a_worker_killed_while_the_database_is_down_does_not_stop_the_service(rig: Rig) -> None:
    """Its replacement cannot open the store; the service must still come back by itself."""
    rig.ensure_up()
    rig.cluster.stop("fast")
    try:
        workers = rig.service.workers_now()
        assert workers
        os.kill(workers[0], signal.SIGKILL)
        time.sleep(7)  # the replacement's startup waits 5 s for a connection, then gives up
    finally:
        rig.cluster.start()
    deadline = time.monotonic() + 10
    answered = False
    while time.monotonic() < deadline and not answered:
        try:
            me = httpx.get(f"{rig.service.base}/people/me", headers=ADMIN, timeout=5)
            answered = me.is_success
        except httpx.HTTPError:
            time.sleep(0.5)
    assert answered, (
        "serve stopped: the replacement worker's lifespan cannot open the store, and uvicorn"
        " stops the whole service when a worker fails its startup"
    )


def test_a_connection_lost_inside_a_projection_handler_is_an_outage_not_a_poison_event(
    rig: Rig,
) -> None:
    """A restart of the database while the projection process is inside a batch: the
    handler's SQL fails because the connection died. The runner must retry the batch
    later, not mark the projection failed (the soak run saw 'projection roster stopped at
    event 212: OperationalError: consuming input failed: server closed the connection
    unexpectedly'), which leaves it stopped until someone rebuilds it."""
    rig.ensure_up()
    ledger = Ledger(StoreConfig.from_url(rig.cluster.url))
    try:
        projection = Roster()
        runner = ProjectionRunner(ledger, [projection])
        long_history(ledger, 60, ledger.register_person("Mo").id, [ledger.register_person("A").id])
        original = projection.apply
        calls = 0

        def flaky(ctx: Context, event: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise psycopg.OperationalError(
                    "consuming input failed: server closed the connection"
                )
            original(ctx, event)

        projection.apply = flaky  # type: ignore[method-assign]
        with contextlib.suppress(psycopg.OperationalError):
            runner.process_batch(projection)
        projection.apply = original  # type: ignore[method-assign]
        (status,) = runner.status([projection.name])
    finally:
        ledger.close()
    assert status.state == "running", f"marked {status.state}: {status.error}"
