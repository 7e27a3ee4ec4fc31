"""The cooperatives under load, and the commands the clients pick for them.

Each cooperative has a mentor (in the mentor year: it admits founding members and
invoices) and a pool of registered people larger than the cap of 20, so admissions race
each other and the members' own admit decisions for the last places. What the clients
know (members, open work, open proposals) is shared per cooperative and learned from the
answers; it is often stale under concurrency, which is the point: the ledger, not the
client, must keep the rules.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from soak.journal import Command

CLIENTS = ("client-a", "client-b", "client-c", "client-d")
FOUNDERS = 12


@dataclass(frozen=True)
class Person:
    id: str
    token: str


@dataclass
class Coop:
    id: str
    mentor: Person
    pool: dict[str, Person]
    members: set[str] = field(default_factory=set)
    work: dict[str, tuple[str, str]] = field(default_factory=dict)  # work id -> (holder, client)
    proposals: dict[str, str] = field(default_factory=dict)  # proposal id -> subject or ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _post(http: httpx.Client, url: str, body: dict[str, Any], admin: str) -> dict[str, Any]:
    """POST as the facilitator; a busy service (503) is asked again a few times."""
    headers = {"Authorization": f"Bearer {admin}"}
    for attempt in range(5):
        response = http.post(url, json=body, headers=headers)
        if response.status_code != 503:
            break
        time.sleep(0.5 * 2**attempt)
    if not response.is_success:
        raise RuntimeError(f"setup failed: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def register(http: httpx.Client, base: str, admin: str, name: str) -> Person:
    body = _post(http, f"{base}/people", {"name": name}, admin)
    return Person(str(body["id"]), str(body["token"]))


def found(http: httpx.Client, base: str, admin: str, name: str, pool_size: int) -> Coop:
    """Register a mentor and ``pool_size`` people; found a cooperative with the first 12."""
    mentor = register(http, base, admin, f"Mentor of {name}")
    pool = [register(http, base, admin, f"{name} person {n}") for n in range(pool_size)]
    founders = pool[: min(FOUNDERS, pool_size)]
    body = {
        "name": name,
        "sector": "cleaning",
        "members": [{"person_id": p.id, "conversation_group": "group 1"} for p in founders],
        "mentor_id": mentor.id,
    }
    created = _post(http, f"{base}/cooperatives", body, admin)
    coop = Coop(str(created["cooperative_id"]), mentor, {p.id: p for p in pool})
    coop.members.update(p.id for p in founders)
    return coop


# ---- picking a command -------------------------------------------------------------------

Maker = Callable[[Coop, random.Random, str], Command | None]


def _member(coop: Coop, rng: random.Random) -> Person | None:
    if not coop.members:
        return None
    return coop.pool[rng.choice(sorted(coop.members))]


def _outsider(coop: Coop, rng: random.Random) -> Person | None:
    outside = sorted(set(coop.pool) - coop.members)
    return coop.pool[rng.choice(outside)] if outside else None


def admit(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    person = _outsider(coop, rng)
    if person is None:
        return None
    body = {"person_id": person.id, "conversation_group": "soak", "reason": marker}
    path = f"/cooperatives/{coop.id}/members"
    return Command("admit", marker, "POST", path, coop.mentor.token, body, coop.id, person.id)


def leave(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    person = _member(coop, rng)
    if person is None or len(coop.members) <= 8:
        return None
    path = f"/cooperatives/{coop.id}/leave"
    body = {"reason": marker}
    return Command("leave", marker, "POST", path, person.token, body, coop.id, "", person.id)


def propose(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    person = _member(coop, rng)
    if person is None or len(coop.proposals) >= 3:
        return None
    body: dict[str, Any] = {"kind": "general", "text": f"question {marker}", "reason": marker}
    outsider = _outsider(coop, rng)
    if outsider is not None and rng.random() < 0.5:
        body.update(kind="admit_member", subject=outsider.id)
    path = f"/cooperatives/{coop.id}/proposals"
    return Command("propose", marker, "POST", path, person.token, body, coop.id, "", person.id)


def vote(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    person = _member(coop, rng)
    if person is None or not coop.proposals:
        return None
    proposal = rng.choice(sorted(coop.proposals))
    body = {"choice": rng.choice(["for", "for", "against", "abstain"]), "reason": marker}
    path = f"/cooperatives/{coop.id}/proposals/{proposal}/vote"
    return Command("vote", marker, "PUT", path, person.token, body, coop.id, proposal, person.id)


def close(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    person = _member(coop, rng)
    if person is None or not coop.proposals:
        return None
    proposal = rng.choice(sorted(coop.proposals))
    path = f"/cooperatives/{coop.id}/proposals/{proposal}/close"
    body = {"reason": marker}
    return Command("close", marker, "POST", path, person.token, body, coop.id, proposal, person.id)


def take_work(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    person = _member(coop, rng)
    if person is None:
        return None
    body = {"client_ref": rng.choice(CLIENTS), "description": "weekly cleaning", "reason": marker}
    path = f"/cooperatives/{coop.id}/work"
    return Command("take_work", marker, "POST", path, person.token, body, coop.id, "", person.id)


def log_hours(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    held = sorted((w, h) for w, (h, _) in coop.work.items() if h in coop.members)
    if not held:
        return None
    work, holder = rng.choice(held)
    body = {"minutes": rng.randint(15, 240), "reason": marker}
    path = f"/cooperatives/{coop.id}/work/{work}/hours"
    token = coop.pool[holder].token
    return Command("log_hours", marker, "POST", path, token, body, coop.id, work, holder)


def invoice(coop: Coop, rng: random.Random, marker: str) -> Command | None:
    body = {"client_ref": rng.choice(CLIENTS), "hourly_rate_cents": 4500, "reason": marker}
    path = f"/cooperatives/{coop.id}/invoices"
    return Command("invoice", marker, "POST", path, coop.mentor.token, body, coop.id)


MIX: list[tuple[Maker, int]] = [
    (admit, 3),
    (leave, 2),
    (propose, 1),
    (vote, 5),
    (close, 2),
    (take_work, 3),
    (log_hours, 5),
    (invoice, 2),
]


def pick(coop: Coop, rng: random.Random, marker: str) -> Command:
    """A command for ``coop`` from the mix (work can always be taken by some member)."""
    makers = [maker for maker, _ in MIX]
    weights = [weight for _, weight in MIX]
    with coop.lock:
        for _ in range(20):
            maker: Maker = rng.choices(makers, weights)[0]
            command = maker(coop, rng, marker)
            if command is not None:
                return command
        fallback = take_work(coop, rng, marker) or admit(coop, rng, marker)
    if fallback is None:
        raise RuntimeError(f"cooperative {coop.id} has no members and no outsiders")
    return fallback


def learn(coop: Coop, command: Command, response: httpx.Response | None) -> None:
    """Update what the clients know from an answer (an acknowledgement or a refusal)."""
    if response is None:
        return
    body = response.json() if response.content else {}
    code = "" if response.is_success else str(body.get("error", ""))
    actor = command.who
    with coop.lock:
        if response.is_success:
            _learn_success(coop, command, body, actor)
        elif code == "not_a_member" and actor:
            coop.members.discard(actor)
        elif code == "already_a_member" and command.op == "admit":
            coop.members.add(command.target)
        elif code in ("proposal_closed", "proposal_not_found"):
            coop.proposals.pop(command.target, None)
        elif code in ("work_closed", "not_your_work", "work_not_found"):
            coop.work.pop(command.target, None)


def _learn_success(coop: Coop, command: Command, body: dict[str, Any], actor: str) -> None:
    result = body.get("result") or {}
    names = {e["name"] for e in body.get("events", [])}
    if command.op == "admit":
        coop.members.add(command.target)
    elif command.op == "leave":
        coop.members.discard(actor)
        coop.work = {w: hc for w, hc in coop.work.items() if hc[0] != actor}
    elif command.op == "propose" and result.get("proposal_id"):
        coop.proposals[str(result["proposal_id"])] = str((command.body or {}).get("subject", ""))
    elif command.op == "close":
        subject = coop.proposals.pop(command.target, "")
        if "MemberAdmitted" in names and subject:
            coop.members.add(subject)
    elif command.op == "take_work" and result.get("work_id"):
        client = str((command.body or {}).get("client_ref"))
        coop.work[str(result["work_id"])] = (actor, client)
