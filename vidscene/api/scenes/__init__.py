"""The scene resource, split by role: ``endpoints`` (HTTP), ``outputs`` (the download route, on a router of
its own), ``service`` (rules), ``repository`` (SQL), ``schemas`` (bodies)."""

from vidscene.api.scenes.endpoints import router
from vidscene.api.scenes.outputs import router as output_router

__all__ = ["output_router", "router"]
