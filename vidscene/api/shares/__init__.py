"""Share links, split by role: ``endpoints`` (HTTP), ``service`` (rules), ``repository`` (SQL), ``schemas``."""

from vidscene.api.shares.endpoints import owner_router, public_router

__all__ = ["owner_router", "public_router"]
