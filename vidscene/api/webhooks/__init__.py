"""Webhooks, split by role: ``endpoints`` (HTTP), ``service`` (rules), ``repository`` (SQL), ``schemas``.
The API only manages them; deliveries are written by the job engine (``jobs.outbox``) and sent by the
workers (``jobs.webhooks``)."""

from vidscene.api.webhooks.endpoints import router

__all__ = ["router"]
