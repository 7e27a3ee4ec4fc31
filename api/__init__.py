"""coop-ledger's HTTP API: ``create_app()`` builds the FastAPI application."""

from api.app import create_app
from api.settings import Settings

__all__ = ["Settings", "create_app"]
