"""Account route bodies: JSON or ``application/x-www-form-urlencoded``, validated into a pydantic model.

FastAPI binds a body parameter to one media type; the existing web client and scripts send both, so these
routes read the raw body themselves and document both encodings through ``openapi_extra``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import BaseModel, ValidationError

from vidscene.api.errors import BadRequestError, PayloadTooLargeError

M = TypeVar("M", bound=BaseModel)

MAX_FORM_BODY_BYTES = 64 * 1024
_ENCODINGS = ("application/json", "application/x-www-form-urlencoded")


def request_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as a required body in both accepted encodings."""
    schema = model.model_json_schema(mode="validation")
    return {"requestBody": {"required": True,
                            "content": {media: {"schema": schema} for media in _ENCODINGS}}}


async def _read_limited(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_BODY_BYTES:
        raise PayloadTooLargeError("The request body is too large.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_FORM_BODY_BYTES:
            raise PayloadTooLargeError("The request body is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(content_type: str, raw: bytes) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise BadRequestError("The form body is not valid UTF-8.") from exc
        return dict(pairs)
    if media in ("application/json", "") or media.endswith("+json"):
        if not raw.strip():
            raise BadRequestError("The request body is empty.")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequestError("The request body is not valid JSON.") from exc
        if not isinstance(data, dict):
            raise BadRequestError("The request body must be a JSON object.")
        return data
    raise BadRequestError("Send the body as application/json or application/x-www-form-urlencoded.")


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "missing":
        return f"Missing field: {field}."
    return f"Invalid {field}: {first['msg']}."


def body_of(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that parses the request body into ``model`` or raises ``BadRequestError`` naming the field."""

    async def parse(request: Request) -> M:
        raw = await _read_limited(request)
        data = _decode(request.headers.get("content-type", ""), raw)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise BadRequestError(validation_message(exc)) from exc

    parse.__name__ = f"parse_{model.__name__}"
    return parse


MAX_FORM_FIELDS = 32
MAX_FIELD_BYTES = 16 * 1024


def _as_text(name: str, value: Any) -> str:
    """A JSON member as the form field it stands for: numbers as digits, lists comma-separated."""
    if isinstance(value, bool):
        raise BadRequestError(f"Invalid {name}: not a text, a number or a list.")
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    raise BadRequestError(f"Invalid {name}: not a text, a number or a list.")


async def text_fields(request: Request) -> dict[str, str]:
    """The text fields of a small form in any of the three encodings an upload form may be re-sent in:
    ``multipart/form-data`` (without a file), ``application/x-www-form-urlencoded`` or a JSON object."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_FORM_BODY_BYTES:
            raise PayloadTooLargeError("The request body is too large.")
        try:
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES)
        except Exception as exc:  # Starlette raises its HTTPException or a parser error for a bad body
            raise BadRequestError("The form body could not be read (a file is not expected here).") from exc
        return {key: value for key, value in form.items() if isinstance(value, str)}
    data = _decode(request.headers.get("content-type", ""), await _read_limited(request))
    return {str(key): _as_text(str(key), value) for key, value in data.items()}

