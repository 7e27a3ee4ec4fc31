"""Proofs to keep outside the service: exports, receipts and signed checkpoints.

An export and a receipt show a cooperative's internals, so only insiders get them. A
checkpoint lists every cooperative's id, version and chain head (what the directory already
shows any authenticated person, plus hashes), so anyone signed in may read one; only the
facilitator makes one, since each is kept for good.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import CurrentPerson, Facilitator, Insider, ServicesDep
from api.errors import ApiError
from api.schemas import ReceiptOut
from ledger.checkpoint import record_checkpoint, stored_checkpoint
from ledger.export import export_history

router = APIRouter(prefix="/v1", tags=["proofs"])

NDJSON = "application/x-ndjson"


class HeadOut(BaseModel):
    cooperative_id: UUID
    version: int
    chain_head: str


class CheckpointOut(BaseModel):
    """Keep it outside the service; ledger/checkpoint.py documents how to recompute it."""

    id: int = Field(description="The service's number for its copy; not part of what is signed.")
    format: str
    created_at: str
    heads: list[HeadOut]
    root: str = Field(description="RFC 6962 Merkle root over the heads, SHA-256, hex.")
    public_key: str = Field(description="The service's raw Ed25519 public key, hex.")
    signature: str = Field(description="Ed25519 over format, created_at and root, hex.")


@router.get(
    "/cooperatives/{coop_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}, "description": "The history as NDJSON."}},
)
def export(coop_id: UUID, _: Insider, services: ServicesDep) -> StreamingResponse:
    """The cooperative's full history with its chain links; check it with verify_export.py."""
    # Read before the response starts, so an unknown cooperative is still a clean 404.
    chunks = export_history(services.ledger, coop_id)
    return StreamingResponse(
        chunks,
        media_type=NDJSON,
        headers={
            # Built from the parsed UUID alone: nothing the client sent verbatim reaches
            # the header, so no quote or line break can be injected.
            "Content-Disposition": f'attachment; filename="coop-{coop_id}.ndjson"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/cooperatives/{coop_id}/receipt", response_model=ReceiptOut)
def receipt(
    coop_id: UUID,
    coop: Insider,
    services: ServicesDep,
    version: Annotated[int | None, Query(ge=1, description="Default: the current version.")] = None,
) -> ReceiptOut:
    """The cooperative's chain head at a version: keep it to detect a later rewrite."""
    if version is not None and version > coop.version:
        raise ApiError(
            404, "version_not_found", f"the cooperative is at version {coop.version}", "version"
        )
    kept = services.ledger.receipt(coop_id, version or coop.version)
    return ReceiptOut(**vars(kept))


def _body(number: int, checkpoint: dict[str, Any]) -> CheckpointOut:
    return CheckpointOut(id=number, **checkpoint)


@router.post("/checkpoints", status_code=201, response_model=CheckpointOut)
def make_checkpoint(services: ServicesDep, _: Facilitator, response: Response) -> CheckpointOut:
    """Sign a digest over every cooperative's chain head now, and keep it."""
    number, checkpoint = record_checkpoint(services.ledger)
    response.headers["Location"] = f"/v1/checkpoints/{number}"
    return _body(number, checkpoint)


@router.get("/checkpoints/latest", response_model=CheckpointOut)
def latest_checkpoint(services: ServicesDep, _: CurrentPerson) -> CheckpointOut:
    """The most recent checkpoint."""
    found = stored_checkpoint(services.ledger.db)
    if found is None:
        raise ApiError(404, "checkpoint_not_found", "no checkpoint has been made yet")
    return _body(*found)


@router.get("/checkpoints/{checkpoint_id}", response_model=CheckpointOut)
def checkpoint(
    checkpoint_id: Annotated[int, Path(ge=1, le=2**62)], services: ServicesDep, _: CurrentPerson
) -> CheckpointOut:
    """A checkpoint by its number."""
    found = stored_checkpoint(services.ledger.db, checkpoint_id)
    if found is None:
        raise ApiError(
            404, "checkpoint_not_found", f"no checkpoint {checkpoint_id}", "checkpoint_id"
        )
    return _body(*found)
