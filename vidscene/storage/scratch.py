"""Each worker process's own folder under the scratch dir (``VIDSCENE_SCRATCH_DIR``), and the removal of the
folders whose process is gone.

A stage on ``s3://`` stages its files into the scratch dir and removes them when it ends; a worker killed
with SIGKILL (the kernel's out-of-memory killer, an operator, a spot instance reclaimed) never gets there.
Several workers may share one machine's scratch dir, so a worker may only remove what belongs to no live
process. The proof of life is an ``flock`` on ``worker-<host>-<pid>-<random>.lock``, taken when the process
makes its folder (the same name without ``.lock``) and held until it exits: the kernel drops the lock of a
process that dies however it dies, so a lock anyone can take again marks a dead worker's folder. No pid is
compared (pids are reused, and containers share them), and no clock.

The scratch dir must be on a local disk (``flock`` is not reliable over every network file system), which
is what a scratch dir is for.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "worker-"
LOCK_SUFFIX = ".lock"


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a sweeper may have removed it meanwhile)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _lock(path: Path, *, create: bool) -> int | None:
    """An open descriptor of ``path`` holding its ``flock``, or None when another process holds it, the file
    is gone, or (``create``) the name is taken."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except (FileNotFoundError, FileExistsError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _same_file(path, fd):  # removed by a sweep between our open and our lock
        os.close(fd)
        return None
    return fd


def sweep(base: Path) -> list[Path]:
    """Remove every worker folder under ``base`` whose process is gone; the folders removed.

    Only ``worker-*`` folders with a lock file are considered: anything else in the scratch dir is not
    known to be a worker's and is left alone."""
    removed: list[Path] = []
    try:
        locks = sorted(base.glob(f"{PREFIX}*{LOCK_SUFFIX}"))
    except OSError:
        return removed
    for lock in locks:
        fd = _lock(lock, create=False)
        if fd is None:  # alive (or just removed by another sweep)
            continue
        try:
            folder = lock.with_name(lock.name[: -len(LOCK_SUFFIX)])
            shutil.rmtree(folder, ignore_errors=True)
            lock.unlink(missing_ok=True)  # last: a lock file without a folder is swept again, never the reverse
            removed.append(folder)
        finally:
            os.close(fd)
    if removed:
        log.info("removed the scratch folders of workers that are gone", extra={"folders": [p.name for p in removed]})
    return removed


class WorkerScratch:
    """This process's folder under ``base``: made on first use in each process (a fork makes its own), after
    a sweep of the folders whose workers are gone; each later use sweeps again (a worker that lives long
    cleans up after neighbours that died since)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._fd: int | None = None
        self._pid = 0
        self._root: Path | None = None

    def root(self) -> Path:
        if self._root is None or self._pid != os.getpid():
            self._claim()
        sweep(self.base)
        assert self._root is not None
        return self._root

    def _claim(self) -> None:
        if self._fd is not None:  # inherited through a fork: the lock stays the parent's, the descriptor goes
            os.close(self._fd)
            self._fd = None
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            name = f"{PREFIX}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
            fd = _lock(self.base / f"{name}{LOCK_SUFFIX}", create=True)
            if fd is not None:
                break
        root = self.base / name
        root.mkdir(mode=0o700)
        self._fd, self._pid, self._root = fd, os.getpid(), root

    def release(self) -> None:
        """Remove this process's folder and let go of it (a worker shutting down cleanly)."""
        if self._root is None or self._fd is None or self._pid != os.getpid():
            return
        shutil.rmtree(self._root, ignore_errors=True)
        (self.base / f"{self._root.name}{LOCK_SUFFIX}").unlink(missing_ok=True)
        os.close(self._fd)
        self._fd, self._root = None, None
