"""Exports, receipts and checkpoints over HTTP, checked with the standalone verifier."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest

from ledger.application import Ledger
from ledger.export import export_history
from tests.e2e.support import Api, World

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_export.py"


def load_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_export", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_export"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ve = load_verifier()


@pytest.fixture
def world(api: Api) -> World:
    return World.build(api)


def ledger_of(world: World) -> Ledger:
    ledger: Ledger = world.api.client.app.state.services.ledger  # type: ignore[attr-defined]
    return ledger


def without_exported_at(data: bytes) -> tuple[dict[str, Any], bytes]:
    header, _, rest = data.partition(b"\n")
    fields = json.loads(header)
    fields.pop("exported_at")
    return fields, rest


def test_the_export_streams_what_export_history_writes(world: World) -> None:
    api, coop = world.api, world.coop
    api.take_work(coop, world.member)
    response = api.get(f"/v1/cooperatives/{coop}/export", world.member)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["content-disposition"] == f'attachment; filename="coop-{coop}.ndjson"'
    assert response.headers["cache-control"] == "no-store"
    direct = b"".join(export_history(ledger_of(world), UUID(coop)))
    assert without_exported_at(response.content) == without_exported_at(direct)
    assert ve.verify(response.content).startswith(f"OK {coop}:")


def test_the_export_is_for_insiders_only(world: World) -> None:
    api, coop = world.api, world.coop
    assert api.get(f"/v1/cooperatives/{coop}/export", world.mentor).status_code == 200
    assert api.get(f"/v1/cooperatives/{coop}/export").status_code == 200  # the facilitator
    refused = api.get(f"/v1/cooperatives/{coop}/export", world.outsider)
    assert refused.status_code == 403
    assert refused.json()["error"] == "not_a_member"
    assert "content-disposition" not in refused.headers
    assert api.client.get(f"/v1/cooperatives/{coop}/export").status_code == 401
    unknown = api.get("/v1/cooperatives/00000000-0000-4000-8000-000000000000/export")
    assert unknown.status_code == 404
    # Only a UUID reaches the filename: anything else stops at validation.
    hostile = api.get('/v1/cooperatives/x"%0d%0aSet-Cookie:%20a=b/export')
    assert hostile.status_code in (404, 422)
    assert "set-cookie" not in hostile.headers
    assert "content-disposition" not in hostile.headers


def test_receipts_over_http_match_command_responses_and_the_export(world: World) -> None:
    api, coop = world.api, world.coop
    answer = api.ok("POST", f"/v1/cooperatives/{coop}/work", world.member, {"client_ref": "A"})
    current = api.get(f"/v1/cooperatives/{coop}/receipt", world.member)
    assert current.status_code == 200, current.text
    assert current.json() == answer["receipt"]
    first = api.get(f"/v1/cooperatives/{coop}/receipt", world.peer, version=1).json()
    assert first["version"] == 1
    export = api.get(f"/v1/cooperatives/{coop}/export", world.member).content
    kept = [("now", current.json()), ("first", first), ("response", answer)]
    assert ve.verify(export, kept).startswith("OK")
    beyond = api.get(
        f"/v1/cooperatives/{coop}/receipt", world.member, version=answer["version"] + 1
    )
    assert beyond.status_code == 404
    assert api.get(f"/v1/cooperatives/{coop}/receipt", world.member, version=0).status_code == 422
    assert api.get(f"/v1/cooperatives/{coop}/receipt", world.outsider).status_code == 403


def test_the_facilitator_makes_checkpoints_that_anyone_signed_in_reads(world: World) -> None:
    api, coop = world.api, world.coop
    assert api.get("/v1/checkpoints/latest", world.member).status_code == 404
    assert api.client.post("/v1/checkpoints", headers=world.member.headers).status_code == 403
    assert api.client.post("/v1/checkpoints").status_code == 401
    made = api.client.post("/v1/checkpoints", headers=api.admin)
    assert made.status_code == 201, made.text
    checkpoint = made.json()
    assert made.headers["location"] == f"/v1/checkpoints/{checkpoint['id']}"
    assert [h["cooperative_id"] for h in checkpoint["heads"]] == [coop]
    for reader in (world.member, world.outsider):
        assert api.get("/v1/checkpoints/latest", reader).json() == checkpoint
        assert api.get(made.headers["location"], reader).json() == checkpoint
    assert api.get("/v1/checkpoints/999").status_code == 404
    assert api.client.get("/v1/checkpoints/latest").status_code == 401

    export = api.get(f"/v1/cooperatives/{coop}/export", world.member).content
    receipt = api.get(f"/v1/cooperatives/{coop}/receipt", world.member).json()
    summary = ve.verify(
        export, [("receipt", receipt)], checkpoint, public_key=checkpoint["public_key"]
    )
    assert summary.startswith(f"OK {coop}:")
    # Later work moves the head on; the earlier checkpoint still holds for the longer history.
    api.take_work(coop, world.member)
    longer = api.get(f"/v1/cooperatives/{coop}/export", world.member).content
    assert ve.verify(longer, [("receipt", receipt)], checkpoint).startswith("OK")
    second = api.client.post("/v1/checkpoints", headers=api.admin).json()
    assert second["id"] == checkpoint["id"] + 1
    assert second["public_key"] == checkpoint["public_key"]
    assert api.get("/v1/checkpoints/latest", world.member).json() == second
