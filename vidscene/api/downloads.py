"""File downloads: RFC 9110 byte ranges, errors as JSON, and as few worker-thread hops per chunk as possible.

The web client fetches outputs in 1 MiB ``Range`` requests (a 1 GiB checkpoint is 1024 of them), so this
module is both a protocol implementation and a hot path. It is the project's own code, built on
Starlette's public ``Response`` only: Starlette's ``FileResponse`` refuses a whole ``Range`` header when one
of its ranges is unsatisfiable, answers errors in plain text, and its hooks are private methods that change
between releases.

What a request gets (RFC 9110 sections 14 and 13.1.5):

- no ``Range``, a range unit other than ``bytes``, a ``Range`` on a method other than ``GET`` (``HEAD``
  included: GET is the only method with range handling), more than ``MAX_RANGES`` ranges, or an
  ``If-Range`` that no longer matches: 200 and the whole file;
- ``bytes=a-b``, ``bytes=a-``, ``bytes=-n`` and lists of them: 206 with the satisfiable ones; ranges past
  the end are dropped, ends past it clamped, overlapping or adjacent ranges joined; one range left is a
  plain 206, several are ``multipart/byteranges`` in the order the client asked for them;
- none satisfiable: 416 with ``Content-Range: bytes */size``; not valid syntax: 400; both ``{"error"}``.

Speed: a single read of at most 1 MiB (the client's chunk, or a small whole file) is read by ``preload`` in
the worker thread that found the file, so such a request costs one thread hop in all. Longer bodies are
read 1 MiB per hop with ``read_at`` (Starlette spends a hop on each of open, seek, every 64 KiB read and
close), and only they run a task that listens for the client going away (uvicorn drops writes to a closed
connection silently, so without it a long transfer would be read to its end for nobody).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable, Generator
from email.utils import formatdate
from urllib.parse import quote

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Message, Receive, Scope, Send

from vidscene.catalogue import CHUNK_BYTES
from vidscene.storage import Readable, StoreUnavailableError, objects
from vidscene.storage.objects import LocalFile, StoredObject

Span = tuple[int, int]  # byte offsets [start, end)

MAX_RANGES = 100  # more ranges than any client needs: a request for more is served as if it asked for none
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_OWS = " \t"
_HUGE = 10**18  # stands in for offsets too long to be a file position (and for Python's int-parsing limit)


class RangeError(Exception):
    """A ``Range`` header answered with an error: 400 when it is not valid syntax, 416 when none of its
    ranges is satisfiable. ``message`` is meant for the client."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def safe_filename(stem: str, extension: str) -> str:
    """An ASCII file name for Content-Disposition: no path separators, quotes or control characters."""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem).strip("._-")[:100] or "scene"
    return f"{cleaned}{extension}"


def parse_range(value: str, size: int) -> list[Span] | None:
    """The satisfiable ranges of a ``Range`` header value for a file of ``size`` bytes, joined where they
    overlap or touch, in the order the client listed them.

    ``None`` means the header is ignored and the whole file sent: its unit is not ``bytes`` (RFC 9110 section
    14.2), or it lists more than ``MAX_RANGES`` ranges (a sign of a broken client or of an attempt to make
    the server do many small reads). Raises ``RangeError`` 400 when the range set is not valid syntax, 416
    when none of its ranges is satisfiable.
    """
    unit, equals, range_set = value.partition("=")
    if not equals or unit.lstrip(_OWS).lower() != "bytes":
        return None
    specs = range_set.split(",")
    if len(specs) > MAX_RANGES:
        return None
    spans: list[Span] = []
    listed = False
    for raw_spec in specs:
        spec = raw_spec.strip(_OWS)
        if not spec:
            continue  # empty list elements are allowed (RFC 9110 section 5.6.1)
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None or not (match[1] or match[2]):
            raise RangeError(400, f"Malformed Range header: {spec[:40]!r} is not first-last, first- or -suffix.")
        listed = True
        first, last = match[1], match[2]
        if first:
            start = _offset(first)
            if last and _offset(last) < start:
                raise RangeError(400, f"Malformed Range header: {spec[:40]!r} ends before it starts.")
            if start < size:
                spans.append((start, min(_offset(last) + 1, size) if last else size))
        else:
            suffix = _offset(last)
            if suffix > 0 and size > 0:
                spans.append((max(size - suffix, 0), size))
    if not listed:
        raise RangeError(400, "Malformed Range header: no range given.")
    if not spans:
        raise RangeError(416, "Requested range not satisfiable.")
    return _joined(spans)


def first_read(request_headers: Headers) -> tuple[int, int] | None:
    """(offset, size) of a ``GET`` for one range ``bytes=a-b`` of at most ``CHUNK_BYTES`` (the web client's
    chunk), found before the file's size is known: what ``Storage.open_file`` may read with the file's
    size and date in one request to a store. None for anything else (read as before)."""
    value = request_headers.get("range")
    if value is None:
        return None
    unit, equals, spec = value.partition("=")
    if not equals or unit.strip(_OWS).lower() != "bytes":
        return None
    match = _RANGE_SPEC.fullmatch(spec.strip(_OWS))
    if match is None or not match[1] or not match[2]:
        return None
    start, last = _offset(match[1]), _offset(match[2])
    return (start, last - start + 1) if 0 <= last - start < CHUNK_BYTES else None


def answered(method: str, request_headers: Headers,
             respond: Callable[[tuple[int, int] | None], Response]) -> Response:
    """``respond(first_read)`` for a ``GET`` (None for ``HEAD``), with a file answer's first chunk read in the
    same hop (``DownloadResponse.preload``): what both download routes, the owner's and the shared one, do."""
    get = method == "GET"
    response = respond(first_read(request_headers) if get else None)
    if get and isinstance(response, DownloadResponse):
        response.preload(request_headers)
    return response


def _offset(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _HUGE


def _joined(spans: list[Span]) -> list[Span]:
    """Overlapping or adjacent spans as one, each in the place of its earliest part (RFC 9110 section
    15.3.7.2: parts in the order requested), so a client cannot make the server send a byte twice."""
    groups: list[list[int]] = []  # [start, end, index of its first span in the request]
    for index in sorted(range(len(spans)), key=spans.__getitem__):
        start, end = spans[index]
        if groups and start <= groups[-1][1]:
            group = groups[-1]
            group[1], group[2] = max(group[1], end), min(group[2], index)
        else:
            groups.append([start, end, index])
    groups.sort(key=lambda group: group[2])
    return [(start, end) for start, end, _ in groups]


def read_at(path: str | os.PathLike[str], offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of a local file in one call (``storage.objects.read_at``)."""
    return objects.read_at(path, offset, size)


def file_response(file: Readable, status_code: int = 200, *, media_type: str,
                  filename: str | None = None) -> Response:
    """The answer that sends this opened scene file (``Storage.open_file``): a ``DownloadResponse`` reading the
    data dir or ranged reads of the store, or, with presigned downloads on, a redirect to a short-lived URL
    (307, so a client's ``Range`` goes along to the store, which answers it itself)."""
    if isinstance(file, LocalFile):
        return DownloadResponse(file.path, status_code, stat_result=file.stat_result, media_type=media_type,
                                filename=filename)
    url = file.redirect_url(filename)
    if url is not None:
        return RedirectResponse(url, status_code=307, headers={"cache-control": "no-store"})
    return DownloadResponse.stored(file, status_code, media_type=media_type, filename=filename)


class DownloadResponse(Response):
    """A file as an ASGI response with the range handling of the module docstring.

    ``stat_result`` is the file's stat as found by the caller: its size is promised in Content-Length and
    its modification time makes the validators, so the file is not looked at again before the first read.
    ``status_code`` is that of the whole-file answer; ranges apply only where it is 200 (RFC 9110 section
    14.2), which is also where FastAPI reads the route's documented success status from.
    """

    chunk_size = CHUNK_BYTES  # bytes per read, and memory held per download in flight

    def __init__(self, path: str | os.PathLike[str], status_code: int = 200, *, stat_result: os.stat_result,
                 media_type: str, filename: str | None = None) -> None:
        self.path = path
        self._setup(status_code, stat_result.st_size, stat_result.st_mtime, media_type, filename)

    @classmethod
    def stored(cls, file: Readable, status_code: int = 200, *, media_type: str,
               filename: str | None = None) -> DownloadResponse:
        """A response reading ``file`` (an object in the store) instead of a path."""
        response = cls.__new__(cls)
        response.path = ""
        response._file = file
        response._setup(status_code, file.size, file.mtime, media_type, filename)
        return response

    def _read(self, offset: int, size: int) -> bytes:
        return read_at(self.path, offset, size) if self._file is None else self._file.read_at(offset, size)

    def _setup(self, status_code: int, size: int, mtime: float, media_type: str, filename: str | None) -> None:
        if not hasattr(self, "_file"):
            self._file: Readable | None = None
        self.size = size
        headers = {
            "accept-ranges": "bytes",
            "content-length": str(self.size),
            "last-modified": formatdate(mtime, usegmt=True),
            # The recipe Starlette's FileResponse used, so validators clients already hold keep matching.
            "etag": '"' + hashlib.md5(f"{mtime}-{self.size}".encode(), usedforsecurity=False).hexdigest() + '"',
        }
        if filename is not None:
            quoted = quote(filename)
            headers["content-disposition"] = (f'attachment; filename="{filename}"' if quoted == filename
                                              else f"attachment; filename*=utf-8''{quoted}")
        super().__init__(status_code=status_code, headers=headers, media_type=media_type)
        self._preloaded: tuple[list[Span] | None, bytes] | None = None  # the answer's ranges and its body

    @property
    def preloaded(self) -> bool:
        return self._preloaded is not None

    def selected_spans(self, request_headers: Headers, method: str) -> list[Span] | None:
        """What a ``method`` request with these headers gets: ``None`` for the whole file, else the ranges.

        Raises ``RangeError`` for the error answers. ``If-Range`` (RFC 9110 section 13.1.5) holds when it is
        this file's entity tag (a weak one never matches) or exactly its Last-Modified date; when it does
        not, the client's copy is stale and gets the whole file instead of pieces to patch it with.
        """
        value = request_headers.get("range")
        if value is None or method != "GET" or self.status_code != 200:
            return None
        if_range = request_headers.get("if-range")
        if if_range is not None and not self._still_current(if_range):
            return None
        return parse_range(value, self.size)

    def _still_current(self, validator: str) -> bool:
        if validator.startswith('"'):
            return validator == self.headers["etag"]
        if validator.startswith("W/"):
            return False  # a weak entity tag never matches strongly
        return validator == self.headers["last-modified"]

    def preload(self, request_headers: Headers) -> None:
        """Read the body of a ``GET`` now if it is one read of at most ``chunk_size`` bytes.

        Call it in the worker thread that found the file: a 1 MiB chunk request then costs one thread hop in
        all. Longer bodies, several ranges and error answers are left to ``__call__``, and so is a file that
        went away or shrank since its stat (a scene deleted meanwhile): ``__call__`` finds out again.
        """
        try:
            spans = self.selected_spans(request_headers, "GET")
        except RangeError:
            return
        if spans is not None and len(spans) > 1:
            return
        start, end = spans[0] if spans else (0, self.size)
        if end - start > self.chunk_size:
            return
        try:
            body = self._read(start, end - start) if end > start else b""
        except (OSError, RuntimeError, StoreUnavailableError):
            return
        self._preloaded = (spans, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if self._preloaded is not None and method == "GET":
            spans, body = self._preloaded
            await send(self._start(spans))
            await send({"type": "http.response.body", "body": body, "more_body": False})
        else:
            try:
                spans = self.selected_spans(Headers(scope=scope), method)
            except RangeError as exc:
                headers = {"content-range": f"bytes */{self.size}"} if exc.status_code == 416 else None
                error = JSONResponse({"error": exc.message}, status_code=exc.status_code, headers=headers)
                await error(scope, receive, send)
                return
            if spans is not None and len(spans) > 1:
                start, pieces = self._multipart(spans)
            else:
                start, pieces = self._start(spans), [spans[0] if spans else (0, self.size)]
            await send(start)
            if method == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif self._reads(pieces) > 1:  # long enough for the disconnect watch to pay for itself
                await _unless_disconnected(receive, lambda: self._send_pieces(send, pieces))
            else:
                await self._send_pieces(send, pieces)
        if self.background is not None:
            await self.background()

    def _start(self, spans: list[Span] | None) -> Message:
        """The start of a whole-file (``None``) or single-range answer."""
        if spans is None:
            return {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        [(start, end)] = spans
        headers = MutableHeaders(raw=list(self.raw_headers))
        headers["content-range"] = f"bytes {start}-{end - 1}/{self.size}"
        headers["content-length"] = str(end - start)
        return {"type": "http.response.start", "status": 206, "headers": headers.raw}

    def _multipart(self, spans: list[Span]) -> tuple[Message, list[bytes | Span]]:
        """The start of a ``multipart/byteranges`` answer and its body: delimiters and part headers between
        the file spans (RFC 9110 section 14.6)."""
        boundary = secrets.token_hex(16)
        part_type = self.headers["content-type"]
        pieces: list[bytes | Span] = []
        delimiter = b""
        for start, end in spans:
            pieces.append(delimiter + (f"--{boundary}\r\nContent-Type: {part_type}\r\n"
                                       f"Content-Range: bytes {start}-{end - 1}/{self.size}\r\n\r\n").encode("latin-1"))
            pieces.append((start, end))
            delimiter = b"\r\n"
        pieces.append(f"\r\n--{boundary}--\r\n".encode("latin-1"))
        length = sum(len(piece) if isinstance(piece, bytes) else piece[1] - piece[0] for piece in pieces)
        headers = MutableHeaders(raw=list(self.raw_headers))
        headers["content-type"] = f"multipart/byteranges; boundary={boundary}"
        headers["content-length"] = str(length)
        return {"type": "http.response.start", "status": 206, "headers": headers.raw}, pieces

    async def _send_stored(self, send: Send, file: StoredObject, offset: int, end: int, more_after: bool) -> None:
        """A long span of a stored object from one ranged ``GET`` read ``chunk_size`` at a time."""
        chunks = file.chunks(offset, end - offset, self.chunk_size)
        try:
            while offset < end:
                chunk = await _next_chunk(chunks)
                offset += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": more_after or offset < end})
        finally:
            await anyio.to_thread.run_sync(chunks.close)

    def _reads(self, pieces: list[bytes | Span]) -> int:
        return sum(-(-(piece[1] - piece[0]) // self.chunk_size) for piece in pieces if not isinstance(piece, bytes))

    async def _send_pieces(self, send: Send, pieces: list[bytes | Span]) -> None:
        """Literal bytes and file spans as body messages, spans in reads of at most ``chunk_size``; the last
        message closes the body."""
        for index, piece in enumerate(pieces):
            more_after = index < len(pieces) - 1
            if isinstance(piece, bytes):
                await send({"type": "http.response.body", "body": piece, "more_body": more_after})
                continue
            offset, end = piece
            if offset == end:  # an empty file
                await send({"type": "http.response.body", "body": b"", "more_body": more_after})
            if isinstance(self._file, StoredObject) and end - offset > self.chunk_size:
                await self._send_stored(send, self._file, offset, end, more_after)
                continue
            while offset < end:
                size = min(self.chunk_size, end - offset)
                chunk = await anyio.to_thread.run_sync(self._read, offset, size)
                offset += size
                await send({"type": "http.response.body", "body": chunk, "more_body": more_after or offset < end})


async def _next_chunk(chunks: Generator[bytes]) -> bytes:
    return await anyio.to_thread.run_sync(next, chunks)


async def _unless_disconnected(receive: Receive, send_body: Callable[[], Awaitable[None]]) -> None:
    """Run ``send_body``, cancelled (with its pending reads) as soon as the client disconnects."""
    async with anyio.create_task_group() as task_group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            task_group.cancel_scope.cancel()

        task_group.start_soon(watch)
        await send_body()
        task_group.cancel_scope.cancel()
