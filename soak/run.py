"""One soak run: a throwaway cluster, the service on it, the load, the faults, the checks."""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from ledger.application import Ledger
from ledger.storage import StoreConfig
from soak.check import check
from soak.cluster import Cluster
from soak.converge import mismatches, wait_caught_up
from soak.faults import Faults, Plan
from soak.load import Load, LoadConfig, mixed
from soak.report import passed, summarize
from soak.scenario import Coop, found
from soak.service import Service, free_port

ADMIN_TOKEN = "soak-facilitator-token"


@dataclass(frozen=True)
class Options:
    duration_s: float
    kills: int
    db_restarts: int
    kill_in_outage: int
    clients: int = 16
    cooperatives: int = 3
    pool: int = 26
    workers: int = 2
    seed: int = 20261127
    timeout_s: float = 15.0
    retry_within_s: float = 45.0
    grace_s: float = 20.0  # after the faults, for commands still being retried
    keep_logs: bool = False
    outage_s: float | None = None  # every plain restart's pause (default: 1 to 4 s)

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        base: dict[str, Any] = dict(duration_s=40, kills=10, db_restarts=2, kill_in_outage=0)
        base.update(retry_within_s=20.0, grace_s=8.0)
        return cls(**{**base, **overrides})

    @classmethod
    def full(cls, **overrides: Any) -> Options:
        base: dict[str, Any] = dict(duration_s=240, kills=48, db_restarts=6, kill_in_outage=1)
        return cls(**{**base, "cooperatives": 4, **overrides})


def say(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def setup(service: Service, options: Options) -> tuple[list[Coop], Coop]:
    with httpx.Client(timeout=30) as http:
        coops = [
            found(http, service.base, ADMIN_TOKEN, f"Soak {n}", options.pool)
            for n in range(options.cooperatives)
        ]
        probe = found(http, service.base, ADMIN_TOKEN, "Soak probe", 2)
    return coops, probe


def soak(options: Options) -> dict[str, Any]:
    """Run once; the summary (see soak.report)."""
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="coop-soak-logs."))
    cluster = Cluster()
    service = Service(cluster.url, ADMIN_TOKEN, free_port(), options.workers, logs / "serve.log")
    ok = False
    try:
        cluster.start()
        service.start()
        say(f"service on {service.base} (PostgreSQL {cluster.url}, {options.workers} workers)")
        coops, probe = setup(service, options)
        run_id = f"soak{options.seed}"
        config = LoadConfig(
            clients=options.clients,
            duration_s=options.duration_s,
            seed=options.seed,
            timeout_s=options.timeout_s,
            run_id=run_id,
            retry_within_s=options.retry_within_s,
        )
        load = Load(service.base, coops, mixed(coops), config)
        plan = Plan(options.duration_s, options.kills, options.db_restarts, options.kill_in_outage)
        if options.outage_s is not None:
            plan = replace(plan, pause_s=(options.outage_s, options.outage_s))
        rng = random.Random(options.seed)
        faults = Faults(service, cluster, plan, rng, probe, run_id=run_id)
        say(f"{options.clients} clients for {options.duration_s:g} s with faults")
        faults.start()
        load.start()
        time.sleep(options.duration_s)
        faults.finish()
        # Commands still being retried get a grace period now that all is up, then stop.
        finished = load.join(timeout=options.grace_s)
        load.stop.set()
        load.join()
        say("load done; checking the store")
        summary = verify(cluster.url, load, faults, run_id)
        write_trace(logs / "trace.jsonl", load, faults, started)
        (logs / "driver-errors.txt").write_text("\n".join(load.errors + faults.errors))
        summary["clients_finished_in_time"] = finished
        summary["client_errors"] = len(load.errors)
        summary["duration_s"] = round(time.monotonic() - started, 1)
        for error in (load.errors + faults.errors)[:5]:
            say(f"driver error: {error.strip().splitlines()[-1]}")
        ok = passed(summary)
        return summary
    finally:
        service.stop()
        cluster.remove()
        if ok and not options.keep_logs:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            say(f"logs kept in {logs}")


def write_trace(path: Path, load: Load, faults: Faults, t0: float) -> None:
    """Every attempt, kill and outage, with times relative to the start, for a post-mortem."""
    with path.open("w") as out:
        for at, target, pid in faults.kills:
            out.write(json.dumps({"kill": target, "pid": pid, "at": round(at - t0, 3)}) + "\n")
        for o in faults.outages:
            up = None if o.up_at is None else round(o.up_at - t0, 3)
            row = {"outage": o.kind, "mode": o.mode, "down": round(o.down_at - t0, 3), "up": up}
            out.write(json.dumps(row) + "\n")
        for down, back in faults.service_down:
            back_at = None if back is None else round(back - t0, 3)
            out.write(json.dumps({"service_down": round(down - t0, 3), "back": back_at}) + "\n")
        for s in load.journal.samples + faults.journal.samples:
            row = {**asdict(s), "start": round(s.start - t0, 3), "end": round(s.end - t0, 3)}
            out.write(json.dumps(row) + "\n")
        for marker, why in {**load.journal.abandoned, **faults.journal.abandoned}.items():
            out.write(json.dumps({"abandoned": marker, "why": why}) + "\n")


def verify(url: str, load: Load, faults: Faults, run_id: str) -> dict[str, Any]:
    ledger = Ledger(StoreConfig.from_url(url))
    try:
        caught_up, waited = wait_caught_up(ledger, timeout_s=60)
        acks = load.journal.acks + faults.journal.acks
        abandoned = {**load.journal.abandoned, **faults.journal.abandoned}
        findings = check(ledger, acks, abandoned, run_id)
        differing = mismatches(ledger)
    finally:
        ledger.close()
    for line in (findings.lost + findings.duplicates + findings.rule_violations)[:10]:
        say(f"finding: {line}")
    for line in findings.half_written[:10] + differing:
        say(f"finding: {line}")
    extra = {"projections_caught_up": caught_up, "projections_caught_up_s": round(waited, 2)}
    return summarize(load.journal, faults, findings, differing, extra)
