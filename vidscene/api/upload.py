"""Streaming ``multipart/form-data`` reception: the video goes to a temporary file chunk by chunk.

FastAPI's ``UploadFile`` parses the whole body (spooling it) before the route runs and has no size limit;
here the body is fed to python-multipart's push parser as it arrives, so memory stays flat for multi-GB
videos, the size limit is enforced while streaming, and a full disk becomes a clean 507 with nothing left
behind. The route's checks run as early as what they judge has arrived: the fields sent before the file when
the file part begins, the file's format when its first ``HEAD_BYTES`` are in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

import anyio
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from vidscene.api.errors import BadRequestError, InsufficientStorageError, PayloadTooLargeError
from vidscene.format_probe import PROBE_BUF_MAX
from vidscene.storage import ObjectStore, is_disk_full
from vidscene.storage.objects import StoredUpload, Upload

logger = logging.getLogger(__name__)

FILE_FIELD = "file"
MAX_FIELD_BYTES = 16 * 1024  # a text field (scene name, comma-separated lists) is never near this
MAX_FIELDS = 32
FORM_OVERHEAD_BYTES = 1024 * 1024  # allowance for boundaries, part headers and text fields in Content-Length
MIN_FREE_BYTES = 64 * 1024 * 1024  # keep this much disk free for the database and running jobs
TEMP_PREFIX = "upload-"
TEMP_SUFFIX = ".part"
STALE_UPLOAD_SECONDS = 24 * 3600  # far longer than any upload; a file this old has no writer left
# The file's first bytes handed to ``check_head``: FFmpeg has chosen its demuxer by then (``format_probe``).
HEAD_BYTES = PROBE_BUF_MAX
# File data is written once this much has been parsed (or the body ends), in one worker-thread hop.
WRITE_BATCH_BYTES = 1024 * 1024


@dataclass
class ReceivedUpload:
    """Text fields and the ``file`` part: a temporary file, or (with an object store) a temporary object;
    the caller owns (and must remove) it."""

    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None
    file_name: str | None = None
    file_size: int = 0
    stored: StoredUpload | None = None  # the object the file part went to, once complete

    @property
    def received(self) -> Path | StoredUpload | None:
        """The file part as probing reads it, wherever it went."""
        return self.file_path if self.file_path is not None else self.stored

    @property
    def location(self) -> Path | str | None:
        """What ``scenes.service.create_scene`` keeps: the temporary file, or the temporary object's key."""
        return self.file_path if self.file_path is not None else self.stored.key if self.stored else None

    def discard(self) -> None:
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)
            self.file_path = None
        if self.stored is not None:
            self.stored.store.delete([self.stored.key])
            self.stored = None


def remove_stale_uploads(tmp_dir: Path, *, older_than_s: float = STALE_UPLOAD_SECONDS,
                         store: ObjectStore | None = None) -> int:
    """Delete temporary upload files (and ``tmp/upload-*`` objects in ``store``) left by a crashed or killed
    server; returns how many were removed.

    Only files older than ``older_than_s`` go: another API process sharing the data dir may be receiving one.
    """
    removed = 0
    cutoff = time.time() - older_than_s
    if store is not None:
        stale = [name for name, info in store.listing("tmp/").items()
                 if name.startswith(TEMP_PREFIX) and info.mtime < cutoff]
        store.delete(f"tmp/{name}" for name in stale)
        removed += len(stale)
    for path in tmp_dir.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        logger.info("removed stale temporary uploads", extra={"count": removed, "tmp_dir": str(tmp_dir)})
    return removed


def check_free_space(free_bytes: int, needed: int) -> None:
    if free_bytes - needed < MIN_FREE_BYTES:
        logger.warning("upload refused: disk nearly full", extra={"free_bytes": free_bytes, "needed": needed})
        raise InsufficientStorageError()


class _PartCollector:
    """python-multipart callbacks: file data is queued for the writer, text fields are kept (bounded)."""

    def __init__(self, max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.result = ReceivedUpload()
        # Views into the chunks handed to the parser, not copies: the body already crosses memory several
        # times before it gets here (socket, HTTP parser, server buffer), and each copy of a GiB costs ~0.2 s.
        self.pending: list[memoryview] = []
        self.pending_bytes = 0
        self.finished = False
        self.open_file_wanted = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._name: str | None = None
        self._is_file = False
        self._file_seen = False
        self._field_value = bytearray()
        self.head = bytearray()  # the file's first bytes, up to ``head_wanted`` (for ``check_head``)
        self.head_wanted = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._is_file = False
        self._field_value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").strip().lower()] = self._header_value.decode("latin-1")
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise BadRequestError("Every multipart part needs a Content-Disposition: form-data header with a name.")
        self._name = options[b"name"].decode("utf-8", errors="replace")
        if self._name == FILE_FIELD:
            if self._file_seen:
                raise BadRequestError("Send exactly one file.")
            self._file_seen = True
            self._is_file = True
            self.open_file_wanted = True
            filename = options.get(b"filename")
            self.result.file_name = filename.decode("utf-8", errors="replace") if filename is not None else None
        elif len(self.result.fields) >= MAX_FIELDS:
            raise BadRequestError("Too many form fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.result.file_size += end - start
            if self.result.file_size > self.max_file_bytes:
                raise PayloadTooLargeError(f"The video is larger than the limit of {self.max_file_bytes} bytes.")
            # python-multipart passes the chunk it was given (or its own immutable boundary): safe to keep.
            piece = memoryview(data)[start:end] if isinstance(data, bytes) else memoryview(bytes(data[start:end]))
            if len(self.head) < self.head_wanted:
                self.head += piece[:self.head_wanted - len(self.head)]
            self.pending.append(piece)
            self.pending_bytes += end - start
            return
        self._field_value += data[start:end]
        if len(self._field_value) > MAX_FIELD_BYTES:
            raise BadRequestError(f"Field {self._name} is too long.")

    def on_part_end(self) -> None:
        if self._is_file or self._name is None:
            return
        if self._name in self.result.fields:
            raise BadRequestError(f"Field {self._name} is given more than once.")
        try:
            self.result.fields[self._name] = self._field_value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestError(f"Field {self._name} is not valid UTF-8.") from exc

    def on_end(self) -> None:
        self.finished = True


async def receive_upload(request: Request, *, tmp_dir: Path, max_file_bytes: int, free_bytes: int,
                         check_fields: Callable[[dict[str, str]], None] | None = None,
                         check_head: Callable[[bytes, Path], None] | None = None,
                         store: ObjectStore | None = None) -> ReceivedUpload:
    """Parse the multipart body of ``request``, streaming the ``file`` part into a new file in ``tmp_dir``,
    or with ``store`` into a multipart upload of a new ``tmp/upload-*`` object (no copy on this host).

    ``free_bytes`` is the free space of the data dir's filesystem, checked against the announced size.
    ``check_fields`` sees the text fields that came before the file, when the file part begins: a field it
    refuses (by raising) is answered before the multi-GB body is read. Fields may also follow the file.
    ``check_head`` sees the file's first ``HEAD_BYTES`` (and where they are being written) as soon as they
    have arrived, in a worker thread: what it raises (a format that is no video) is answered then too.
    Raises ``BadRequestError`` (not multipart, malformed, truncated), ``PayloadTooLargeError`` (announced or streamed
    size over ``max_file_bytes``) and ``InsufficientStorageError`` (disk full, before or while writing); in every
    failure the temporary file is already removed.
    """
    boundary = _check_announced(request, max_file_bytes, free_bytes)
    collector = _PartCollector(max_file_bytes)
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]  # TypedDict of callables
    except ValueError as exc:
        raise BadRequestError("Invalid multipart boundary.") from exc
    receiver = _Receiver(collector, tmp_dir, check_fields, check_head, store)
    try:
        async for chunk in request.stream():
            if chunk:
                await receiver.feed(parser, chunk)
        await receiver.finish(parser)
    except ClientDisconnect as exc:
        receiver.abandon()
        raise BadRequestError("The upload was interrupted.") from exc
    except BaseException:
        receiver.abandon()
        raise
    return collector.result


def announced_file_bytes(request: Request) -> int | None:
    """The least the file part can be, from ``Content-Length`` (None without one): the body less the
    allowance for the form's boundaries and fields."""
    announced = request.headers.get("content-length")
    if announced is None or not announced.isdigit():
        return None
    return max(0, int(announced) - FORM_OVERHEAD_BYTES)


def _check_announced(request: Request, max_file_bytes: int, free_bytes: int) -> bytes:
    """The multipart boundary, once the headers say the body may be taken (size limit, free space)."""
    media, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise BadRequestError("Send the scene as multipart/form-data with a file field.")
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit():
        if int(announced) > max_file_bytes + FORM_OVERHEAD_BYTES:
            raise PayloadTooLargeError(f"The video is larger than the limit of {max_file_bytes} bytes.")
        check_free_space(free_bytes, int(announced))
    else:
        check_free_space(free_bytes, 0)
    return boundary


class _Receiver:
    """Feeds the body to the parser and acts on what the collector found: the file part beginning (fields
    checked, temporary file opened), its first bytes (checked), file data (written in batches)."""

    def __init__(self, collector: _PartCollector, tmp_dir: Path,
                 check_fields: Callable[[dict[str, str]], None] | None,
                 check_head: Callable[[bytes, Path], None] | None, store: ObjectStore | None) -> None:
        self.collector = collector
        self.tmp_dir = tmp_dir
        self.check_fields = check_fields
        self.check_head = check_head
        self.store = store
        self.handle: IO[bytes] | None = None
        self.sending: Upload | None = None
        self.head_path: Path | None = None  # what ``check_head`` is told the file is (FFmpeg reads its name)
        if check_head is not None:
            collector.head_wanted = HEAD_BYTES

    async def feed(self, parser: MultipartParser, chunk: bytes) -> None:
        collector, upload = self.collector, self.collector.result
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequestError("The multipart body is malformed.") from exc
        if collector.open_file_wanted:
            collector.open_file_wanted = False
            if self.check_fields is not None:
                self.check_fields(dict(upload.fields))
            await self.open_sink()
        if self.check_head is not None and len(collector.head) >= HEAD_BYTES and self.head_path is not None:
            head, collector.head, collector.head_wanted = bytes(collector.head), bytearray(), 0
            await anyio.to_thread.run_sync(self.check_head, head, self.head_path)
            self.check_head = None
        if collector.pending_bytes >= WRITE_BATCH_BYTES:
            await self.write_pending()

    async def open_sink(self) -> None:
        """Where the file part goes: a temporary file, or a multipart upload to the store."""
        if self.store is None:
            self.handle = await anyio.to_thread.run_sync(open_temp_file, self.tmp_dir)
            self.collector.result.file_path = self.head_path = Path(self.handle.name)
            return
        key = f"tmp/{TEMP_PREFIX}{secrets.token_urlsafe(16)}{TEMP_SUFFIX}"
        self.sending = await anyio.to_thread.run_sync(self.store.start_upload, key)
        self.head_path = Path(PurePosixPath(key).name)  # only its name reaches FFmpeg (``format_probe``)

    async def write_pending(self) -> None:
        pieces = self.collector.pending
        self.collector.pending = []
        self.collector.pending_bytes = 0
        if self.sending is not None:
            await anyio.to_thread.run_sync(_send, self.sending, pieces)
            return
        assert self.handle is not None
        await anyio.to_thread.run_sync(_write, self.handle, pieces)

    async def finish(self, parser: MultipartParser) -> None:
        parser.finalize()
        if not self.collector.finished:
            raise BadRequestError("The multipart body is incomplete.")
        if self.collector.pending:
            await self.write_pending()
        if self.handle is not None:
            handle, self.handle = self.handle, None
            await anyio.to_thread.run_sync(_sync_and_close, handle)
        if self.sending is not None and self.store is not None:
            sending, self.sending = self.sending, None
            try:
                await anyio.to_thread.run_sync(sending.complete)
            except BaseException:
                sending.abort()
                raise
            self.collector.result.stored = StoredUpload(self.store, sending.key, self.collector.result.file_size)

    def abandon(self) -> None:
        if self.sending is not None:  # nothing of an aborted multipart upload stays in the bucket
            self.sending.abort()
            self.sending = None
        _abandon(self.handle, self.collector.result)
        self.handle = None


def open_temp_file(tmp_dir: Path) -> IO[bytes]:
    """A new file in ``tmp_dir`` that an upload streams into; a full disk is ``InsufficientStorageError``.

    The one place an upload's file is opened, so that a test can hand the receiver a file whose writes fail
    like a full disk and check the whole error path (507, nothing left behind) through the real route."""
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        # Unbuffered: pieces go straight from the request's chunks to the kernel (see ``_write``).
        return tempfile.NamedTemporaryFile(dir=tmp_dir, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, delete=False,
                                           buffering=0)
    except OSError as exc:
        if is_disk_full(exc):
            raise InsufficientStorageError() from exc
        raise


def _write(handle: IO[bytes], pieces: list[memoryview]) -> None:
    try:
        for piece in pieces:
            while piece:
                written = handle.write(piece)  # an unbuffered file may write less than asked
                piece = piece[written:]
    except OSError as exc:
        if is_disk_full(exc):
            raise InsufficientStorageError() from exc
        raise


def _send(sending: Upload, pieces: list[memoryview]) -> None:
    for piece in pieces:
        sending.write(piece)


def _sync_and_close(handle: IO[bytes]) -> None:
    """Flush to disk before the scene row exists: a crash after the commit must not lose the video."""
    try:
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        if is_disk_full(exc):
            raise InsufficientStorageError() from exc
        raise
    finally:
        handle.close()


def _abandon(handle: IO[bytes] | None, upload: ReceivedUpload) -> None:
    if handle is not None:
        # A full disk can fail the final flush too; the file is removed below either way.
        with contextlib.suppress(OSError):
            handle.close()
    upload.discard()
