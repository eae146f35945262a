"""One exception hierarchy for the API and the handlers that turn every failure into ``{"error": ...}`` JSON.

Existing clients parse the ``error`` member of every non-2xx answer, so no path may produce an HTML page, a
plain-text body or a stack trace: routing 404/405, request validation and unexpected exceptions are mapped
here too.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidscene.storage import StoreUnavailableError

logger = logging.getLogger(__name__)

# Routes that set this key in ``request.state`` get its members merged into every error body they produce
# (the register route's ``"success": false``).
ERROR_EXTRA_STATE_KEY = "error_extra"


class APIError(Exception):
    """A failure the client caused or must know about; ``message`` is shown to the user as is."""

    status_code: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal server error."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequestError(APIError):
    status_code = 400
    default_message = "Bad request."


class NotAuthenticatedError(APIError):
    """Missing, malformed, expired or revoked token, or a wrong password."""

    status_code = 401
    default_message = "Not authenticated."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(APIError):
    """Authenticated, but this credential may not do this (a personal API token without the scope, or on a
    route only the login token may use)."""

    status_code = 403
    default_message = "Forbidden."


class NotFoundError(APIError):
    status_code = 404
    default_message = "Not found."


class SceneNotFoundError(NotFoundError):
    """Unknown scene or a scene of another user: both answer the same so ids cannot be probed."""

    default_message = "Scene not found."


class ConflictError(APIError):
    status_code = 409
    default_message = "Conflict."


class GoneError(APIError):
    status_code = 410
    default_message = "Gone."


class PreconditionFailedError(APIError):
    status_code = 412
    default_message = "Precondition failed."


class LockedError(APIError):
    status_code = 423
    default_message = "Locked."


class PayloadTooLargeError(APIError):
    status_code = 413
    default_message = "The upload is too large."


class UnsupportedMediaError(APIError):
    status_code = 415
    default_message = "The uploaded file is not a video that can be decoded."


class TooManyRequestsError(APIError):
    status_code = 429
    default_message = "Too many attempts; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class InsufficientStorageError(APIError):
    status_code = 507
    default_message = "The server has no disk space left for this upload; try again later."


def error_body(request: Request, message: str) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    extra = getattr(request.state, ERROR_EXTRA_STATE_KEY, None)
    if isinstance(extra, dict):
        body.update(extra)
    return body


def error_response(request: Request, status_code: int, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(request, message), status_code=status_code, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """Name the first offending parameter the way a client spelled it (``iteration``, not ``query.iteration``)."""
    errors = exc.errors()
    if not errors:
        return "Invalid request."
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "header", "body", "cookie")]
    field = ".".join(loc) or "request"
    return f"Invalid {field}: {first.get('msg', 'invalid value')}."


_STATUS_MESSAGES = {
    404: "Not found.",
    405: "Method not allowed.",
}


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    if exc.status_code >= 500:
        logger.error("request failed: %s", exc.message, extra={"path": request.url.path})
    return error_response(request, exc.status_code, exc.message, exc.headers)


async def _http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
    message = _STATUS_MESSAGES.get(exc.status_code) or detail or "Request failed."
    if not message.endswith("."):
        message += "."
    return error_response(request, exc.status_code, message, dict(exc.headers or {}))


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 400, _validation_message(exc))


async def _store_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    """The object store is down or refuses the credentials: the service is unavailable, not broken, and the
    client may try again (the operator finds the store and the reason in the log)."""
    logger.error("object store unavailable: %s", exc, extra={"path": request.url.path})
    return error_response(request, 503, "File storage is unavailable right now; try again in a minute.",
                          {"Retry-After": "30"})


async def _unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Registered for ``Exception``: Starlette runs it in ServerErrorMiddleware, the outermost layer, so
    # the traceback goes to the log and never to the client.
    logger.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
    return error_response(request, 500, "Internal server error.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable_handler)
    app.add_exception_handler(Exception, _unhandled_error_handler)
