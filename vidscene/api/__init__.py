"""The HTTP API (FastAPI). ``create_app(settings, enqueue=...)`` builds it; see app.py."""

from vidscene.api.app import create_app

__all__ = ["create_app"]
