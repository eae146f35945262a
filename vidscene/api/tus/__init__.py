"""Resumable uploads (tus 1.0), split by role: ``endpoints`` (HTTP), ``protocol`` (tus headers), ``service``
(rules), ``repository`` (SQL), ``files`` (the bytes on disk), ``schemas``."""

from vidscene.api.tus.endpoints import router

__all__ = ["router"]
