"""The API on each store, through FastAPI's TestClient (the real ASGI app and lifespan)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api import Settings, create_app
from ledger.storage import StoreConfig
from tests.e2e.support import ADMIN_TOKEN, Api


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    settings = Settings(store=StoreConfig.from_url(database_url), admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings)) as client:
        yield Api(client)
