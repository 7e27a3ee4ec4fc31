"""Helpers for end-to-end tests through the HTTP API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

ADMIN_TOKEN = "test-facilitator-token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Person:
    id: str
    token: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Api:
    """A TestClient and the people the test registered through it."""

    client: TestClient
    admin: dict[str, str] = field(default_factory=lambda: bearer(ADMIN_TOKEN))

    def register(self, name: str, contact: str = "") -> Person:
        response = self.client.post(
            "/v1/people", json={"name": name, "contact": contact}, headers=self.admin
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Person(body["id"], body["token"], name)

    def found(self, members: list[Person], mentor: Person, **extra: Any) -> str:
        response = self.client.post(
            "/v1/cooperatives",
            json={
                "name": "De Schoonmakers",
                "sector": "cleaning",
                "members": [{"person_id": m.id, "conversation_group": "group 1"} for m in members],
                "mentor_id": mentor.id,
                **extra,
            },
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        cooperative_id: str = response.json()["cooperative_id"]
        return cooperative_id

    def decide(self, coop_id: str, members: list[Person], **proposal: Any) -> dict[str, Any]:
        """Raise a proposal, everyone votes for, close it; the close response."""
        raised = self.client.post(
            f"/v1/cooperatives/{coop_id}/proposals", json=proposal, headers=members[0].headers
        )
        assert raised.status_code == 201, raised.text
        proposal_id = raised.json()["result"]["proposal_id"]
        for member in members:
            voted = self.client.put(
                f"/v1/cooperatives/{coop_id}/proposals/{proposal_id}/vote",
                json={"choice": "for"},
                headers=member.headers,
            )
            assert voted.status_code == 200, voted.text
        closed = self.client.post(
            f"/v1/cooperatives/{coop_id}/proposals/{proposal_id}/close",
            json={},
            headers=members[0].headers,
        )
        assert closed.status_code == 200, closed.text
        body: dict[str, Any] = closed.json()
        return body

    # ---- reading what was written ----------------------------------------------------

    def head(self) -> int:
        """The ledger's last position (``GET /v1/projections``)."""
        response = self.client.get("/v1/projections", headers=self.admin)
        assert response.status_code == 200, response.text
        head: int = response.json()["head"]
        return head

    def version(self, coop_id: str) -> int:
        """The cooperative's version, read by the facilitator."""
        response = self.client.get(f"/v1/cooperatives/{coop_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        version: int = response.json()["version"]
        return version

    def written(self, coop_id: str) -> tuple[int, int]:
        """(head, the cooperative's version): unchanged when a command wrote nothing."""
        return self.head(), self.version(coop_id)

    # ---- commands that tests use to build a state ------------------------------------

    def ok(self, method: str, path: str, person: Person | None, body: Any = None) -> dict[str, Any]:
        """Run a command that must succeed; its JSON answer ({} for 204)."""
        headers = self.admin if person is None else person.headers
        response = self.client.request(method, path, json=body, headers=headers)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json() if response.content else {}
        return answer

    def take_work(self, coop_id: str, member: Person, client_ref: str = "Familie Jansen") -> str:
        answer = self.ok(
            "POST", f"/v1/cooperatives/{coop_id}/work", member, {"client_ref": client_ref}
        )
        work_id: str = answer["result"]["work_id"]
        return work_id

    def log_hours(self, coop_id: str, member: Person, work_id: str, minutes: int = 60) -> int:
        """Log time on the member's own work; the position written."""
        answer = self.ok(
            "POST",
            f"/v1/cooperatives/{coop_id}/work/{work_id}/hours",
            member,
            {"minutes": minutes},
        )
        position: int = answer["position"]
        return position

    def issue_invoice(
        self, coop_id: str, issuer: Person, client_ref: str, hourly_rate_cents: int = 4500
    ) -> int:
        """Invoice a client's logged hours; the invoice number."""
        answer = self.ok(
            "POST",
            f"/v1/cooperatives/{coop_id}/invoices",
            issuer,
            {"client_ref": client_ref, "hourly_rate_cents": hourly_rate_cents},
        )
        number: int = answer["result"]["invoice_number"]
        return number

    def raise_proposal(self, coop_id: str, member: Person, **proposal: Any) -> str:
        body = {"kind": "general", "text": "Zullen we het rooster samen maken?", **proposal}
        answer = self.ok("POST", f"/v1/cooperatives/{coop_id}/proposals", member, body)
        proposal_id: str = answer["result"]["proposal_id"]
        return proposal_id

    def vote(self, coop_id: str, proposal_id: str, member: Person, choice: str = "for") -> None:
        self.ok(
            "PUT",
            f"/v1/cooperatives/{coop_id}/proposals/{proposal_id}/vote",
            member,
            {"choice": choice},
        )

    def get(self, path: str, person: Person | None = None, **params: Any) -> httpx.Response:
        """A read as ``person`` (the facilitator when None)."""
        headers = self.admin if person is None else person.headers
        return self.client.get(path, headers=headers, params=params)

    @contextmanager
    def clock_shifted(self, by: timedelta) -> Iterator[None]:
        """Commands in this block are recorded ``by`` later (earlier, when negative) than now.

        Only time moves: the commands still go through HTTP. A mentor year is a
        calendar year, so a cooperative founded 400 days ago is past it today.
        """
        ledger = self.client.app.state.services.ledger  # type: ignore[attr-defined]
        original = ledger.clock
        ledger.clock = lambda: original() + by
        try:
            yield
        finally:
            ledger.clock = original


@dataclass
class World:
    """A cooperative with one person in each role, built through the API.

    ``member``, ``coordinator`` and ``peer`` are its members (the coordinator appointed
    by the members' decision), ``mentor`` is its mentor in the mentor year, and
    ``outsider`` is registered but belongs to no cooperative. The same people found
    further cooperatives in the same roles with ``cooperative()``.
    """

    api: Api
    member: Person
    coordinator: Person
    peer: Person
    mentor: Person
    outsider: Person
    coop: str = ""

    @classmethod
    def build(cls, api: Api) -> World:
        world = cls(
            api,
            member=api.register("Anouk de Vries", "anouk@example.org"),
            coordinator=api.register("Bram Visser", "bram@example.org"),
            peer=api.register("Chantal Bakker", "chantal@example.org"),
            mentor=api.register("Marieke Jansen", "marieke@example.org"),
            outsider=api.register("Olaf Buiten", "olaf@example.org"),
        )
        world.coop = world.cooperative()
        return world

    @property
    def members(self) -> list[Person]:
        return [self.member, self.coordinator, self.peer]

    def cooperative(self, *, founded_days_ago: int = 0) -> str:
        """Found another cooperative of the same people in the same roles; its id."""
        with self.api.clock_shifted(-timedelta(days=founded_days_ago)):
            coop_id = self.api.found(self.members, self.mentor)
        self.api.decide(
            coop_id,
            self.members,
            kind="appoint_coordinator",
            text="Bram coordineert: de facturen en de centrale zaken.",
            subject=self.coordinator.id,
        )
        return coop_id


@dataclass(frozen=True)
class Call:
    """One command as it will be sent, and the cooperative it must leave alone if refused."""

    method: str
    path: str
    body: dict[str, Any] | None
    coop: str
    # Something else a refusal must leave unchanged (e.g. the person to be erased).
    unchanged: Callable[[], Any] | None = None


@dataclass
class Stage:
    """Builds, through the API, a state in which each command would succeed."""

    world: World
    cache: dict[str, str] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for person in self.world.members:
            self.people[person.id] = person

    @property
    def api(self) -> Api:
        return self.world.api

    @property
    def coop(self) -> str:
        return self.world.coop

    def path(self, tail: str) -> str:
        return f"/v1/cooperatives/{self.coop}{tail}"

    def once(self, key: str, make: Callable[[], str]) -> str:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    # ---- the facilitator's commands ------------------------------------------------

    def register_person(self) -> Call:
        return Call("POST", "/v1/people", {"name": "Nieuwe Persoon"}, self.coop)

    def erase_another_person(self) -> Call:
        target = self.api.register("Te Vergeten", "vergeet@example.org")
        return Call(
            "DELETE",
            f"/v1/people/{target.id}/personal-data",
            None,
            self.coop,
            unchanged=lambda: self.api.get(f"/v1/people/{target.id}").json(),
        )

    def found(self) -> Call:
        body = {
            "name": "De Glazenwassers",
            "sector": "cleaning",
            "members": [{"person_id": self.world.peer.id, "conversation_group": "group 1"}],
            "mentor_id": self.world.mentor.id,
        }
        return Call("POST", "/v1/cooperatives", body, self.coop)

    def convert(self) -> Call:
        body = {
            "company": "Schoon BV",
            "sector": "cleaning",
            "employees": [self.world.peer.id, self.world.member.id],
            "mentor_id": self.world.mentor.id,
        }
        return Call("POST", "/v1/conversions", body, self.coop)

    # ---- membership and roles --------------------------------------------------------

    def admit(self) -> Call:
        newcomer = self.api.register("Nieuw Lid")
        # Admitted, they join every later electorate: closing a proposal waits for them too.
        self.people[newcomer.id] = newcomer
        body = {"person_id": newcomer.id, "conversation_group": "group 2"}
        return Call("POST", self.path("/members"), body, self.coop)

    def leave(self) -> Call:
        coop = self.world.cooperative()
        return Call("POST", f"/v1/cooperatives/{coop}/leave", {}, coop)

    def step_down(self) -> Call:
        coop = self.world.cooperative()
        return Call("POST", f"/v1/cooperatives/{coop}/coordinator/step-down", {}, coop)

    def mentorship_handover(self) -> Call:
        coop = self.world.cooperative(founded_days_ago=400)
        return Call("POST", f"/v1/cooperatives/{coop}/mentorship/handover", {}, coop)

    # ---- decisions -----------------------------------------------------------------

    def raise_proposal(self) -> Call:
        body = {"kind": "general", "text": "Nemen we een tweede stofzuiger?"}
        return Call("POST", self.path("/proposals"), body, self.coop)

    def vote(self) -> Call:
        proposal = self.api.raise_proposal(self.coop, self.world.peer)
        return Call("PUT", self.path(f"/proposals/{proposal}/vote"), {"choice": "for"}, self.coop)

    def close(self) -> Call:
        proposal = self.api.raise_proposal(self.coop, self.world.peer)
        for member_id in self.api.get(f"/v1/cooperatives/{self.coop}").json()["members"]:
            self.api.vote(self.coop, proposal, self.people[member_id])
        return Call("POST", self.path(f"/proposals/{proposal}/close"), {}, self.coop)

    # ---- work ----------------------------------------------------------------------

    def take_work(self) -> Call:
        return Call("POST", self.path("/work"), {"client_ref": "Familie de Boer"}, self.coop)

    def members_work(self, key: str) -> str:
        return self.once(key, lambda: self.api.take_work(self.coop, self.world.member, key))

    def log_hours(self) -> Call:
        work = self.members_work("Familie Smit")
        return Call("POST", self.path(f"/work/{work}/hours"), {"minutes": 30}, self.coop)

    def hand_over(self) -> Call:
        work = self.members_work("Familie Mulder")
        body = {"to_member": self.world.peer.id}
        return Call("POST", self.path(f"/work/{work}/handover"), body, self.coop)

    def accept(self) -> Call:
        work = self.api.take_work(self.coop, self.world.peer, "Familie Bos")
        self.api.ok(
            "POST",
            self.path(f"/work/{work}/handover"),
            self.world.peer,
            {"to_member": self.world.member.id},
        )
        return Call("POST", self.path(f"/work/{work}/accept"), {}, self.coop)

    def complete(self) -> Call:
        work = self.api.take_work(self.coop, self.world.member, "Familie Peters")
        return Call("POST", self.path(f"/work/{work}/complete"), {}, self.coop)

    # ---- invoices ------------------------------------------------------------------

    def hours_to_invoice(self) -> None:
        work = self.members_work("Gemeente Utrecht")
        self.api.log_hours(self.coop, self.world.member, work, minutes=120)

    def issue_invoice(self) -> Call:
        self.hours_to_invoice()
        body = {"client_ref": "Gemeente Utrecht", "hourly_rate_cents": 4500}
        return Call("POST", self.path("/invoices"), body, self.coop)

    def an_issued_invoice(self) -> int:
        self.hours_to_invoice()
        return self.api.issue_invoice(self.coop, self.world.coordinator, "Gemeente Utrecht")

    def register_payment(self) -> Call:
        number = self.an_issued_invoice()
        body = {"amount_cents": 1}
        return Call("POST", self.path(f"/invoices/{number}/payments"), body, self.coop)

    def credit(self) -> Call:
        number = self.an_issued_invoice()
        return Call("POST", self.path(f"/invoices/{number}/credit"), {}, self.coop)
