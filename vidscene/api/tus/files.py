"""The bytes of a resumable upload: one ``tus-<id>.part`` file (mode 0600) in the data dir's tmp area.

Appending holds an exclusive ``flock`` on the file for the whole PATCH, so a second PATCH on the same upload
(a client retrying while its first connection is still being torn down, or two tabs) is refused instead of
interleaving bytes. ``flock`` belongs to the open file, not the process: two requests in one process exclude
each other too, and a killed process releases it with its descriptors.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterable
from pathlib import Path

from vidscene.api.errors import InsufficientStorageError, LockedError, NotFoundError
from vidscene.storage import is_disk_full

PREFIX = "tus-"
SUFFIX = ".part"


def part_path(tmp_dir: Path, upload_id: str) -> Path:
    return tmp_dir / f"{PREFIX}{upload_id}{SUFFIX}"


def upload_id_of(path: Path) -> str | None:
    name = path.name
    if name.startswith(PREFIX) and name.endswith(SUFFIX):
        return name[len(PREFIX):-len(SUFFIX)] or None
    return None


def create_part(path: Path) -> None:
    """An empty file readable by its owner only; it must not exist yet (ids are random)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if is_disk_full(exc):
            raise InsufficientStorageError() from exc
        raise
    os.close(fd)


def remove_part(path: Path) -> None:
    path.unlink(missing_ok=True)


def part_files(tmp_dir: Path) -> Iterable[Path]:
    return tmp_dir.glob(f"{PREFIX}*{SUFFIX}")


def older_than(path: Path, seconds: float) -> bool:
    try:
        return path.stat().st_mtime < time.time() - seconds
    except FileNotFoundError:
        return False


class PartAppender:
    """An upload's file opened for appending at ``offset``, locked against other appenders until ``close``.

    Bytes past ``offset`` (written before a crash, never fsynced and counted) are cut off first: the
    database's offset is the truth. The file is opened without ``O_CREAT``: an upload terminated meanwhile
    stays gone (``NotFoundError``), never recreated.
    """

    def __init__(self, path: Path, offset: int) -> None:
        try:
            self._fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            raise NotFoundError("Upload not found.") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise LockedError("Another request is appending to this upload; retry when it has ended.") from None
        try:
            os.ftruncate(self._fd, offset)
            os.lseek(self._fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
            raise
        self.path = path
        self.start = offset
        self.written = 0
        self._closed = False

    def write(self, pieces: list[bytes]) -> None:
        try:
            for piece in pieces:
                view = memoryview(piece)
                while view:
                    done = os.write(self._fd, view)  # may write less than asked
                    view = view[done:]
                    self.written += done
        except OSError as exc:
            if is_disk_full(exc):
                raise InsufficientStorageError() from exc
            raise

    def sync(self) -> None:
        """Make what was written durable before the database counts it."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if is_disk_full(exc):
                raise InsufficientStorageError() from exc
            raise

    def discard_written(self) -> None:
        """Cut the file back to where this PATCH began (it is refused as a whole)."""
        os.ftruncate(self._fd, self.start)
        self.written = 0

    def close(self) -> None:
        """Release the lock; idempotent (a descriptor number closed twice could be another file's by then)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self._fd)  # also releases the flock
