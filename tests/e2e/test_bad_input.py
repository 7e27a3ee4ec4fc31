"""Bad input over HTTP: refused with a 4xx in the one error shape, never a 500, nothing written.

Unreadable JSON is 400 ``malformed_json``; JSON of the wrong shape is 422 and the
``field`` names what is at fault (``rules.member_cap``, ``employees.1``, a path
parameter ...). Text is data, never SQL: whatever a person types is stored as typed
and read back unchanged through the projections.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from ledger.storage import StoreConfig
from tests.e2e.support import ADMIN_TOKEN, Api, World

ERROR_KEYS = {"error", "message", "field"}
UNREGISTERED = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """As the e2e ``api``, but a server error comes back as a 500 to check, not a crash."""
    settings = Settings(store=StoreConfig.from_url(database_url), admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client)


@dataclass
class Scene:
    """A cooperative with open work, logged hours, an open proposal and an issued invoice."""

    world: World
    work: str
    proposal: str
    invoice: int

    def fill(self, path: str) -> str:
        return path.format(
            coop=self.world.coop,
            work=self.work,
            proposal=self.proposal,
            number=self.invoice,
            member=self.world.member.id,
        )


@pytest.fixture
def scene(api: Api) -> Scene:
    world = World.build(api)
    work = api.take_work(world.coop, world.member, "Familie Jansen")
    api.log_hours(world.coop, world.member, work, minutes=90)
    invoice = api.issue_invoice(world.coop, world.coordinator, "Familie Jansen")
    proposal = api.raise_proposal(world.coop, world.member)
    return Scene(world, work, proposal, invoice)


class Case(NamedTuple):
    what: str
    method: str
    path: str
    body: Any
    field: str | None
    status: int = 422
    error: str = "invalid_input"


# Who sends each path: the facilitator founds, converts and registers; the member does
# the rest (and is the one who holds the work). The coordinator pays invoices.
FACILITATOR_PATHS = ("/v1/people", "/v1/cooperatives", "/v1/conversions")


def sender(scene: Scene, case: Case) -> dict[str, str]:
    path = case.path.split("?")[0]
    if path in FACILITATOR_PATHS or path.startswith(("/v1/people/", "/v1/conversions/")):
        return scene.world.api.admin
    if "/invoices" in path:
        return scene.world.coordinator.headers
    return scene.world.member.headers


def founding(**overrides: Any) -> dict[str, Any]:
    """A founding body that is valid until ``overrides`` spoil it (filled in by ``body_of``)."""
    return {
        "name": "De Glazenwassers",
        "sector": "cleaning",
        "members": [{"person_id": "{member}"}],
        "mentor_id": "{mentor}",
        **overrides,
    }


def body_of(scene: Scene, body: Any) -> Any:
    """``body`` with ``{member}``, ``{mentor}``, ``{peer}`` filled in with real ids."""
    ids = {
        "{member}": scene.world.member.id,
        "{mentor}": scene.world.mentor.id,
        "{peer}": scene.world.peer.id,
    }
    if isinstance(body, dict):
        return {k: body_of(scene, v) for k, v in body.items()}
    if isinstance(body, list):
        return [body_of(scene, v) for v in body]
    if isinstance(body, str):
        return ids.get(body, body)
    return body


def send(scene: Scene, case: Case) -> httpx.Response:
    client = scene.world.api.client
    headers = sender(scene, case)
    path = scene.fill(case.path)
    if isinstance(case.body, bytes):
        headers = {**headers, "Content-Type": "application/json"}
        return client.request(case.method, path, content=case.body, headers=headers)
    return client.request(case.method, path, json=body_of(scene, case.body), headers=headers)


def refusal_problems(response: httpx.Response, case: Case, check_field: bool = True) -> list[str]:
    problems = []
    if response.status_code != case.status:
        problems.append(f"status {response.status_code}, not {case.status}: {response.text}")
    try:
        body = response.json()
    except ValueError:
        return [*problems, f"not JSON: {response.text[:200]}"]
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        return [*problems, f"error shape is {body}"]
    if body["error"] != case.error:
        problems.append(f"error {body['error']!r}, not {case.error!r}")
    if check_field and body["field"] != case.field:
        problems.append(f"field {body['field']!r}, not {case.field!r} ({body['message']})")
    return problems


def assert_refused(scene: Scene, cases: list[Case], check_field: bool = True) -> None:
    """Every case is refused as expected and writes nothing; all failures are listed."""
    api = scene.world.api
    failures = []
    for case in cases:
        before = api.head()
        response = send(scene, case)
        problems = refusal_problems(response, case, check_field)
        if api.head() != before:
            problems.append("something was written")
        failures += [f"{case.what}: {p}" for p in problems]
    assert failures == [], "\n".join(failures)


# ---- unreadable JSON ------------------------------------------------------------------

WORK = "/v1/cooperatives/{coop}/work"
HOURS = "/v1/cooperatives/{coop}/work/{work}/hours"
HANDOVER = "/v1/cooperatives/{coop}/work/{work}/handover"
VOTE = "/v1/cooperatives/{coop}/proposals/{proposal}/vote"
PROPOSALS = "/v1/cooperatives/{coop}/proposals"
INVOICES = "/v1/cooperatives/{coop}/invoices"
PAYMENTS = "/v1/cooperatives/{coop}/invoices/{number}/payments"
ADMIT = "/v1/cooperatives/{coop}/members"

MALFORMED = [
    ("a truncated object", b'{"client_ref": "Familie Jansen"'),
    ("single quotes", b"{'client_ref': 'Familie Jansen'}"),
    ("a trailing comma", b'{"client_ref": "Familie Jansen",}'),
    ("text after the object", b'{"client_ref": "Familie Jansen"} en verder'),
    ("form encoding", b"client_ref=Familie+Jansen"),
    ("an unquoted key", b'{client_ref: "Familie Jansen"}'),
    ("a comment", b'{"client_ref": "Familie Jansen" /* klant */}'),
    ("an unterminated string", b'{"client_ref": "Familie Jansen}'),
]


def test_unreadable_json_is_refused_with_400_malformed_json(scene: Scene) -> None:
    cases = [
        Case(what, method, path, body, None, 400, "malformed_json")
        for what, body in MALFORMED
        for method, path in [("POST", WORK), ("POST", "/v1/cooperatives"), ("PUT", VOTE)]
    ]
    assert_refused(scene, cases)


def test_a_body_that_is_not_utf8_is_refused_as_malformed_json(scene: Scene) -> None:
    # JSON is UTF-8 (RFC 8259): bytes that are not are unreadable JSON like any other.
    cases = [
        Case("Latin-1 text", "POST", WORK, '{"client_ref": "Café"}'.encode("latin-1"), None),
        Case("stray bytes", "POST", WORK, b'{"client_ref": "\xff\xfe"}', None),
    ]
    assert_refused(scene, [c._replace(status=400, error="malformed_json") for c in cases])


def test_json_too_deep_or_numbers_too_long_for_the_parser_are_refused_without_a_server_error(
    scene: Scene,
) -> None:
    api = scene.world.api
    deep_arrays = b'{"client_ref": "x", "description": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    deep_objects = b'{"client_ref": "x", "reason": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001
    long_number = b'{"minutes": ' + b"9" * 5000 + b"}"
    for what, path, body in [
        ("20 000 nested arrays", WORK, deep_arrays),
        ("10 000 nested objects", WORK, deep_objects),
        ("a 5000-digit number", "/v1/cooperatives/{coop}/work/{work}/hours", long_number),
    ]:
        before = api.head()
        response = send(scene, Case(what, "POST", path, body, None))
        assert 400 <= response.status_code < 500, f"{what}: {response.status_code}"
        assert set(response.json()) == ERROR_KEYS, what
        assert api.head() == before, what


# ---- well-formed JSON of the wrong shape --------------------------------------------------


def conversion(**overrides: Any) -> dict[str, Any]:
    body = {"company": "Schoon BV", "sector": "cleaning", "employees": ["{peer}"]}
    return {**body, "mentor_id": "{mentor}", **overrides}


# fmt: off
WRONG_TYPES = [
    Case("a number for a client", "POST", WORK, {"client_ref": 123}, "client_ref"),
    Case("a list for a client", "POST", WORK, {"client_ref": ["Jansen"]}, "client_ref"),
    Case("null for a client", "POST", WORK, {"client_ref": None}, "client_ref"),
    Case("an object for a description", "POST", WORK, {"client_ref": "x", "description": {}},
         "description"),
    Case("words for minutes", "POST", HOURS, {"minutes": "sixty"}, "minutes"),
    Case("a fraction of a minute", "POST", HOURS, {"minutes": 30.5}, "minutes"),
    Case("a list of minutes", "POST", HOURS, {"minutes": [30]}, "minutes"),
    Case("a day that is no date", "POST", HOURS, {"minutes": 30, "worked_on": "gisteren"},
         "worked_on"),
    Case("30 February", "POST", HOURS, {"minutes": 30, "worked_on": "2025-02-30"}, "worked_on"),
    Case("a choice that is none", "PUT", VOTE, {"choice": "maybe"}, "choice"),
    Case("true for a choice", "PUT", VOTE, {"choice": True}, "choice"),
    Case("a capitalised choice", "PUT", VOTE, {"choice": "FOR"}, "choice"),
    Case("a number for a kind", "POST", PROPOSALS, {"kind": 7, "text": "t"}, "kind"),
    Case("null for a text", "POST", PROPOSALS, {"kind": "general", "text": None}, "text"),
    Case("a deadline in words", "POST", PROPOSALS,
         {"kind": "general", "text": "t", "closes_at": "next week"}, "closes_at"),
    Case("a string for rules", "POST", PROPOSALS,
         {"kind": "change_rules", "text": "t", "rules": "consent"}, "rules"),
    Case("words for a rate", "POST", INVOICES,
         {"client_ref": "Familie Jansen", "hourly_rate_cents": "veertig"},
         "hourly_rate_cents"),
    Case("a rate in fractions of a cent", "POST", INVOICES,
         {"client_ref": "Familie Jansen", "hourly_rate_cents": 4500.5},
         "hourly_rate_cents"),
    Case("an amount as a list", "POST", PAYMENTS, {"amount_cents": [100]}, "amount_cents"),
    Case("members as a string", "POST", "/v1/cooperatives", founding(members="everyone"),
         "members"),
    Case("a member as a bare id", "POST", "/v1/cooperatives", founding(members=["{member}"]),
         "members.0"),
    Case("a cap in words", "POST", "/v1/cooperatives", founding(rules={"member_cap": "twenty"}),
         "rules.member_cap"),
    Case("a decision mode nobody knows", "POST", "/v1/cooperatives",
         founding(rules={"mode": "dictator"}), "rules.mode"),
    Case("a list for a name", "POST", "/v1/people", {"name": ["Anouk", "de Vries"]}, "name"),
    Case("a number for contact details", "POST", "/v1/people",
         {"name": "Anouk", "contact": 612345678}, "contact"),
    Case("employees as a string", "POST", "/v1/conversions", conversion(employees="all"),
         "employees"),
    Case("an object for a member to hand to", "POST", HANDOVER, {"to_member": {"id": "x"}},
         "to_member"),
    Case("a lone surrogate in a client", "POST", WORK, b'{"client_ref": "x\\ud800y"}',
         "client_ref"),
    Case("an array for the whole body", "POST", WORK, [{"client_ref": "x"}], None),
    Case("a string for the whole body", "POST", WORK, "client_ref", None),
]
# fmt: on


def test_wrong_types_are_refused_with_422_naming_the_field(scene: Scene) -> None:
    assert_refused(scene, WRONG_TYPES)


# fmt: off
UNKNOWN_FIELDS = [
    Case("assigning work to someone", "POST", WORK,
         {"client_ref": "x", "assigned_to": "{peer}"}, "assigned_to"),
    Case("a weighted vote", "PUT", VOTE, {"choice": "for", "weight": 2}, "weight"),
    Case("a casting vote", "POST", PROPOSALS,
         {"kind": "general", "text": "t", "casting_vote": "{member}"}, "casting_vote"),
    Case("a chair in the rules", "POST", PROPOSALS,
         {"kind": "change_rules", "text": "t", "rules": {"chair": "{member}"}},
         "rules.chair"),
    Case("a leader of a split", "POST", PROPOSALS,
         {"kind": "split", "text": "t",
          "split": {"new_name": "B", "moving_members": ["{peer}"], "leader": "{peer}"}},
         "split.leader"),
    Case("a role for a founding member", "POST", "/v1/cooperatives",
         founding(members=[{"person_id": "{member}", "role": "manager"}]),
         "members.0.role"),
    Case("a person who makes themself facilitator", "POST", "/v1/people",
         {"name": "Anouk", "is_facilitator": True}, "is_facilitator"),
    Case("an invoice number of one's choosing", "POST", INVOICES,
         {"client_ref": "Familie Jansen", "hourly_rate_cents": 4500, "number": 7},
         "number"),
    Case("a currency", "POST", PAYMENTS, {"amount_cents": 100, "currency": "EUR"}, "currency"),
    Case("a date to leave on", "POST", "/v1/cooperatives/{coop}/leave",
         {"effective": "2030-01-01"}, "effective"),
    Case("a second mentor", "POST", "/v1/conversions", conversion(co_mentor_id="{peer}"),
         "co_mentor_id"),
]
# fmt: on


def test_unknown_fields_are_refused_with_422_naming_the_field(scene: Scene) -> None:
    assert_refused(scene, UNKNOWN_FIELDS)


# fmt: off
BAD_IDS_IN_BODIES = [
    Case("a word for a person", "POST", ADMIT, {"person_id": "not-a-uuid"}, "person_id"),
    Case("an empty id", "POST", ADMIT, {"person_id": ""}, "person_id"),
    Case("a number for an id", "POST", ADMIT, {"person_id": 12345}, "person_id"),
    Case("a uuid with a g in it", "POST", "/v1/cooperatives",
         founding(mentor_id="12345678-1234-1234-1234-12345678901g"), "mentor_id"),
    Case("a founding member's id cut short", "POST", "/v1/cooperatives",
         founding(members=[{"person_id": "12345678-1234"}]),
         "members.0.person_id"),
    Case("the second employee", "POST", "/v1/conversions",
         conversion(employees=["{peer}", "nope"]), "employees.1"),
    Case("SQL for a member", "POST", HANDOVER,
         {"to_member": "'; DROP TABLE people; --"}, "to_member"),
    Case("a subject that is no id", "POST", PROPOSALS,
         {"kind": "appoint_coordinator", "text": "t", "subject": "Bram"}, "subject"),
    Case("a mover that is no id", "POST", PROPOSALS,
         {"kind": "split", "text": "t", "split": {"new_name": "B", "moving_members": ["zz"]}},
         "split.moving_members.0"),
]
# fmt: on


def test_malformed_ids_in_bodies_are_refused_with_422_naming_the_field(scene: Scene) -> None:
    assert_refused(scene, BAD_IDS_IN_BODIES)


# fmt: off
UNKNOWN_IDS_IN_BODIES = [
    Case("admitting nobody", "POST", ADMIT, {"person_id": UNREGISTERED}, "person_id", 404,
         "person_not_found"),
    Case("founding with a mentor nobody registered", "POST", "/v1/cooperatives",
         founding(mentor_id=UNREGISTERED), "mentor_id", 404, "person_not_found"),
    Case("converting nobody", "POST", "/v1/conversions", conversion(employees=[UNREGISTERED]),
         "employees", 404, "person_not_found"),
]
# fmt: on


def test_ids_nobody_registered_are_refused_with_404_naming_the_field(scene: Scene) -> None:
    assert_refused(scene, UNKNOWN_IDS_IN_BODIES)


# fmt: off
BAD_IDS_IN_PATHS = [
    Case("a cooperative id that is a word", "POST", "/v1/cooperatives/de-schoonmakers/work",
         {"client_ref": "x"}, "coop_id"),
    Case("reading a roster by number", "GET", "/v1/cooperatives/123/roster", None, "coop_id"),
    Case("a cooperative's state by a word", "GET", "/v1/cooperatives/abc", None, "coop_id"),
    Case("a work id that is a word", "POST", "/v1/cooperatives/{coop}/work/klus/hours",
         {"minutes": 30}, "work_id"),
    Case("a proposal id that is a word", "PUT", "/v1/cooperatives/{coop}/proposals/x/vote",
         {"choice": "for"}, "proposal_id"),
    Case("reading a proposal by a word", "GET", "/v1/cooperatives/{coop}/proposals/x", None,
         "proposal_id"),
    Case("an invoice number that is a word", "POST",
         "/v1/cooperatives/{coop}/invoices/een/payments", {"amount_cents": 1},
         "number"),
    Case("erasing a person by a word", "DELETE", "/v1/people/anouk/personal-data", None,
         "person_id"),
    Case("reading a person by a word", "GET", "/v1/people/anouk", None, "person_id"),
    Case("a conversion id that is a word", "GET", "/v1/conversions/schoon", None,
         "conversion_id"),
    Case("an audit filter on a word", "GET", "/v1/cooperatives/{coop}/audit?member=anouk", None,
         "member"),
]
# fmt: on


def test_malformed_ids_in_paths_are_refused_with_422_naming_the_parameter(scene: Scene) -> None:
    assert_refused(scene, BAD_IDS_IN_PATHS)


# fmt: off
UNKNOWN_IDS_IN_PATHS = [
    Case("work in a cooperative nobody founded", "POST", f"/v1/cooperatives/{UNREGISTERED}/work",
         {"client_ref": "x"}, None, 404, "cooperative_not_found"),
    Case("hours on work nobody took", "POST", f"{WORK}/{UNREGISTERED}/hours",
         {"minutes": 30}, "work_id", 404, "work_not_found"),
    Case("a vote on no proposal", "PUT", f"{PROPOSALS}/{UNREGISTERED}/vote",
         {"choice": "for"}, "proposal_id", 404, "proposal_not_found"),
    Case("paying invoice 99", "POST", "/v1/cooperatives/{coop}/invoices/99/payments",
         {"amount_cents": 1}, "number", 404, "invoice_not_found"),
]
# fmt: on


def test_ids_of_nothing_in_paths_are_refused_with_404(scene: Scene) -> None:
    assert_refused(scene, UNKNOWN_IDS_IN_PATHS, check_field=False)


# fmt: off
MISSING = [
    Case("work without a client", "POST", WORK, {}, "client_ref"),
    Case("hours without minutes", "POST", HOURS, {"worked_on": "2025-01-06"}, "minutes"),
    Case("a handover to nobody", "POST", HANDOVER, {}, "to_member"),
    Case("a vote without a choice", "PUT", VOTE, {"reason": "ik twijfel"}, "choice"),
    Case("a proposal without a kind", "POST", PROPOSALS, {"text": "t"}, "kind"),
    Case("a proposal without a text", "POST", PROPOSALS, {"kind": "general"}, "text"),
    Case("an invoice without a rate", "POST", INVOICES, {"client_ref": "Familie Jansen"},
         "hourly_rate_cents"),
    Case("a payment without an amount", "POST", PAYMENTS, {}, "amount_cents"),
    Case("a founding without a mentor", "POST", "/v1/cooperatives",
         {k: v for k, v in founding().items() if k != "mentor_id"}, "mentor_id"),
    Case("a founding member without an id", "POST", "/v1/cooperatives", founding(members=[{}]),
         "members.0.person_id"),
    Case("a founding without members", "POST", "/v1/cooperatives", founding(members=[]),
         "members"),
    Case("a person without a name", "POST", "/v1/people", {"contact": "a@example.org"}, "name"),
    Case("admitting without a person", "POST", ADMIT, {"conversation_group": "g2"}, "person_id"),
    Case("a conversion without employees", "POST", "/v1/conversions",
         {k: v for k, v in conversion().items() if k != "employees"}, "employees"),
    Case("no body at all", "POST", WORK, b"", None),
    Case("null for the body", "POST", WORK, b"null", None),
]
# fmt: on


def test_missing_fields_are_refused_with_422_naming_the_field(scene: Scene) -> None:
    assert_refused(scene, MISSING)


def numbers(scene: Scene) -> list[Case]:
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    rate = {"client_ref": "Familie Jansen"}
    # fmt: off
    return [
        *[
            Case(f"{n} minutes", "POST", HOURS, {"minutes": n}, "minutes")
            for n in (0, -30, 1441, 10**30)
        ],
        *[
            Case(f"a rate of {n} cents", "POST", INVOICES, {**rate, "hourly_rate_cents": n},
                 "hourly_rate_cents")
            for n in (0, -4500, 10_000_001, 2**63)
        ],
        *[
            Case(f"a payment of {n} cents", "POST", PAYMENTS, {"amount_cents": n}, "amount_cents")
            for n in (0, -1, 10**12 + 1)
        ],
        Case("paying more than is owed", "POST", PAYMENTS, {"amount_cents": 10**9},
             "amount_cents", 409, "payment_exceeds_outstanding"),
        *[
            Case(f"invoice number {n}", "POST", f"/v1/cooperatives/{{coop}}/invoices/{n}/payments",
                 {"amount_cents": 1}, "number")
            for n in (0, -1, 10**9 + 1, 10**30)
        ],
        *[
            Case(f"a cap of {n}", "POST", "/v1/cooperatives", founding(rules={"member_cap": n}),
                 "rules.member_cap")
            for n in (0, -20, 1001)
        ],
        Case("a cap of 21", "POST", "/v1/cooperatives", founding(rules={"member_cap": 21}),
             "member_cap", 422, "cap_above_maximum"),
        Case("a quorum of everyone", "POST", "/v1/cooperatives",
             founding(rules={"quorum_numerator": 2, "quorum_denominator": 2}),
             "quorum_numerator"),
        Case("a quorum over zero", "POST", "/v1/cooperatives",
             founding(rules={"quorum_denominator": 0}), "rules.quorum_denominator"),
        Case("a deadline in the past", "POST", PROPOSALS,
             {"kind": "general", "text": "t", "closes_at": an_hour_ago}, "closes_at"),
        Case("hours worked the day after tomorrow", "POST", HOURS,
             {"minutes": 30, "worked_on": tomorrow}, "worked_on"),
        Case("a blank text", "POST", PROPOSALS, {"kind": "general", "text": "   "}, "text"),
        Case("a blank name", "POST", "/v1/people", {"name": "   "}, "name"),
        Case("a name of 201 characters", "POST", "/v1/people", {"name": "a" * 201}, "name"),
        Case("an audit page of none", "GET", "/v1/cooperatives/{coop}/audit?limit=0", None,
             "limit"),
        Case("an audit page of 1001", "GET", "/v1/cooperatives/{coop}/audit?limit=1001", None,
             "limit"),
        Case("an audit cursor below zero", "GET", "/v1/cooperatives/{coop}/audit?cursor=-1", None,
             "cursor"),
        Case("a directory page of 501", "GET", "/v1/cooperatives?limit=501", None, "limit"),
        Case("a position below zero", "GET", "/v1/cooperatives/{coop}/roster?min_position=-1",
             None, "min_position"),
        Case("an audit window without a time zone", "GET",
             "/v1/cooperatives/{coop}/audit?since=2025-01-01T00:00:00", None,
             "since"),
    ]
    # fmt: on


def test_numbers_out_of_range_are_refused_naming_the_field(scene: Scene) -> None:
    assert_refused(scene, numbers(scene))


def test_a_deadline_without_a_time_zone_is_refused_with_422(scene: Scene) -> None:
    # A naive moment cannot be compared with the ledger's UTC clock; it is input at fault.
    body = {"kind": "general", "text": "Vrijdag vrij?", "closes_at": "2099-01-01T12:00:00"}
    assert_refused(scene, [Case("a naive deadline", "POST", PROPOSALS, body, "closes_at")])


def test_a_directory_cursor_not_made_by_the_directory_is_refused_naming_the_cursor(
    scene: Scene,
) -> None:
    cases = [
        Case(f"cursor {c!r}", "GET", f"/v1/cooperatives?cursor={c}", None, "cursor")
        for c in ("garbage!!", "bm90IGEgY3Vyc29y", "MjAyNXxub3QtYS11dWlk")
    ]
    assert_refused(scene, cases)


# ---- bodies too large -----------------------------------------------------------------

LIMIT = 64 * 1024


def test_a_body_over_the_limit_is_refused_with_413(scene: Scene) -> None:
    case = Case(
        "a declared 70 KB body",
        "POST",
        WORK,
        {"client_ref": "x" * 70_000},
        None,
        413,
        "body_too_large",
    )
    assert_refused(scene, [case])


def test_a_body_of_exactly_the_limit_is_read_and_judged_on_its_content(scene: Scene) -> None:
    head, tail = b'{"client_ref": "x", "description": "', b'"}'
    body = head + b"d" * (LIMIT - len(head) - len(tail)) + tail
    assert len(body) == LIMIT
    assert_refused(scene, [Case("a 64 KiB description", "POST", WORK, body, "description")])


def chunks(body: bytes, size: int = 8192) -> Any:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_streamed_body_under_the_limit_is_read(scene: Scene) -> None:
    api = scene.world.api
    response = api.client.post(
        scene.fill(WORK),
        content=chunks(b'{"client_ref": "Familie Smit", "description": "' + b"d" * 3000 + b'"}'),
        headers={**scene.world.member.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert "content-length" not in {k.lower() for k in response.request.headers}


def test_a_streamed_body_over_the_limit_is_refused_with_413(scene: Scene) -> None:
    api = scene.world.api
    before = api.head()
    body = b'{"client_ref": "' + b"x" * 100_000 + b'"}'
    response = api.client.post(
        scene.fill(WORK),
        content=chunks(body),
        headers={**scene.world.member.headers, "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    case = Case("a streamed 100 KB body", "POST", WORK, None, None, 413, "body_too_large")
    assert refusal_problems(response, case) == []
    assert api.head() == before


# ---- headers ------------------------------------------------------------------------


def test_an_invalid_if_match_is_refused_with_400(scene: Scene) -> None:
    api = scene.world.api
    failures = []
    for value in ("abc", '"v1"', "1.5", "-1", '"-1"', "1234567890123", "", "W/", "1, 2"):
        before = api.written(scene.world.coop)
        response = api.client.post(
            scene.fill(WORK),
            json={"client_ref": "Familie Smit"},
            headers={**scene.world.member.headers, "If-Match": value},
        )
        case = Case("", "POST", WORK, None, "If-Match", 400, "invalid_if_match")
        failures += [f"If-Match {value!r}: {p}" for p in refusal_problems(response, case)]
        if api.written(scene.world.coop) != before:
            failures.append(f"If-Match {value!r}: something was written")
    assert failures == [], "\n".join(failures)


def test_an_invalid_idempotency_key_is_refused_with_400(scene: Scene) -> None:
    api = scene.world.api
    failures = []
    for key in ("", "k" * 201, "tab\there", "bell\x07", "delete\x7f"):
        before = api.head()
        response = api.client.post(
            scene.fill(WORK),
            json={"client_ref": "Familie Smit"},
            headers={**scene.world.member.headers, "Idempotency-Key": key},
        )
        case = Case("", "POST", WORK, None, "Idempotency-Key", 400, "invalid_idempotency_key")
        failures += [f"key {key!r}: {p}" for p in refusal_problems(response, case)]
        if api.head() != before:
            failures.append(f"key {key!r}: something was written")
    assert failures == [], "\n".join(failures)


# ---- text is data ---------------------------------------------------------------------

SQL = {
    "name": "Robert'); DROP TABLE people;--",
    "contact": "x' OR '1'='1' --",
    "coop name": "Coop'; DELETE FROM directory_cooperatives; --",
    "sector": "cleaning' UNION SELECT token_hash FROM people --",
    "conversation group": 'g1"; UPDATE roster_members SET left_at = 1; --',
    "founding reason": "1; DROP SCHEMA public CASCADE; --",
    "client_ref": "Klant'); DROP TABLE work_items; -- {people} %s ? %(x)s",
    "work reason": "$$; TRUNCATE stored_events; $$",
    "text": "'; UPDATE governance_proposals SET outcome = 'adopted'; --",
    "vote reason": "\\'; SELECT pg_sleep(10); --",
    "invoice reason": 'Robert"); DROP TABLE invoices; /* */ --',
    "payment reason": "%' OR 1=1 -- _ %",
    "company": "Schoon BV'); DELETE FROM people WHERE ('1'='1",
}


def test_sql_in_every_text_field_is_stored_verbatim_and_read_back_unchanged(api: Api) -> None:
    world = World.build(api)
    person = api.ok("POST", "/v1/people", None, {"name": SQL["name"], "contact": SQL["contact"]})
    founded = api.ok(
        "POST",
        "/v1/cooperatives",
        None,
        {
            "name": SQL["coop name"],
            "sector": SQL["sector"],
            "members": [
                {"person_id": person["id"], "conversation_group": SQL["conversation group"]},
                {"person_id": world.member.id},
            ],
            "mentor_id": world.mentor.id,
            "reason": SQL["founding reason"],
        },
    )
    coop = founded["cooperative_id"]
    member = world.member
    work = api.ok(
        "POST",
        f"/v1/cooperatives/{coop}/work",
        member,
        {"client_ref": SQL["client_ref"], "reason": SQL["work reason"]},
    )["result"]["work_id"]
    api.log_hours(coop, member, work)
    proposal = api.ok(
        "POST",
        f"/v1/cooperatives/{coop}/proposals",
        member,
        {"kind": "general", "text": SQL["text"]},
    )["result"]["proposal_id"]
    api.ok(
        "PUT",
        f"/v1/cooperatives/{coop}/proposals/{proposal}/vote",
        member,
        {"choice": "for", "reason": SQL["vote reason"]},
    )
    number = api.ok(
        "POST",
        f"/v1/cooperatives/{coop}/invoices",
        world.mentor,
        {
            "client_ref": SQL["client_ref"],
            "hourly_rate_cents": 4500,
            "reason": SQL["invoice reason"],
        },
    )["result"]["invoice_number"]
    last = api.ok(
        "POST",
        f"/v1/cooperatives/{coop}/invoices/{number}/payments",
        world.mentor,
        {"amount_cents": 100, "reason": SQL["payment reason"]},
    )["position"]
    converted = api.ok(
        "POST",
        "/v1/conversions",
        None,
        {
            "company": SQL["company"],
            "sector": SQL["sector"],
            "employees": [world.peer.id],
            "mentor_id": world.mentor.id,
        },
    )["cooperatives"][0]
    last = max(last, converted["position"])

    def read(path: str, **params: Any) -> Any:
        response = api.get(path, member, min_position=last, **params)
        assert response.status_code == 200, response.text
        return response.json()

    base = f"/v1/cooperatives/{coop}"
    me = api.get(f"/v1/people/{person['id']}").json()
    assert (me["name"], me["contact"]) == (SQL["name"], SQL["contact"])
    state = read(base)
    assert (state["name"], state["sector"]) == (SQL["coop name"], SQL["sector"])
    listed = read("/v1/cooperatives", sector=SQL["sector"])["items"]
    assert [(c["id"], c["name"]) for c in listed] == [
        (coop, SQL["coop name"]),
        (converted["cooperative_id"], SQL["company"]),
    ]
    roster = {m["person_id"]: m for m in read(f"{base}/roster")["members"]}
    assert roster[person["id"]]["name"] == SQL["name"]
    assert roster[person["id"]]["conversation_group"] == SQL["conversation group"]
    allocation = read(f"{base}/work-allocation")
    held = {m["person_id"]: m["open_work"] for m in allocation["members"]}
    assert [w["client_ref"] for w in held[member.id]] == [SQL["client_ref"]]
    assert [c["client_ref"] for c in allocation["client_contacts"]] == [SQL["client_ref"]]
    assert [p["text"] for p in read(f"{base}/proposals")["items"]] == [SQL["text"]]
    invoices = read(f"{base}/invoices")["items"]
    assert [i["client_ref"] for i in invoices] == [SQL["client_ref"]]
    assert [o["client_ref"] for o in read(f"{base}/invoices/outstanding")["items"]] == [
        SQL["client_ref"]
    ]
    reasons = {e["kind"]: e["reason"] for e in read(f"{base}/audit")["items"]}
    assert reasons["Founded"] == SQL["founding reason"]
    assert reasons["WorkTaken"] == SQL["work reason"]
    assert reasons["VoteCast"] == SQL["vote reason"]
    assert reasons["InvoiceIssued"] == SQL["invoice reason"]
    assert reasons["InvoicePaid"] == SQL["payment reason"]
    assert read(f"{base}/audit", kind="' OR '1'='1")["items"] == []
    # And nothing ran: every table is still there and every projection still follows.
    statuses = api.get("/v1/projections").json()["items"]
    assert {s["state"] for s in statuses} == {"running"}, statuses


def test_text_with_a_nul_character_is_refused_or_kept_without_stopping_a_projection(
    api: Api,
) -> None:
    # PostgreSQL TEXT cannot hold NUL; SQLite can. Either answer is fine, on both stores:
    # refuse it (422 naming the field) and write nothing, or keep it and show it back
    # unchanged. Never a 500, and never an event the projections cannot apply.
    world = World.build(api)
    text = "Familie\x00Jansen"
    coop = f"/v1/cooperatives/{world.coop}"
    failures = []
    for field, path, body in [
        ("name", "/v1/people", {"name": text}),
        ("client_ref", f"{coop}/work", {"client_ref": text}),
        ("reason", f"{coop}/work", {"client_ref": "Familie Smit", "reason": text}),
    ]:
        before = api.head()
        headers = api.admin if field == "name" else world.member.headers
        response = api.client.post(path, json=body, headers=headers)
        if not response.is_success:
            case = Case(field, "POST", path, body, field)
            failures += [f"{field}: {p}" for p in refusal_problems(response, case)]
            if api.head() != before:
                failures.append(f"{field}: refused, but something was written")
            continue
        answer = response.json()
        if field == "name":
            shown = api.get(f"/v1/people/{answer['id']}").json()["name"]
        elif field == "client_ref":
            allocation = api.get(f"{coop}/work-allocation", min_position=answer["position"])
            contacts = allocation.json().get("client_contacts", [])
            shown = next((c["client_ref"] for c in contacts if "\x00" in c["client_ref"]), None)
        else:
            audit = api.get(f"{coop}/audit", min_position=answer["position"], kind="WorkTaken")
            shown = (audit.json().get("items") or [{}])[-1].get("reason")
        if shown != text:
            failures.append(f"{field}: kept, but read back as {shown!r}")
    statuses = api.get("/v1/projections").json()["items"]
    failures += [f"projection {s['name']} stopped: {s['error']}" for s in statuses if s["error"]]
    assert failures == [], "\n".join(failures)
