"""File downloads with RFC 9110 ranges whose error answers are JSON like every other API error.

Starlette's ``FileResponse`` does the range work (single, suffix, open-ended and multiple ranges, ``If-Range``)
but answers a bad or unsatisfiable ``Range`` with a plain-text body. Re-implementing the parsing would risk
drifting from what it actually serves, so the error answers are rewritten on their way out instead.
"""

from __future__ import annotations

import json
import re
import unicodedata

from starlette.datastructures import Headers
from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

_RANGE_ERRORS = {
    400: "Malformed Range header.",
    416: "Requested range not satisfiable.",
}


def safe_filename(stem: str, extension: str) -> str:
    """An ASCII file name for Content-Disposition: no path separators, quotes or control characters."""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).strip("._-")[:100] or "scene"
    return f"{cleaned}{extension}"


class DownloadResponse(FileResponse):
    # Starlette reads 64 KiB per worker-thread hop; clients fetch 1 MiB chunks, so one read serves a chunk
    # (bench/api.py: Range downloads ran at 0.2x nginx with 64 KiB reads). Costs 1 MiB per open download.
    chunk_size = 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rewriting = False

        async def send_json_errors(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] in _RANGE_ERRORS:
                rewriting = True
                body = json.dumps({"error": _RANGE_ERRORS[message["status"]]}).encode()
                headers = [(k, v) for k, v in message["headers"]
                           if k.lower() not in (b"content-type", b"content-length")]
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({**message, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            if rewriting:
                return  # the original plain-text body
            await send(message)

        range_header = Headers(scope=scope).get("range")
        if range_header is not None and not range_header.strip().lower().startswith("bytes="):
            # RFC 9110 section 14.2: a range unit the server does not understand is ignored, not refused.
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]}
        await super().__call__(scope, receive, send_json_errors)
