"""The scene resource, split by role: ``endpoints`` (HTTP), ``service`` (rules), ``repository`` (SQL),
``schemas`` (bodies)."""

from vidscene.api.scenes.endpoints import router

__all__ = ["router"]
