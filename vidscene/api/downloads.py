"""File downloads with RFC 9110 ranges whose error answers are JSON like every other API error.

Starlette's ``FileResponse`` does the range work (single, suffix, open-ended and multiple ranges, ``If-Range``)
but answers a bad or unsatisfiable ``Range`` with a plain-text body. Re-implementing the parsing would risk
drifting from what it actually serves, so the error answers are rewritten on their way out instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import unicodedata
from collections.abc import AsyncIterator

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
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


def understood_range(headers: Headers) -> str | None:
    """The ``Range`` header if its unit is bytes: RFC 9110 section 14.2 says a range unit the server does not
    understand is ignored (the whole file is sent), not refused."""
    value = headers.get("range")
    return value if value is not None and value.strip().lower().startswith("bytes=") else None


def read_at(path: str | os.PathLike[str], offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset``: open, read and close in one call, so one worker-thread hop serves a chunk
    and no file descriptor stays open across a cancelled transfer."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    if len(data) != size:
        # The length is already promised in Content-Length: a file that shrank must abort the response.
        raise RuntimeError(f"File at path {path} is shorter than expected.")
    return data


class DownloadResponse(FileResponse):
    """``FileResponse`` with JSON range errors, fewer worker-thread hops, and a disconnect watch only where
    it pays.

    The web client fetches outputs in 1 MiB ``Range`` requests, and per chunk Starlette spends a thread hop
    on each of open, seek, every 64 KiB read and close, plus a task group that listens for the client going
    away while the body is sent: together several times the cost of the chunk itself (bench/api.py: 0.2x
    nginx). Here a body is read 1 MiB per hop with ``read_at``, and the disconnect watch (which ends a long
    transfer early when the client leaves; uvicorn drops writes to a closed connection silently) is started
    only for bodies longer than one read.
    """

    chunk_size = 1024 * 1024  # memory held per download in flight
    _preloaded: tuple[int, int, int, bytes] | None = None  # start, end, file size, bytes

    @property
    def preloaded(self) -> bool:
        return self._preloaded is not None

    def preload(self, request_headers: Headers) -> None:
        """Read the body now if the request asks for one range of at most ``chunk_size`` bytes.

        Call it in the worker thread that found the file: a 1 MiB chunk request then costs one thread hop in
        all. Anything else (no range, several ranges, ``If-Range``, a bad range) is left to ``__call__``.
        """
        range_header = understood_range(request_headers)
        if self.stat_result is None or range_header is None or "if-range" in request_headers:
            return
        try:
            ranges = self._parse_range_header(range_header, self.stat_result.st_size)
        except (MalformedRangeHeader, RangeNotSatisfiable):
            return
        if len(ranges) == 1 and 0 < ranges[0][1] - ranges[0][0] <= self.chunk_size:
            start, end = ranges[0]
            try:
                data = read_at(self.path, start, end - start)
            except (OSError, RuntimeError):
                return  # removed or cut since its stat (a scene deleted meanwhile): the normal path decides
            self._preloaded = (start, end, self.stat_result.st_size, data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._preloaded is not None and scope["method"] == "GET":
            # ``preload`` already decided what Starlette would: one satisfiable range, no If-Range.
            start, end, file_size, body = self._preloaded
            await send(self._range_start(start, end, file_size))
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
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

        headers = scope["headers"]
        request_headers = Headers(scope=scope)
        if "range" in request_headers and understood_range(request_headers) is None:
            headers = [(k, v) for k, v in headers if k.lower() != b"range"]
        self._receive = receive
        # ASGI 2.4 tells Starlette not to watch for disconnects itself: the body methods below do.
        scope = {**scope, "headers": headers, "asgi": {**scope.get("asgi", {}), "spec_version": "2.4"}}
        await super().__call__(scope, receive, send_json_errors)

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        if send_header_only or send_pathsend or self.stat_result is None:
            await super()._handle_simple(send, send_header_only, send_pathsend)
            return
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await self._send_span(send, 0, self.stat_result.st_size)

    async def _handle_single_range(self, send: Send, start: int, end: int, file_size: int,
                                   send_header_only: bool) -> None:
        if send_header_only:
            await super()._handle_single_range(send, start, end, file_size, send_header_only)
            return
        await send(self._range_start(start, end, file_size))
        await self._send_span(send, start, end)

    def _range_start(self, start: int, end: int, file_size: int) -> Message:
        """The 206 start of a single-range answer for bytes ``[start, end)``."""
        headers = MutableHeaders(raw=list(self.raw_headers))
        headers["content-range"] = f"bytes {start}-{end - 1}/{file_size}"
        headers["content-length"] = str(end - start)
        return {"type": "http.response.start", "status": 206, "headers": headers.raw}

    async def _handle_multiple_ranges(self, send: Send, ranges: list[tuple[int, int]], file_size: int,
                                      send_header_only: bool) -> None:
        async with self._ended_by_disconnect():
            await super()._handle_multiple_ranges(send, ranges, file_size, send_header_only)

    async def _send_span(self, send: Send, start: int, end: int) -> None:
        """Bytes ``[start, end)`` as body messages of at most ``chunk_size``, the last one closing the body."""
        if end - start <= self.chunk_size:
            chunk = await anyio.to_thread.run_sync(read_at, self.path, start, end - start) if end > start else b""
            await send({"type": "http.response.body", "body": chunk, "more_body": False})
            return
        async with self._ended_by_disconnect():
            offset = start
            while offset < end:
                size = min(self.chunk_size, end - offset)
                chunk = await anyio.to_thread.run_sync(read_at, self.path, offset, size)
                offset += size
                await send({"type": "http.response.body", "body": chunk, "more_body": offset < end})

    @contextlib.asynccontextmanager
    async def _ended_by_disconnect(self) -> AsyncIterator[None]:
        """Cancel the body (and its pending reads) as soon as the client disconnects."""
        async with anyio.create_task_group() as task_group:

            async def watch() -> None:
                while (await self._receive())["type"] != "http.disconnect":
                    pass
                task_group.cancel_scope.cancel()

            task_group.start_soon(watch)
            try:
                yield
            finally:
                task_group.cancel_scope.cancel()
