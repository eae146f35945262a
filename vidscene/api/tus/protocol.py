"""The tus 1.0 headers: reading the client's, writing the server's. HTTP only, no rules of our own.

See https://tus.io/protocols/resumable-upload (core, creation, termination, expiration).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from email.utils import format_datetime

from fastapi import Request

from vidscene.api.errors import BadRequestError, PreconditionFailedError, UnsupportedMediaError

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = ("creation", "termination", "expiration")
OFFSET_MEDIA_TYPE = "application/offset+octet-stream"
MAX_METADATA_BYTES = 16 * 1024
_DIGITS = re.compile(r"^[0-9]{1,19}$")  # fits a signed 64-bit integer column
_KEY = re.compile(r"^[!-+\--~]+$")  # printable ASCII without space or comma

TUS_RESUMABLE = {"Tus-Resumable": TUS_VERSION}
# What a browser client must be allowed to send and read across origins.
CORS_REQUEST_HEADERS = ("Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata",
                        "Upload-Defer-Length", "Upload-Concat")
CORS_RESPONSE_HEADERS = ("Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
                         "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Scene-Id")


def require_tus_version(request: Request) -> None:
    """Every tus request but OPTIONS names the protocol version; another one is 412 with ours."""
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise PreconditionFailedError(f"Send Tus-Resumable: {TUS_VERSION} (the only tus version served).",
                                      headers={"Tus-Version": TUS_VERSION})


def _count(request: Request, header: str) -> int:
    value = request.headers.get(header)
    if value is None:
        raise BadRequestError(f"Missing header: {header}.")
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        raise BadRequestError(f"Invalid {header}: {value[:20]!r} is not a whole number of bytes.")
    return int(value)


def upload_length(request: Request) -> int:
    if "upload-defer-length" in request.headers:
        raise BadRequestError("Upload-Defer-Length is not supported: send Upload-Length.")
    if "upload-concat" in request.headers:
        raise BadRequestError("Upload-Concat is not supported.")
    return _count(request, "Upload-Length")


def upload_offset(request: Request) -> int:
    return _count(request, "Upload-Offset")


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not _DIGITS.fullmatch(value.strip()):
        raise BadRequestError("Invalid Content-Length.")
    return int(value)


def require_offset_body(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != OFFSET_MEDIA_TYPE:
        raise UnsupportedMediaError(f"Send the bytes with Content-Type: {OFFSET_MEDIA_TYPE}.")


def upload_metadata(request: Request) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (the value may be absent), decoded.

    Keys must be unique; values must be UTF-8. ``BadRequestError`` names what is wrong."""
    raw = request.headers.get("upload-metadata")
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_METADATA_BYTES:
        raise BadRequestError("Upload-Metadata is too long.")
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        parts = item.strip().split(" ")
        if len(parts) > 2 or not parts[0] or not _KEY.fullmatch(parts[0]):
            raise BadRequestError("Invalid Upload-Metadata: each pair is a key, a space and a base64 value.")
        key = parts[0]
        if key in pairs:
            raise BadRequestError(f"Invalid Upload-Metadata: {key} is given more than once.")
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise BadRequestError(f"Invalid Upload-Metadata: the value of {key[:40]} is not base64 "
                                      "of UTF-8 text.") from None
        pairs[key] = value
    return pairs


def http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate, as ``Upload-Expires`` wants."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)
