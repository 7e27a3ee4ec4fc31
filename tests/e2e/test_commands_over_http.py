"""Commands over HTTP: what an answer carries, If-Match, Idempotency-Key, read-your-writes,
the domain's refusals by name, the failed-authentication limit, paging, and erasure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from api.idempotency import LEASE
from ledger.errors import SaveOutcomeUnknown
from ledger.storage import StoreConfig
from tests.e2e.support import ADMIN_TOKEN, Api, Call, Person, Stage, World

ERROR_KEYS = {"error", "message", "field"}
ANY = object()


def refused(
    response: httpx.Response, status: int, error: str, field: object = ANY
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["error"] == error, body
    assert body["message"], body
    if field is not ANY:
        assert body["field"] == field, body
    return body


@pytest.fixture
def world(api: Api) -> World:
    return World.build(api)


def take_work(api: Api, coop: str, member: Person, **headers: str) -> httpx.Response:
    return api.client.post(
        f"/v1/cooperatives/{coop}/work",
        json={"client_ref": "Familie Visser"},
        headers={**member.headers, **headers},
    )


# ---- what a command answers -------------------------------------------------------------


def test_a_command_answers_with_its_version_position_events_and_an_etag(world: World) -> None:
    api = world.api
    response = take_work(api, world.coop, world.member)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"cooperative_id", "version", "position", "events", "receipt", "result"}
    assert body["cooperative_id"] == world.coop
    assert body["events"] == [
        {
            "cooperative_id": world.coop,
            "version": body["version"],
            "name": "WorkTaken",
            "position": body["position"],
        }
    ]
    assert response.headers["ETag"] == f'"{body["version"]}"'
    receipt = body["receipt"]
    assert (receipt["cooperative_id"], receipt["version"]) == (world.coop, body["version"])
    assert len(receipt["chain_head"]) == 64
    int(receipt["chain_head"], 16)
    state = api.get(f"/v1/cooperatives/{world.coop}", world.member)
    assert state.headers["ETag"] == response.headers["ETag"]
    assert state.json()["version"] == body["version"]
    assert api.head() == body["position"]


def test_an_adopted_decision_and_its_effect_are_one_write_in_one_answer(world: World) -> None:
    api = world.api
    proposal = api.raise_proposal(
        world.coop, world.member, kind="appoint_coordinator", text="Chantal?", subject=world.peer.id
    )
    for member in world.members:
        api.vote(world.coop, proposal, member)

    closed = api.client.post(
        f"/v1/cooperatives/{world.coop}/proposals/{proposal}/close",
        json={},
        headers=world.member.headers,
    )

    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert [e["name"] for e in body["events"]] == ["ProposalAdopted", "CoordinatorAppointed"]
    assert [e["version"] for e in body["events"]] == [body["version"] - 1, body["version"]]
    assert [e["position"] for e in body["events"]] == [body["position"] - 1, body["position"]]
    assert closed.headers["ETag"] == f'"{body["version"]}"'


# ---- If-Match ---------------------------------------------------------------------------


def test_a_stale_if_match_is_refused_with_412_and_writes_nothing(world: World) -> None:
    api = world.api
    version = api.version(world.coop)
    before = api.written(world.coop)

    stale = take_work(api, world.coop, world.member, **{"If-Match": f'"{version - 1}"'})

    refused(stale, 412, "stale_version", "If-Match")
    assert api.written(world.coop) == before
    for form in ('"{}"', 'W/"{}"', "{}"):
        current = take_work(api, world.coop, world.member, **{"If-Match": form.format(version)})
        assert current.status_code == 201, f"{form}: {current.text}"
        version = current.json()["version"]


# The allowed actor and the way to a state where it succeeds, for every command on a
# cooperative (founding, converting and registering have no version to match).
COOPERATIVE_COMMANDS: dict[str, tuple[Callable[[Stage], Call], str]] = {
    "admit a founding member": (Stage.admit, "mentor"),
    "leave the cooperative": (Stage.leave, "member"),
    "step down as coordinator": (Stage.step_down, "coordinator"),
    "record the mentorship handover": (Stage.mentorship_handover, "member"),
    "raise a proposal": (Stage.raise_proposal, "member"),
    "vote": (Stage.vote, "member"),
    "close a proposal": (Stage.close, "member"),
    "take work": (Stage.take_work, "member"),
    "log hours": (Stage.log_hours, "member"),
    "hand over work": (Stage.hand_over, "member"),
    "accept work": (Stage.accept, "member"),
    "complete work": (Stage.complete, "member"),
    "issue an invoice": (Stage.issue_invoice, "coordinator"),
    "register a payment": (Stage.register_payment, "coordinator"),
    "credit an invoice": (Stage.credit, "coordinator"),
}


def test_every_command_on_a_cooperative_refuses_a_stale_if_match(world: World) -> None:
    api = world.api
    stage = Stage(world)
    failures = []
    for command, (prepare, actor) in COOPERATIVE_COMMANDS.items():
        call = prepare(stage)
        person: Person = getattr(world, actor)
        before = api.written(call.coop)
        response = api.client.request(
            call.method,
            call.path,
            json=call.body,
            headers={**person.headers, "If-Match": f'"{before[1] - 1}"'},
        )
        if response.status_code != 412:
            failures.append(f"{command}: {response.status_code}, not 412: {response.text}")
        if api.written(call.coop) != before:
            failures.append(f"{command}: written despite a stale If-Match")
            continue
        current = api.client.request(
            call.method,
            call.path,
            json=call.body,
            headers={**person.headers, "If-Match": f'"{before[1]}"'},
        )
        if not current.is_success:
            failures.append(f"{command}: the current version was refused: {current.text}")
    assert failures == [], "\n".join(failures)


# ---- Idempotency-Key --------------------------------------------------------------------


def test_a_repeated_idempotency_key_replays_the_first_answer_and_writes_nothing(
    world: World,
) -> None:
    api = world.api
    first = take_work(api, world.coop, world.member, **{"Idempotency-Key": "werk-visser-1"})
    assert first.status_code == 201, first.text
    before = api.written(world.coop)

    again = take_work(api, world.coop, world.member, **{"Idempotency-Key": "werk-visser-1"})

    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert api.written(world.coop) == before
    allocation = api.get(
        f"/v1/cooperatives/{world.coop}/work-allocation",
        world.member,
        min_position=first.json()["position"],
    ).json()
    held = [m["open_work"] for m in allocation["members"] if m["person_id"] == world.member.id]
    assert [w["client_ref"] for w in held[0]] == ["Familie Visser"]


def test_a_replayed_answer_carries_the_etag_of_the_first(world: World) -> None:
    # The replay stands in for the first answer; a client takes its next If-Match from it.
    api = world.api
    first = take_work(api, world.coop, world.member, **{"Idempotency-Key": "werk-visser-2"})
    again = take_work(api, world.coop, world.member, **{"Idempotency-Key": "werk-visser-2"})

    assert first.headers["ETag"] == f'"{first.json()["version"]}"'
    assert again.headers.get("ETag") == first.headers["ETag"]


def test_an_idempotency_key_reused_for_another_request_is_refused_with_422(world: World) -> None:
    api = world.api
    key = {"Idempotency-Key": "werk-3"}
    assert take_work(api, world.coop, world.member, **key).status_code == 201
    before = api.written(world.coop)

    other_body = api.client.post(
        f"/v1/cooperatives/{world.coop}/work",
        json={"client_ref": "Familie de Jong"},
        headers={**world.member.headers, **key},
    )
    other_path = api.client.post(
        f"/v1/cooperatives/{world.coop}/proposals",
        json={"client_ref": "Familie Visser"},
        headers={**world.member.headers, **key},
    )

    refused(other_body, 422, "idempotency_key_reused", "Idempotency-Key")
    assert other_path.status_code == 422, other_path.text
    assert api.written(world.coop) == before


def test_a_refused_command_releases_its_idempotency_key(world: World) -> None:
    api = world.api
    request = {
        "url": f"/v1/cooperatives/{world.coop}/invoices",
        "json": {"client_ref": "Familie Visser", "hourly_rate_cents": 4500},
        "headers": {**world.coordinator.headers, "Idempotency-Key": "factuur-visser"},
    }
    nothing_yet = api.client.post(**request)
    refused(nothing_yet, 409, "nothing_to_invoice", "client_ref")
    work = take_work(api, world.coop, world.member).json()["result"]["work_id"]
    api.log_hours(world.coop, world.member, work, minutes=45)

    retried = api.client.post(**request)

    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.json()["result"] == {"invoice_number": 1}


def test_a_command_whose_save_may_have_landed_keeps_its_idempotency_key(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store went away mid-save: a retry must not run the command a second time."""
    api = world.api
    ledger = api.client.app.state.services.ledger  # type: ignore[attr-defined]
    original = ledger._save

    def saved_then_the_store_went_away(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise SaveOutcomeUnknown("the save's outcome is unknown: server closed the connection")

    monkeypatch.setattr(ledger, "_save", saved_then_the_store_went_away)
    before = api.written(world.coop)
    key = {"Idempotency-Key": "klus-tijdens-storing"}

    first = take_work(api, world.coop, world.member, **key)
    monkeypatch.setattr(ledger, "_save", original)
    retried = take_work(api, world.coop, world.member, **key)

    refused(first, 503, "store_unavailable")
    refused(retried, 409, "request_outcome_unknown", "Idempotency-Key")
    assert api.written(world.coop) == (before[0] + 1, before[1] + 1), "recorded once, not twice"


def test_a_key_whose_worker_went_away_is_running_until_its_lease_ends_then_of_unknown_outcome(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-command never completes or frees its key; nobody waits for ever."""
    api = world.api
    services = api.client.app.state.services  # type: ignore[attr-defined]
    store = services.idempotency
    monkeypatch.setattr(store, "release", lambda *args: None)  # as if the worker died here
    monkeypatch.setattr(services.ledger, "_save", lambda *args, **kwargs: 1 / 0)
    key = {"Idempotency-Key": "klus-voor-de-crash"}
    with pytest.raises(ZeroDivisionError):
        take_work(api, world.coop, world.member, **key)
    monkeypatch.undo()

    soon_after = take_work(api, world.coop, world.member, **key)
    with store.db.transaction() as cur:
        long_ago = (datetime.now(UTC) - LEASE - timedelta(seconds=1)).isoformat()
        cur.execute(f"UPDATE {store.table} SET created_at = ?", (long_ago,))
    after_the_lease = take_work(api, world.coop, world.member, **key)

    refused(soon_after, 409, "request_in_progress", "Idempotency-Key")
    refused(after_the_lease, 409, "request_outcome_unknown", "Idempotency-Key")


def test_idempotency_keys_belong_to_the_person_who_sent_them(world: World) -> None:
    api = world.api
    key = {"Idempotency-Key": "mijn-eerste-klus"}
    mine = take_work(api, world.coop, world.member, **key)
    theirs = take_work(api, world.coop, world.coordinator, **key)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["result"] != theirs.json()["result"]


# ---- read-your-writes -------------------------------------------------------------------


def test_min_position_shows_the_state_after_ones_own_write(world: World) -> None:
    api = world.api
    coop = f"/v1/cooperatives/{world.coop}"

    def read(path: str, answer: dict[str, Any], **params: Any) -> Any:
        response = api.get(path, world.member, min_position=answer["position"], **params)
        assert response.status_code == 200, response.text
        return response.json()

    newcomer = api.register("Daan Smit")
    admitted = api.ok("POST", f"{coop}/members", world.mentor, {"person_id": newcomer.id})
    roster = read(f"{coop}/roster", admitted)
    assert newcomer.id in [m["person_id"] for m in roster["members"]]

    taken = api.ok("POST", f"{coop}/work", world.member, {"client_ref": "Familie de Wit"})
    allocation = read(f"{coop}/work-allocation", taken)
    assert "Familie de Wit" in [c["client_ref"] for c in allocation["client_contacts"]]

    raised = api.ok(
        "POST", f"{coop}/proposals", world.member, {"kind": "general", "text": "Uitje?"}
    )
    register = read(f"{coop}/proposals", raised)
    assert raised["result"]["proposal_id"] in [p["proposal_id"] for p in register["items"]]
    audit = read(f"{coop}/audit", raised)
    assert audit["items"][-1]["position"] == raised["position"]

    api.log_hours(world.coop, world.member, taken["result"]["work_id"])
    issued = api.ok(
        "POST",
        f"{coop}/invoices",
        world.coordinator,
        {"client_ref": "Familie de Wit", "hourly_rate_cents": 5000},
    )
    assert [i["number"] for i in read(f"{coop}/invoices", issued)["items"]] == [1]

    founded = api.ok(
        "POST",
        "/v1/cooperatives",
        None,
        {
            "name": "De Wijkzorg",
            "sector": "youth care",
            "members": [{"person_id": newcomer.id}],
            "mentor_id": world.mentor.id,
        },
    )
    directory = read("/v1/cooperatives", founded, sector="youth care")
    assert [c["id"] for c in directory["items"]] == [founded["cooperative_id"]]


WAIT_SECONDS = 1.0


@pytest.fixture
def api_waiting_briefly(database_url: str) -> Iterator[Api]:
    """The API with a bounded read-your-writes wait of one second instead of five."""
    settings = Settings(
        store=StoreConfig.from_url(database_url),
        admin_token=ADMIN_TOKEN,
        max_wait_seconds=WAIT_SECONDS,
        # Nobody runs the projections here, so they never reach a new write.
        projections="external",
    )
    with TestClient(create_app(settings)) as client:
        yield Api(client)


def test_a_position_beyond_the_ledger_is_refused_at_once(api: Api) -> None:
    world = World.build(api)
    response = api.get(
        f"/v1/cooperatives/{world.coop}/roster", world.member, min_position=api.head() + 1
    )
    refused(response, 422, "min_position_ahead", "min_position")


def test_a_position_the_projections_do_not_reach_times_out_with_503_and_retry_after(
    api_waiting_briefly: Api,
) -> None:
    api = api_waiting_briefly
    world = World.build(api)

    started = time.monotonic()
    response = api.get(
        f"/v1/cooperatives/{world.coop}/roster", world.member, min_position=api.head()
    )
    waited = time.monotonic() - started

    refused(response, 503, "projection_timeout", "min_position")
    assert int(response.headers["Retry-After"]) >= 1
    assert WAIT_SECONDS <= waited < WAIT_SECONDS + 4, waited


# ---- the domain's refusals name themselves ----------------------------------------------


def test_a_21st_member_is_refused_as_cooperative_full(api: Api) -> None:
    people = [api.register(f"Medewerker {n}") for n in range(1, 22)]
    mentor = api.register("Marieke Jansen")
    coop = api.found(people[:20], mentor)
    before = api.written(coop)

    admitted = api.client.post(
        f"/v1/cooperatives/{coop}/members",
        json={"person_id": people[20].id},
        headers=mentor.headers,
    )
    founded = api.client.post(
        "/v1/cooperatives",
        json={
            "name": "Te Groot",
            "sector": "cleaning",
            "members": [{"person_id": p.id} for p in people],
            "mentor_id": mentor.id,
        },
        headers=api.admin,
    )

    body = refused(admitted, 409, "cooperative_full", "person_id")
    assert "split" in body["message"]
    refused(founded, 409, "cooperative_full", "members")
    assert api.written(coop) == before


def test_a_member_admitted_after_a_proposal_was_raised_is_not_eligible_to_vote(
    world: World,
) -> None:
    api = world.api
    proposal = api.raise_proposal(world.coop, world.peer)
    newcomer = api.register("Daan Smit")
    api.ok(
        "POST", f"/v1/cooperatives/{world.coop}/members", world.mentor, {"person_id": newcomer.id}
    )
    before = api.written(world.coop)
    vote = f"/v1/cooperatives/{world.coop}/proposals/{proposal}/vote"

    late = api.client.put(vote, json={"choice": "for"}, headers=newcomer.headers)
    mentor = api.client.put(vote, json={"choice": "for"}, headers=world.mentor.headers)

    refused(late, 403, "not_eligible_to_vote")
    refused(mentor, 403, "not_eligible_to_vote")
    assert api.written(world.coop) == before


@pytest.mark.parametrize("kind", ["appoint_manager", "team_lead", "chair"])
def test_a_proposal_for_a_boss_is_refused_because_that_role_does_not_exist(
    world: World, kind: str
) -> None:
    api = world.api
    before = api.written(world.coop)

    response = api.client.post(
        f"/v1/cooperatives/{world.coop}/proposals",
        json={"kind": kind, "text": "Ik neem wel de leiding", "subject": world.member.id},
        headers=world.member.headers,
    )

    body = refused(response, 422, "manager_role_does_not_exist", "kind")
    assert "coordinator" in body["message"]
    assert api.written(world.coop) == before


def test_a_member_who_is_not_coordinator_has_no_mandate_to_invoice_or_admit(world: World) -> None:
    api = world.api
    work = api.take_work(world.coop, world.member, "Familie Visser")
    api.log_hours(world.coop, world.member, work)
    newcomer = api.register("Daan Smit")
    before = api.written(world.coop)

    invoice = api.client.post(
        f"/v1/cooperatives/{world.coop}/invoices",
        json={"client_ref": "Familie Visser", "hourly_rate_cents": 4500},
        headers=world.member.headers,
    )
    admit = api.client.post(
        f"/v1/cooperatives/{world.coop}/members",
        json={"person_id": newcomer.id},
        headers=world.member.headers,
    )

    refused(invoice, 403, "no_mandate", "actor")
    refused(admit, 403, "no_mandate", "actor")
    assert api.written(world.coop) == before


# ---- failed authentication ----------------------------------------------------------------


def test_twenty_bad_tokens_lock_the_client_out_with_429_and_retry_after(api: Api) -> None:
    for attempt in range(20):
        response = api.client.get(
            "/v1/people/me", headers={"Authorization": f"Bearer guess{attempt}"}
        )
        refused(response, 401, "invalid_token", "Authorization")
        assert "WWW-Authenticate" in response.headers

    bad = api.client.get("/v1/people/me", headers={"Authorization": "Bearer guess20"})
    good = api.client.get("/v1/people/me", headers=api.admin)

    for response in (bad, good):
        refused(response, 429, "too_many_failed_attempts", "Authorization")
        assert 1 <= int(response.headers["Retry-After"]) <= 61


# ---- paging -------------------------------------------------------------------------------


def walk(api: Api, path: str, reader: Person | None, **params: Any) -> list[dict[str, Any]]:
    """Every item of a cursor-paged listing, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor is not None else {})}
        page = api.get(path, reader, **query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{path} never reached its last page")


def test_the_directory_pages_through_every_cooperative_exactly_once(world: World) -> None:
    api = world.api
    founded = {world.coop}
    for sector in ("cleaning", "youth care", "youth care", "cleaning"):
        founded.add(api.found([world.peer], world.mentor, sector=sector))
    employees = [api.register(f"Medewerker {n}") for n in range(1, 22)]
    # One conversion founds its cooperatives in the same instant: paging must still tell them apart.
    converted = api.ok(
        "POST",
        "/v1/conversions",
        None,
        {
            "company": "Schoon BV",
            "sector": "cleaning",
            "employees": [e.id for e in employees],
            "mentor_id": world.mentor.id,
        },
    )["cooperatives"]
    founded |= {c["cooperative_id"] for c in converted}
    last = max(c["position"] for c in converted)
    everything = api.get("/v1/cooperatives", world.outsider, limit=500, min_position=last).json()
    assert everything["next_cursor"] is None

    for limit in (1, 2, 3):
        paged = walk(api, "/v1/cooperatives", world.outsider, limit=limit)
        ids = [c["id"] for c in paged]
        assert len(ids) == len(set(ids)), f"limit {limit}: a cooperative came twice"
        assert ids == [c["id"] for c in everything["items"]], f"limit {limit}"
        assert set(ids) == founded
    youth_care = walk(api, "/v1/cooperatives", world.outsider, limit=1, sector="youth care")
    assert len(youth_care) == 2
    assert {c["sector"] for c in youth_care} == {"youth care"}


def test_the_audit_trail_pages_through_every_event_exactly_once(world: World) -> None:
    api = world.api
    work = api.take_work(world.coop, world.member, "Familie Visser")
    for minutes in (30, 45, 60):
        api.log_hours(world.coop, world.member, work, minutes)
    api.take_work(world.coop, world.coordinator, "Familie de Jong")
    head = api.head()
    audit = f"/v1/cooperatives/{world.coop}/audit"
    everything = api.get(audit, world.member, limit=1000, min_position=head).json()["items"]
    assert len(everything) == api.version(world.coop)

    for limit in (1, 3, 4):
        paged = walk(api, audit, world.member, limit=limit)
        positions = [e["position"] for e in paged]
        assert positions == sorted(set(positions)), f"limit {limit}: repeated or out of order"
        assert paged == everything, f"limit {limit}"
    mine = walk(api, audit, world.member, limit=2, member=world.member.id)
    assert mine == api.get(audit, world.member, member=world.member.id).json()["items"]
    assert len(mine) >= 5


# ---- erasure ------------------------------------------------------------------------------


def test_erasing_personal_data_removes_the_name_from_every_view_at_once_and_revokes_the_token(
    world: World,
) -> None:
    api = world.api
    anouk = world.member
    work = api.take_work(world.coop, anouk, "Familie Visser")
    api.log_hours(world.coop, anouk, work)
    api.raise_proposal(world.coop, anouk, text="Een nieuwe schoonmaakkar")
    coop = f"/v1/cooperatives/{world.coop}"
    views = [
        f"{coop}/roster",
        f"{coop}/audit",
        f"{coop}/work-allocation",
        f"{coop}/proposals",
        f"{coop}/equality",
    ]
    head = api.head()
    for view in views:
        shown = api.get(view, world.coordinator, min_position=head)
        assert anouk.name in shown.text, view

    erased = api.client.delete(f"/v1/people/{anouk.id}/personal-data", headers=anouk.headers)

    assert erased.status_code == 204, erased.text
    for view in views:
        shown = api.get(view, world.coordinator)
        assert shown.status_code == 200, shown.text
        assert anouk.name not in shown.text, view
        assert "anouk@example.org" not in shown.text, view
    roster = api.get(f"{coop}/roster", world.coordinator).json()
    kept = [m for m in roster["members"] if m["person_id"] == anouk.id]
    assert [m["name"] for m in kept] == [None], "the pseudonymous id stays, the name goes"
    record = api.get(f"/v1/people/{anouk.id}").json()
    assert (record["name"], record["contact"], record["erased"]) == ("(erased)", "", True)
    refused(api.client.get("/v1/people/me", headers=anouk.headers), 401, "invalid_token")
    refused(take_work(api, world.coop, anouk), 401, "invalid_token")
    assert api.head() == head, "erasure writes no event: the history stays whole"
