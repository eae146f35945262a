"""Personal API tokens, split by role: ``endpoints`` (HTTP), ``service`` (rules), ``repository`` (SQL),
``schemas`` (bodies). How a token authenticates a request is ``api.auth``."""

from vidscene.api.tokens.endpoints import router

__all__ = ["router"]
