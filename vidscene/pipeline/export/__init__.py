"""Writers for the files a user downloads: ``.splat``, ``.ply``, ``.mp4``, and the camera path for videos.

Every writer goes through ``atomic_write_path`` so a reader never sees half a file and a full disk becomes a
``StorageFullError`` with no partial file left behind.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from vidscene.pipeline.errors import StorageFullError
from vidscene.storage import is_disk_full, publish

# Keep this much room free beyond the estimated size: filling the disk to the last byte breaks the database
# and every other job sharing it.
_DISK_HEADROOM_BYTES = 64 * 1024 * 1024


def part_path(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed into place."""
    return path.with_name(path.name + ".part")


def ensure_free_space(directory: Path, needed_bytes: int) -> None:
    """Raise ``StorageFullError`` early when ``directory``'s filesystem cannot hold ``needed_bytes`` more."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < needed_bytes + _DISK_HEADROOM_BYTES:
        raise StorageFullError(
            f"The server is out of disk space: writing results needs about {needed_bytes // 2**20 + 1} MiB "
            f"and only {free // 2**20} MiB are free."
        )


@contextlib.contextmanager
def atomic_write_path(path: Path, *, expected_bytes: int = 0) -> Iterator[Path]:
    """Yield a ``.part`` path to write; on success put it in place (``storage.publish``), on any failure delete it.

    ``OSError(ENOSPC/EDQUOT)`` raised inside the block becomes ``StorageFullError``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if expected_bytes:
        ensure_free_space(path.parent, expected_bytes)
    tmp = part_path(path)
    try:
        yield tmp
        publish(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise StorageFullError("The server ran out of disk space while writing results.") from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_file_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through ``atomic_write_path`` (the downloadable model is its checkpoint file)."""
    with atomic_write_path(dst, expected_bytes=src.stat().st_size) as tmp:
        shutil.copyfile(src, tmp)
