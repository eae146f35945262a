"""What the service needs from an object store (``ObjectStore``), and what a download reads from
(``Readable``: a local file or a stored object), so the API and the job engine speak to one seam whichever
``VIDSCENE_STORAGE_URL`` is set.

Keys are ``/``-separated paths relative to the store's prefix; a scene's objects are
``scenes/<scene id>/<the relative path it would have in the data dir>``, so the layout of ``local.py`` holds
in both modes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class StoreUnavailableError(Exception):
    """The object store cannot be reached, or refuses the credentials: nothing was lost, try again later.
    ``str()`` says which store and why, for the operator; the API answers 503."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    mtime: float  # seconds since the epoch


class Upload(Protocol):
    """An object being written piece by piece (an S3 multipart upload): invisible until ``complete``, and
    ``abort`` leaves nothing behind."""

    key: str

    def write(self, data: bytes | memoryview) -> None: ...

    def complete(self) -> None: ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """A bucket under a prefix. Every method may raise ``StoreUnavailableError``."""

    url: str

    def check(self) -> None: ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def read_range(self, key: str, offset: int, size: int) -> bytes: ...

    def stream_range(self, key: str, offset: int, size: int, chunk: int) -> Generator[bytes]:
        """``size`` bytes at ``offset`` from one request, in pieces of ``chunk`` bytes (the last may be
        shorter); closing the iterator ends the request."""
        ...

    def read_bytes(self, key: str) -> bytes | None: ...

    def read_first(self, key: str, offset: int, size: int) -> tuple[ObjectInfo, bytes] | None:
        """Up to ``size`` bytes at ``offset`` and the object's size and modification time, from one ranged
        ``GET`` (what a ``stat`` and a ``read_range`` would take two requests for); the bytes are empty when
        ``offset`` is past the end; None when the object is missing."""
        ...

    def listing(self, prefix: str) -> dict[str, ObjectInfo]: ...

    def put_file(self, key: str, path: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_file(self, key: str, path: Path) -> None: ...

    def copy(self, source: str, target: str) -> None: ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def start_upload(self, key: str) -> Upload: ...

    def presigned_url(self, key: str, seconds: int, filename: str | None) -> str: ...


class Readable(Protocol):
    """A whole file to serve: its size and modification time (validators), and reads at an offset."""

    @property
    def size(self) -> int: ...

    @property
    def mtime(self) -> float: ...

    def read_at(self, offset: int, size: int) -> bytes: ...

    def redirect_url(self, filename: str | None) -> str | None:
        """Where a client may fetch the bytes itself (a presigned URL), or None to stream them."""
        ...


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


@dataclass(frozen=True)
class LocalFile:
    """A file in the data dir, as found by one ``stat``: the ``file://`` path, unchanged from before stores."""

    path: Path
    stat_result: os.stat_result

    @property
    def size(self) -> int:
        return self.stat_result.st_size

    @property
    def mtime(self) -> float:
        return self.stat_result.st_mtime

    def read_at(self, offset: int, size: int) -> bytes:
        return read_at(self.path, offset, size)

    def redirect_url(self, filename: str | None) -> str | None:
        return None


@dataclass(frozen=True)
class StoredObject:
    """An object in the store; ``presign_seconds`` set means clients are sent to a presigned URL instead."""

    store: ObjectStore
    key: str
    info: ObjectInfo
    presign_seconds: int | None = None
    first: tuple[int, bytes] | None = None  # (offset, bytes) read with the info (``ObjectStore.read_first``)

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def mtime(self) -> float:
        return self.info.mtime

    def read_at(self, offset: int, size: int) -> bytes:
        if self.first is not None:
            start, found = self.first
            if start <= offset and offset + size <= start + len(found):
                return found[offset - start:offset - start + size]
        data = self.store.read_range(self.key, offset, size)
        if len(data) != size:
            raise RuntimeError(f"Object {self.key} is shorter than expected.")
        return data

    def chunks(self, offset: int, size: int, chunk: int) -> Generator[bytes]:
        """A long span in one ranged ``GET`` (``read_at`` per chunk would cost a request each)."""
        return self.store.stream_range(self.key, offset, size, chunk)

    def redirect_url(self, filename: str | None) -> str | None:
        if self.presign_seconds is None:
            return None
        return self.store.presigned_url(self.key, self.presign_seconds, filename)


def parse_metrics(found: Mapping[str, bytes]) -> dict[int, dict[str, Any]]:
    """Quality numbers by iteration from ``{file name: contents}`` of ``metrics/`` (``<iteration>.json``);
    names that are no iteration and contents that are no JSON object (a file being written) are skipped."""
    import json

    out: dict[int, dict[str, Any]] = {}
    for name, data in found.items():
        stem, _, suffix = name.rpartition(".")
        if suffix != "json" or not stem.isdigit():
            continue
        try:
            value = json.loads(data)
        except ValueError:
            continue
        if isinstance(value, dict):
            out[int(stem)] = value
    return dict(sorted(out.items()))


class ObjectReader(io.RawIOBase):
    """A stored object as a seekable binary file, each read one ranged ``GET``: what FFmpeg (PyAV) and
    ``zipfile`` need to probe an upload that never had a local copy. Wrap it in ``io.BufferedReader`` so
    small reads share one request."""

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        super().__init__()
        self.store = store
        self.key = key
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.size - self.position)
        if wanted <= 0:
            return 0
        data = self.store.read_range(self.key, self.position, wanted)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


READ_AHEAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredUpload:
    """An upload received straight into the store (``key``): what the API probes and then keeps as the
    scene's video. Offers what probing uses of a ``Path`` (``open``, ``size``, ``str``), so the probe reads
    it with ranged reads instead of from a local copy."""

    store: ObjectStore
    key: str
    size: int

    def open(self, mode: str = "rb") -> io.BufferedReader:
        if mode != "rb":
            raise ValueError("a stored upload is read only")
        return io.BufferedReader(ObjectReader(self.store, self.key, self.size), buffer_size=READ_AHEAD_BYTES)

    def __str__(self) -> str:
        return self.key.rsplit("/", 1)[-1]
