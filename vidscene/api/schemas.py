"""Bodies every resource shares: the error answer and its OpenAPI entries, plain messages, the route list.

Each resource's own bodies live beside its routes (``scenes/schemas.py``, ``accounts/schemas.py``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, for the user")


class RegisterErrorBody(ErrorBody):
    success: Literal[False] = False


def error_responses(*codes: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses (plus the 500 every route can give)."""
    descriptions = {
        400: "A field is missing or invalid",
        401: "Missing, invalid, expired or revoked token, or wrong password",
        403: "A personal API token lacking the route's scope, or on a route that needs the login token",
        404: "Unknown scene, or a scene of another user",
        409: "Username taken",
        410: "The resumable upload expired",
        412: "Tus-Resumable is missing or names a tus version other than 1.0.0",
        413: "Upload too large, or past the user's storage quota",
        415: "The upload is not a decodable video",
        416: "Range not satisfiable",
        423: "Another request is appending to this upload; retry after it ends",
        429: "Too many failed attempts, or too many of the user's scenes waiting",
        500: "Internal error",
        503: "A part the server needs (database, broker, store) is unreachable",
        507: "Not enough disk space on the server",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in (*codes, 500):
        out[code] = {"model": model, "description": descriptions[code]}
    return out


class MessageOut(BaseModel):
    message: str


class RouteInfo(BaseModel):
    method: str
    path: str
    auth: bool
