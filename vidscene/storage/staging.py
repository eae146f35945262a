"""A stage's view of a scene kept in an object store: its inputs downloaded into a scratch folder, its
results sent back, the folder removed afterwards (``StagedScene``). With the data dir (``file://``) the
stage works in the scene's own folder and nothing moves (``InPlace``).

What a retry may meet: objects are whole (an S3 PUT or multipart upload is atomic), a stage's results are
sent before the job records the stage as done, and a stage's own result folders are never fetched for it
(``StagePlan.fetch`` names only what comes before), so a stage killed half-way through sending them is
simply run again, and ``StagedScene.finish`` then deletes the objects it did not make this time. Training is
the exception on purpose: it fetches ``train/`` (each checkpoint a whole object) to resume from the newest.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vidscene.storage.local import SceneFiles, scene_key
from vidscene.storage.objects import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagePlan:
    """Relative paths of a scene (``name/`` for a folder): what a stage reads (``fetch``, less ``skip``),
    what it writes (``mirror``), and what is worth sending while it runs (``sync``: checkpoints)."""

    fetch: tuple[str, ...]
    mirror: tuple[str, ...]
    skip: tuple[str, ...] = ()
    sync: tuple[str, ...] = ()


def _under(relpath: str, entries: tuple[str, ...]) -> bool:
    return any(relpath.startswith(entry) if entry.endswith("/") else relpath == entry for entry in entries)


class Staging(Protocol):
    files: SceneFiles

    def fetch(self) -> None: ...

    def syncing(self, seconds: float) -> AbstractContextManager[None]: ...

    def push_file(self, path: Path) -> None: ...

    def finish(self) -> None: ...

    def remove(self) -> None: ...


class InPlace:
    """The data dir: the stage reads and writes the scene's folder itself."""

    def __init__(self, files: SceneFiles) -> None:
        self.files = files

    def fetch(self) -> None:
        """Nothing to fetch."""

    @contextmanager
    def syncing(self, seconds: float) -> Iterator[None]:
        yield

    def push_file(self, path: Path) -> None:
        """Already in place."""

    def finish(self) -> None:
        """Already in place."""

    def remove(self) -> None:
        """The scene's folder is its storage: kept."""


class StagedScene:
    """One stage's scratch copy of a scene in the store (see the module docstring)."""

    def __init__(self, store: ObjectStore, scene_id: str, root: Path, plan: StagePlan) -> None:
        self.store = store
        self.scene_id = scene_id
        self.files = SceneFiles(root)
        self.plan = plan
        self._prefix = scene_key(scene_id)
        self._sent: dict[str, tuple[int, int]] = {}  # relpath -> (size, mtime_ns) the store holds
        self._lock = threading.Lock()

    def fetch(self) -> None:
        """A clean scratch folder holding the objects the stage reads (a killed run's leftovers removed)."""
        self.remove()
        self.files.root.mkdir(mode=0o700, parents=True)
        for relpath in self.store.listing(self._prefix):
            if not _under(relpath, self.plan.fetch) or _under(relpath, self.plan.skip) or relpath.endswith("/"):
                continue
            path = self.files.root / relpath
            self.store.get_file(self._prefix + relpath, path)
            status = path.stat()
            self._sent[relpath] = (status.st_size, status.st_mtime_ns)

    @contextmanager
    def syncing(self, seconds: float) -> Iterator[None]:
        """While the block runs, send new files under ``plan.sync`` every ``seconds`` (training's
        checkpoints, so a stage resumed on another machine starts from the newest)."""
        if not self.plan.sync:
            yield
            return
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(seconds):
                try:
                    self._push(self.plan.sync, delete=False)
                except Exception:  # the stage goes on; the next round or the end of the stage sends it
                    log.warning("sending checkpoints to the store failed", exc_info=True,
                                extra={"scene": self.scene_id})

        thread = threading.Thread(target=loop, name=f"sync-{self.scene_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def push_file(self, path: Path) -> None:
        """Send one finished file now (an output, before its row is written)."""
        relpath = path.relative_to(self.files.root).as_posix()
        with self._lock:
            self._send(relpath, path)

    def finish(self) -> None:
        """Send what the stage wrote, then delete the objects under its folders that it no longer has."""
        self._push(self.plan.mirror, delete=True)

    def remove(self) -> None:
        shutil.rmtree(self.files.root, ignore_errors=True)

    def _push(self, entries: tuple[str, ...], *, delete: bool) -> None:
        with self._lock:
            local = {relpath: path for relpath, path in self._local_files() if _under(relpath, entries)}
            for relpath, path in sorted(local.items()):
                self._send(relpath, path)
            if delete:
                stale = [relpath for relpath in self.store.listing(self._prefix)
                         if _under(relpath, entries) and relpath not in local]
                self.store.delete(self._prefix + relpath for relpath in stale)

    def _send(self, relpath: str, path: Path) -> None:
        try:
            status = path.stat()
        except FileNotFoundError:  # replaced or removed since it was listed (a resume file)
            return
        if self._sent.get(relpath) == (status.st_size, status.st_mtime_ns):
            return
        self.store.put_file(self._prefix + relpath, path)
        self._sent[relpath] = (status.st_size, status.st_mtime_ns)

    def _local_files(self) -> Iterator[tuple[str, Path]]:
        """Whole files only: anything named ``*.part`` (or inside such a folder) is still being written."""
        root = self.files.root
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.endswith(".part")]
            for name in names:
                if name.endswith(".part") or ".part." in name:
                    continue
                path = Path(folder) / name
                yield path.relative_to(root).as_posix(), path
