"""Who may do what: every command and every read, against every kind of caller.

Each command runs once per actor, in a state where it would otherwise succeed, so
a refusal is about who asks, never about the state. A refused command answers 401
(anonymous) or 403 (everyone else) in the one error shape, and writes nothing: the
ledger's head and the cooperative's version stay where they were.

States are built through the HTTP API and shared between cases; a command that
uses up its state (closing a proposal, leaving, crediting an invoice ...) gets a
fresh one before each further case that is allowed to run it. The refusals run
first, on the state the first allowed case then uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.support import Api, Call, Person, Stage, World

ACTORS = ("anonymous", "outsider", "member", "mentor", "coordinator", "facilitator")
A, D = "allow", "deny"

# Who may run each command. "member" is an ordinary member; where a command acts on
# one member's work, that member is "member" and the coordinator is another member.
# The mentor is in the mentor year, except for the handover, which comes after it.
# fmt: off
COMMANDS: dict[str, tuple[str, ...]] = {
    #                                          anon out mem ment coord facil
    "register a person":                       (D,  D,  D,  D,   D,    A),
    "erase another person's personal data":    (D,  D,  D,  D,   D,    A),
    "found a cooperative":                     (D,  D,  D,  D,   D,    A),
    "convert a company":                       (D,  D,  D,  D,   D,    A),
    "admit a founding member":                 (D,  D,  D,  A,   D,    D),
    "leave the cooperative":                   (D,  D,  A,  D,   A,    D),
    "step down as coordinator":                (D,  D,  D,  D,   A,    D),
    "record the mentorship handover":          (D,  D,  A,  A,   A,    D),
    "raise a proposal":                        (D,  D,  A,  D,   A,    D),
    "vote":                                    (D,  D,  A,  D,   A,    D),
    "close a proposal":                        (D,  D,  A,  A,   A,    D),
    "take work":                               (D,  D,  A,  D,   A,    D),
    "log hours on the member's work":          (D,  D,  A,  D,   D,    D),
    "hand over the member's work":             (D,  D,  A,  D,   D,    D),
    "accept work handed over to the member":   (D,  D,  A,  D,   D,    D),
    "complete the member's work":              (D,  D,  A,  D,   D,    D),
    "issue an invoice":                        (D,  D,  D,  A,   A,    D),
    "register a payment":                      (D,  D,  D,  A,   A,    D),
    "credit an invoice":                       (D,  D,  D,  A,   A,    D),
}

# The status of each read. Insiders (members, the mentor, the facilitator) read a
# cooperative's internals; the directory and the family tree are for anyone known.
READS: dict[str, tuple[int, ...]] = {
    #                                          anon out  mem  ment coord facil
    "cooperative state":                       (401, 403, 200, 200, 200, 200),
    "roster":                                  (401, 403, 200, 200, 200, 200),
    "work allocation":                         (401, 403, 200, 200, 200, 200),
    "audit trail":                             (401, 403, 200, 200, 200, 200),
    "equality indicators":                     (401, 403, 200, 200, 200, 200),
    "decisions register":                      (401, 403, 200, 200, 200, 200),
    "one proposal":                            (401, 403, 200, 200, 200, 200),
    "invoices":                                (401, 403, 200, 200, 200, 200),
    "outstanding per client":                  (401, 403, 200, 200, 200, 200),
    "directory":                               (401, 200, 200, 200, 200, 200),
    "family tree":                             (401, 200, 200, 200, 200, 200),
    "a conversion":                            (401, 200, 200, 200, 200, 200),
    "projection status":                       (401, 200, 200, 200, 200, 200),
    "one's own person record":                 (401, 200, 200, 200, 200, 200),
    "another person's record":                 (401, 403, 403, 403, 403, 200),
}
# fmt: on

READ_PATHS = {
    "cooperative state": "/v1/cooperatives/{coop}",
    "roster": "/v1/cooperatives/{coop}/roster",
    "work allocation": "/v1/cooperatives/{coop}/work-allocation",
    "audit trail": "/v1/cooperatives/{coop}/audit",
    "equality indicators": "/v1/cooperatives/{coop}/equality",
    "decisions register": "/v1/cooperatives/{coop}/proposals",
    "one proposal": "/v1/cooperatives/{coop}/proposals/{proposal}",
    "invoices": "/v1/cooperatives/{coop}/invoices",
    "outstanding per client": "/v1/cooperatives/{coop}/invoices/outstanding",
    "directory": "/v1/cooperatives",
    "family tree": "/v1/cooperatives/{coop}/family-tree",
    "a conversion": "/v1/conversions/{conversion}",
    "projection status": "/v1/projections",
    "one's own person record": "/v1/people/me",
    "another person's record": "/v1/people/{peer}",
}

ERROR_KEYS = {"error", "message", "field"}


# How to prepare each command, and whether running it uses its state up.
PREPARE: dict[str, tuple[Callable[[Stage], Call], bool]] = {
    "register a person": (Stage.register_person, False),
    "erase another person's personal data": (Stage.erase_another_person, True),
    "found a cooperative": (Stage.found, False),
    "convert a company": (Stage.convert, False),
    "admit a founding member": (Stage.admit, True),
    "leave the cooperative": (Stage.leave, True),
    "step down as coordinator": (Stage.step_down, True),
    "record the mentorship handover": (Stage.mentorship_handover, True),
    "raise a proposal": (Stage.raise_proposal, False),
    "vote": (Stage.vote, False),
    "close a proposal": (Stage.close, True),
    "take work": (Stage.take_work, False),
    "log hours on the member's work": (Stage.log_hours, False),
    "hand over the member's work": (Stage.hand_over, False),
    "accept work handed over to the member": (Stage.accept, True),
    "complete the member's work": (Stage.complete, True),
    "issue an invoice": (Stage.issue_invoice, True),
    "register a payment": (Stage.register_payment, False),
    "credit an invoice": (Stage.credit, True),
}


def headers_of(world: World, actor: str) -> dict[str, str]:
    if actor == "anonymous":
        return {}
    if actor == "facilitator":
        return world.api.admin
    person: Person = getattr(world, actor)
    return person.headers


def refusal_problem(actor: str, response: httpx.Response) -> str | None:
    """What is wrong with a refusal (None when it is the right one)."""
    expected = 401 if actor == "anonymous" else 403
    if response.status_code != expected:
        return f"answered {response.status_code} instead of {expected}: {response.text}"
    body = response.json()
    if set(body) != ERROR_KEYS or not body["error"] or not body["message"]:
        return f"error shape is {body}"
    if actor == "anonymous" and "WWW-Authenticate" not in response.headers:
        return "a 401 without WWW-Authenticate"
    return None


def observe(api: Api, call: Call) -> tuple[Any, ...]:
    return (*api.written(call.coop), call.unchanged() if call.unchanged else None)


def grid(observed: dict[str, dict[str, int]]) -> str:
    width = max(len(name) for name in observed)
    lines = [" " * width + "  " + " ".join(f"{a[:5]:>5}" for a in ACTORS)]
    for name, row in observed.items():
        lines.append(f"{name:<{width}}  " + " ".join(f"{row.get(a, 0):>5}" for a in ACTORS))
    return "\n".join(lines)


def test_the_tables_name_every_actor_and_every_command() -> None:
    assert set(COMMANDS) == set(PREPARE)
    assert all(len(row) == len(ACTORS) for row in COMMANDS.values())
    assert all(len(row) == len(ACTORS) for row in READS.values())
    assert set(READS) == set(READ_PATHS)


def test_every_command_is_refused_to_everyone_the_table_does_not_allow(api: Api) -> None:
    world = World.build(api)
    stage = Stage(world)
    unexpected_allows: list[str] = []
    problems: list[str] = []
    observed: dict[str, dict[str, int]] = {}
    for command, row in COMMANDS.items():
        prepare, uses_up_its_state = PREPARE[command]
        expected = dict(zip(ACTORS, row, strict=True))
        refused_first = [a for a in ACTORS if expected[a] == D] + [
            a for a in ACTORS if expected[a] == A
        ]
        call: Call | None = None
        for actor in refused_first:
            if call is None:
                call = prepare(stage)
            before = observe(api, call)
            response = api.client.request(
                call.method, call.path, json=call.body, headers=headers_of(world, actor)
            )
            observed.setdefault(command, {})[actor] = response.status_code
            case = f"{command} as {actor}"
            if expected[actor] == A:
                if not response.is_success:
                    problems.append(f"{case}: should run, {response.status_code} {response.text}")
            elif response.is_success:
                unexpected_allows.append(f"{case}: ran ({response.status_code})")
            else:
                problem = refusal_problem(actor, response)
                if problem:
                    problems.append(f"{case}: {problem}")
                if observe(api, call) != before:
                    problems.append(f"{case}: refused, but something was written")
            if response.is_success and uses_up_its_state:
                call = None
    report = "\n".join(["observed statuses:", grid(observed), *unexpected_allows, *problems])
    assert len(unexpected_allows) == 0, report
    assert problems == [], report


def test_insiders_read_a_cooperatives_internals_and_anyone_known_reads_the_directory(
    api: Api,
) -> None:
    world = World.build(api)
    proposal = api.raise_proposal(world.coop, world.member)
    work = api.take_work(world.coop, world.member, "Gemeente Utrecht")
    api.log_hours(world.coop, world.member, work)
    api.issue_invoice(world.coop, world.coordinator, "Gemeente Utrecht")
    converted = api.ok(
        "POST",
        "/v1/conversions",
        None,
        {
            "company": "Schoon BV",
            "sector": "cleaning",
            "employees": [world.peer.id],
            "mentor_id": world.mentor.id,
        },
    )
    position = converted["cooperatives"][0]["position"]
    directory = api.get("/v1/cooperatives", min_position=position).json()["items"]
    conversion = next(c["conversion_id"] for c in directory if c["conversion_id"])
    values = {
        "coop": world.coop,
        "proposal": proposal,
        "conversion": conversion,
        "peer": world.peer.id,
    }
    observed: dict[str, dict[str, int]] = {}
    problems = []
    for read, row in READS.items():
        path = READ_PATHS[read].format(**values)
        for actor, expected in zip(ACTORS, row, strict=True):
            response = api.client.get(path, headers=headers_of(world, actor))
            observed.setdefault(read, {})[actor] = response.status_code
            if response.status_code != expected:
                problems.append(f"{read} as {actor}: {response.status_code}, not {expected}")
            elif expected >= 400 and set(response.json()) != ERROR_KEYS:
                problems.append(f"{read} as {actor}: error shape is {response.json()}")
    assert problems == [], "\n".join(["observed statuses:", grid(observed), *problems])


def test_every_person_may_erase_their_own_personal_data(api: Api) -> None:
    world = World.build(api)
    before = api.head()
    for actor in ("outsider", "member", "mentor", "coordinator"):
        person: Person = getattr(world, actor)

        anonymous = api.client.delete(f"/v1/people/{person.id}/personal-data")
        erased = api.client.delete(f"/v1/people/{person.id}/personal-data", headers=person.headers)

        assert anonymous.status_code == 401, actor
        assert erased.status_code == 204, f"{actor}: {erased.text}"
        assert api.get(f"/v1/people/{person.id}").json()["erased"] is True, actor
    assert api.head() == before, "erasure keeps the ledger whole: it writes no event"
