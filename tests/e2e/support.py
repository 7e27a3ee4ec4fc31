"""Helpers for end-to-end tests through the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
