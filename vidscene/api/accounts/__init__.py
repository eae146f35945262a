"""The account resource, split by role: ``endpoints`` (HTTP), ``service`` (rules), ``repository`` (SQL),
``schemas`` (bodies)."""

from vidscene.api.accounts.endpoints import router

__all__ = ["router"]
