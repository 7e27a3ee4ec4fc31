"""The service's settings, read once from the environment when the app is created."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from ledger.storage import StoreConfig

ProjectionMode = Literal["inline", "external"]


@dataclass(frozen=True)
class Settings:
    store: StoreConfig
    admin_token: str | None = None
    # inline: this process runs the projections (SQLite, one worker); external: a
    # `coop-ledger project` process does (PostgreSQL with several workers).
    projections: ProjectionMode = "inline"
    max_body_bytes: int = 64 * 1024
    max_wait_seconds: float = 5.0
    failed_auth_per_minute: int = 20

    @classmethod
    def from_env(cls) -> Settings:
        mode = os.environ.get("COOP_LEDGER_PROJECTIONS", "inline")
        if mode not in ("inline", "external"):
            raise ValueError("COOP_LEDGER_PROJECTIONS must be 'inline' or 'external'")
        return cls(
            store=StoreConfig.from_env(),
            admin_token=os.environ.get("COOP_LEDGER_ADMIN_TOKEN") or None,
            projections=mode,  # type: ignore[arg-type]
            max_body_bytes=int(os.environ.get("COOP_LEDGER_MAX_BODY_BYTES", 64 * 1024)),
        )
