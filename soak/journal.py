"""What the clients saw: every HTTP attempt, every acknowledged command, every give-up.

A command is sent with an ``Idempotency-Key`` and a ``reason`` that are both its unique
marker. After a 503, a ``409 request_in_progress`` or a broken connection it is sent again,
unchanged, so the service may replay it but must never run it twice; the marker is how
the checks find its event in the store. A command counts as acknowledged when a 2xx
answer carrying its recorded events arrived (a replay included); a ``409
request_outcome_unknown`` (its save may have landed) counts as abandoned.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_WITHIN_S = 60.0  # how long one command keeps being retried
MAX_ATTEMPTS = 40


@dataclass(frozen=True)
class Command:
    op: str
    marker: str
    method: str
    path: str
    token: str
    body: dict[str, Any] | None = None
    cooperative_id: str = ""
    target: str = ""  # the person, proposal or work the command is about
    who: str = ""  # the acting person's id ("" for the mentor)


@dataclass(frozen=True)
class Sample:
    """One HTTP attempt: when, how it ended (``status`` None: no answer) and its headers."""

    op: str
    start: float
    end: float
    status: int | None
    error: str | None = None
    retry_after: bool = False
    code: str | None = None
    marker: str = ""


@dataclass(frozen=True)
class Ack:
    """An acknowledged command: what the service said it recorded."""

    op: str
    marker: str
    cooperative_id: str
    version: int
    position: int
    events: tuple[tuple[str, int, str, int], ...]
    replayed: bool


@dataclass
class Journal:
    samples: list[Sample] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    abandoned: dict[str, str] = field(default_factory=dict)  # marker -> why
    refused: Counter[str] = field(default_factory=Counter)  # "op:code"
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sample(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def count_sent(self) -> None:
        with self.lock:
            self.sent += 1

    def ack(self, command: Command, body: dict[str, Any], replayed: bool) -> Ack:
        events = tuple(
            (str(e["cooperative_id"]), int(e["version"]), str(e["name"]), int(e["position"]))
            for e in body["events"]
        )
        ack = Ack(
            command.op,
            command.marker,
            str(body["cooperative_id"]),
            int(body["version"]),
            int(body["position"]),
            events,
            replayed,
        )
        with self.lock:
            self.acks.append(ack)
        return ack

    def refuse(self, command: Command, code: str) -> None:
        with self.lock:
            self.refused[f"{command.op}:{code}"] += 1

    def abandon(self, command: Command, why: str) -> None:
        with self.lock:
            self.abandoned[command.marker] = why


def error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "not_json"
    return str(body.get("error", "")) if isinstance(body, dict) else "not_json"


def retryable(response: httpx.Response, code: str) -> bool:
    return response.status_code == 503 or (
        response.status_code == 409 and code == "request_in_progress"
    )


def execute(
    http: httpx.Client,
    base: str,
    journal: Journal,
    command: Command,
    rng: random.Random,
    *,
    retry: bool = True,
    retry_within_s: float = RETRY_WITHIN_S,
    stop: threading.Event | None = None,
) -> httpx.Response | None:
    """Send ``command`` until it is answered for good; the final answer (None: gave up)."""
    journal.count_sent()
    headers = {"Authorization": f"Bearer {command.token}", "Idempotency-Key": command.marker}
    first, attempts, why, m = time.monotonic(), 0, "", command.marker
    while True:
        attempts += 1
        start = time.monotonic()
        try:
            response = http.request(
                command.method, base + command.path, json=command.body, headers=headers
            )
        except httpx.TimeoutException:
            journal.sample(Sample(command.op, start, time.monotonic(), None, "timeout", marker=m))
            why, wait = "timeout", 1.0
        except httpx.TransportError as error:
            kind = type(error).__name__
            journal.sample(Sample(command.op, start, time.monotonic(), None, kind, marker=m))
            why, wait = "no_answer", 0.3
        else:
            code = "" if response.is_success else error_code(response)
            has_retry_after = "retry-after" in response.headers
            end = time.monotonic()
            status = response.status_code
            journal.sample(Sample(command.op, start, end, status, None, has_retry_after, code, m))
            if response.is_success:
                replayed = response.headers.get("idempotent-replayed") == "true"
                journal.ack(command, response.json(), replayed)
                return response
            if code == "request_outcome_unknown":
                # Neither acknowledged nor refused: the checks look for it in the store.
                journal.abandon(command, code)
                return response
            if not retryable(response, code):
                journal.refuse(command, f"{response.status_code}_{code}")
                return response
            why = code
            wait = _retry_after(response)
        if (
            not retry
            or attempts >= MAX_ATTEMPTS
            or time.monotonic() - first > retry_within_s
            or (stop is not None and stop.is_set())
        ):
            journal.abandon(command, why)
            return None
        time.sleep(min(wait, 2.0) * rng.uniform(0.5, 1.0))


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0
