"""The figures of a run: what was sent and acknowledged, what the faults did, what broke."""

from __future__ import annotations

from collections import Counter
from typing import Any

from soak.check import Findings
from soak.faults import Faults, Outage
from soak.journal import Journal, Sample


def status_key(sample: Sample) -> str:
    return str(sample.status) if sample.status is not None else (sample.error or "no_answer")


def explained(sample: Sample, faults: Faults) -> bool:
    """A missing answer that a kill or a dead service accounts for."""
    if sample.status is not None or sample.error == "timeout":
        return False
    if any(sample.start - 0.05 <= at <= sample.end + 0.05 for at, _, _ in faults.kills):
        return True
    # The death is noticed when the uvicorn parent has exited, which takes a few seconds of
    # graceful shutdown after its listening socket is gone: count from 5 s before.
    return any(
        down - 5.0 <= sample.end and (up is None or sample.start <= up + 0.5)
        for down, up in faults.service_down
    )


def bad_answer(sample: Sample) -> bool:
    """A server error that is not a proper 'try again later' (503 with Retry-After)."""
    if sample.status is None or sample.status < 500:
        return False
    return not (sample.status == 503 and sample.retry_after)


def in_outage(sample: Sample, outage: Outage) -> bool:
    up = outage.up_at if outage.up_at is not None else float("inf")
    return outage.down_at <= sample.end <= up


def recovery(outage: Outage, samples: list[Sample]) -> float | None:
    """Seconds from the database answering again to the first 2xx after it."""
    if outage.up_at is None:
        return None
    up = outage.up_at
    ends = [s.end for s in samples if s.status is not None and s.status < 300 and s.end >= up]
    return round(min(ends) - up, 3) if ends else None


def outage_figures(faults: Faults, samples: list[Sample]) -> dict[str, Any]:
    """Answers that arrived while the database was down; a violation is anything but a
    proper answer (a 2xx, a 4xx, a 503 with Retry-After) or a missing one a kill explains."""
    seen: Counter[str] = Counter()
    violations = dead = 0
    slowest_503 = 0.0
    for sample in samples:
        if not any(in_outage(sample, o) for o in faults.outages):
            continue
        seen[status_key(sample)] += 1
        if sample.status is None and sample.error != "timeout" and explained(sample, faults):
            dead += 1 if not _killed_during(sample, faults) else 0
        elif sample.status is None or bad_answer(sample):
            violations += 1
    for sample in samples:
        if sample.status == 503:
            slowest_503 = max(slowest_503, sample.end - sample.start)
    return {
        "answers": sum(seen.values()),
        "status_codes": dict(sorted(seen.items())),
        "violations": violations,
        "no_answer_service_dead": dead,
        "max_503_latency_s": round(slowest_503, 3),
    }


def _killed_during(sample: Sample, faults: Faults) -> bool:
    return any(sample.start - 0.05 <= at <= sample.end + 0.05 for at, _, _ in faults.kills)


def summarize(
    load: Journal,
    faults: Faults,
    findings: Findings,
    mismatches: list[str],
    extra: dict[str, Any],
) -> dict[str, Any]:
    probe = faults.journal
    samples = load.samples + probe.samples
    plain = [o for o in faults.outages if o.kind == "restart_db"]
    with_kill = [o for o in faults.outages if o.kind != "restart_db"]
    recoveries = [recovery(o, probe.samples) for o in plain]
    recoveries_with_kill = [recovery(o, probe.samples) for o in with_kill]
    missing_answers = [s for s in samples if s.status is None]
    abandoned = {**load.abandoned, **probe.abandoned}
    return {
        "sent": load.sent + probe.sent,
        "acknowledged": len(load.acks) + len(probe.acks),
        "lost": len(findings.lost),
        "duplicates": len(findings.duplicates),
        "rule_violations": len(findings.rule_violations),
        "projection_mismatches": len(mismatches),
        "kills": len(faults.kills),
        "db_restarts": sum(1 for o in faults.outages if o.up_at is not None),
        "max_recovery_s": _worst(recoveries),
        "db_restarts_unrecovered": sum(1 for r in recoveries + recoveries_with_kill if r is None),
        "half_written": len(findings.half_written),
        "kills_worker": sum(1 for _, t, _ in faults.kills if t == "worker"),
        "kills_projector": sum(1 for _, t, _ in faults.kills if t == "projector"),
        "recoveries_s": recoveries,
        "db_restarts_with_worker_kill": len(with_kill),
        "max_recovery_with_worker_kill_s": _worst(recoveries_with_kill),
        "service_deaths": len(faults.service_down),
        "status_codes": dict(sorted(Counter(status_key(s) for s in samples).items())),
        "http_500": sum(1 for s in samples if bad_answer(s)),
        "client_timeouts": sum(1 for s in samples if s.error == "timeout"),
        "unexplained_no_answer": sum(1 for s in missing_answers if not explained(s, faults)),
        "outage": outage_figures(faults, samples),
        "abandoned": dict(Counter(abandoned.values())),
        "unacknowledged_but_stored": findings.unacknowledged_but_stored,
        "replayed_acks": sum(1 for a in load.acks + probe.acks if a.replayed),
        "events_stored": findings.events,
        "driver_errors": len(faults.errors),
        **extra,
    }


def _worst(values: list[float | None]) -> float | None:
    """The largest measured recovery (None: nothing measured; see db_restarts_unrecovered)."""
    measured = [v for v in values if v is not None]
    return max(measured) if measured else None


def passed(summary: dict[str, Any]) -> bool:
    zero = (
        "lost",
        "duplicates",
        "rule_violations",
        "projection_mismatches",
        "half_written",
        "http_500",
    )
    healthy = summary["service_deaths"] == 0 and summary["db_restarts_unrecovered"] == 0
    return all(summary[k] == 0 for k in zero) and summary["outage"]["violations"] == 0 and healthy
