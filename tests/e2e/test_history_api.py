"""Time travel over HTTP: the state as of a moment and the diff between two, on each store.

Insiders (members, the mentor, the facilitator) read them; anyone else is refused. A
moment that cannot be answered is a 422 in the one error shape, naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from api.routers import history
from ledger.storage import StoreConfig
from tests.e2e.support import ADMIN_TOKEN, Api, Person, World

STATE = "/v1/cooperatives/{}/state"
DIFF = "/v1/cooperatives/{}/diff"


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    app = create_app(Settings(store=StoreConfig.from_url(database_url), admin_token=ADMIN_TOKEN))
    # Until api/app.py includes the history router itself; then this does nothing.
    if not any(getattr(route, "path", "") == STATE.format("{coop_id}") for route in app.routes):
        app.include_router(history.router)
    with TestClient(app) as client:
        yield Api(client)


@pytest.fixture
def world(api: Api) -> World:
    return World.build(api)


def ok(api: Api, path: str, person: Person | None, **params: Any) -> dict[str, Any]:
    response = api.get(path, person, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(api: Api, path: str, status: int, **params: Any) -> dict[str, Any]:
    response = api.get(path, **params)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "field"}
    return body


def test_insiders_read_the_state_as_of_a_version_a_position_and_a_time(world: World) -> None:
    api, coop = world.api, world.coop
    state, version = STATE.format(coop), api.version(coop)
    now = ok(api, state, world.member)
    assert now["as_of"]["version"] == version
    assert now["coordinator_id"] == world.coordinator.id
    assert {m["person_id"] for m in now["members"]} == {p.id for p in world.members}
    founding = ok(api, state, world.mentor, version=1)
    assert founding["coordinator_id"] is None
    assert founding["mentor"]["active"] is True
    assert founding["as_of"]["timestamp"] == now["founded_at"]
    by_position = ok(api, state, world.coordinator, position=founding["as_of"]["position"])
    assert by_position == founding
    assert ok(api, state, None, at=now["founded_at"])["as_of"] == founding["as_of"]

    # An open proposal with its votes, as of the moment before it closes.
    proposal = api.raise_proposal(coop, world.member)
    api.vote(coop, proposal, world.member, "for")
    api.vote(coop, proposal, world.peer, "against")
    last_vote = api.version(coop)
    api.vote(coop, proposal, world.coordinator, "against")
    api.ok("POST", f"/v1/cooperatives/{coop}/proposals/{proposal}/close", world.member, {})
    (open_proposal,) = ok(api, state, world.peer, version=last_vote)["open_proposals"]
    assert open_proposal["votes"] == {world.member.id: "for", world.peer.id: "against"}
    assert sorted(open_proposal["electorate"]) == sorted(p.id for p in world.members)
    assert ok(api, state, world.peer)["open_proposals"] == []


def test_the_diff_names_each_change_and_its_events(world: World) -> None:
    api, coop = world.api, world.coop
    work_id = api.take_work(coop, world.member, "Familie Jansen")
    position = api.log_hours(coop, world.member, work_id, 120)
    number = api.issue_invoice(coop, world.coordinator, "Familie Jansen")
    changes = ok(api, DIFF.format(coop), world.member, **{"from": "v1"})
    assert changes["from"]["version"] == 1
    assert changes["to"]["version"] == api.version(coop)
    (started,) = changes["roles"]["started"]
    assert (started["role"], started["person_id"]) == ("coordinator", world.coordinator.id)
    assert [e["event"] for e in started["events"]] == ["ProposalAdopted", "CoordinatorAppointed"]
    (decision,) = changes["decisions"]
    assert decision["outcome"] == "adopted"
    (issued,) = changes["invoices"]["issued"]
    assert (issued["number"], issued["amount_cents"]) == (number, 9000)
    (taken,) = changes["work"]
    assert (taken["work_id"], taken["to"]) == (work_id, world.member.id)
    # From the hours' position to a named version: only the invoice lies in between.
    later = ok(api, DIFF.format(coop), world.mentor, **{"from": f"p{position}", "to": "latest"})
    assert [i["number"] for i in later["invoices"]["issued"]] == [number]
    assert later["work"] == []
    assert later["decisions"] == []


def test_outsiders_are_refused(world: World) -> None:
    api, coop = world.api, world.coop
    reads: list[tuple[str, dict[str, Any]]] = [(STATE, {}), (STATE, {"version": 1})]
    for path, params in [*reads, (DIFF, {"from": "v1"})]:
        assert refused(api, path.format(coop), 403, person=world.outsider, **params)
        response = api.client.get(path.format(coop), params=params)
        assert response.status_code == 401


def test_moments_that_cannot_be_answered_are_422(world: World) -> None:
    api, coop = world.api, world.coop
    state, changes = STATE.format(coop), DIFF.format(coop)
    version = api.version(coop)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (state, {"version": 1, "position": 1}, "position"),
        (state, {"version": 2, "at": "2026-01-01T00:00:00Z"}, "at"),
        (state, {"version": 0}, "version"),
        (state, {"version": version + 1}, "version"),
        (state, {"position": 10**12}, "position"),
        (state, {"at": "2026-01-01T00:00:00"}, "at"),  # no zone
        (state, {"at": "2000-01-01T00:00:00Z"}, "at"),  # before the founding
        (state, {"at": "2999-01-01T00:00:00+01:00"}, "at"),  # the future
        (changes, {"from": "yesterday"}, "from"),
        (changes, {"from": "v1", "to": "v0"}, "to"),
        (changes, {"from": f"v{version}", "to": "v1"}, "to"),
        (changes, {}, "from"),
    ]
    for path, params, field in cases:
        body = refused(api, path, 422, **params)
        assert body["field"] == field, (params, body)
    assert refused(api, STATE.format("7" * 8 + "-0000-4000-8000-" + "0" * 12), 404)
