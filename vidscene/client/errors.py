"""The one exception the client raises for a server's refusal, with the status and the server's message."""

from __future__ import annotations

import httpx


class ApiError(Exception):
    """A non-success answer: ``status`` and the ``{"error": ...}`` message the server wrote for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def raise_for_error(response: httpx.Response) -> None:
    """Turn a non-2xx answer into ``ApiError``; every error body of the API is ``{"error": "..."}``."""
    if response.is_success:
        return
    message = response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
    raise ApiError(response.status_code, message)
