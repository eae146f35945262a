"""Local-disk layout of a scene's files under ``<data_dir>/scenes/<scene_id>/``.

Every writer puts a file in place with an atomic rename (see ``SceneFiles.publish``), so a reader that sees a
path sees a whole file; a crash leaves at most a ``*.part`` file that the next run overwrites.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vidscene import catalogue
from vidscene.storage.objects import LocalFile, ObjectStore, Readable, StoredObject, parse_metrics

# What a retry removes (``remove_results``): what training and export made, and with the poses also these.
_RESULTS = ("train", "outputs", "metrics")
_POSES = ("frames", "sfm")


@dataclass(frozen=True)
class SceneFiles:
    root: Path

    @property
    def upload_dir(self) -> Path:
        return self.root / "upload"

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    @property
    def thumbnail(self) -> Path:
        return self.root / "thumbnail.jpg"

    @property
    def capture_report(self) -> Path:
        """What the capture check found (``pipeline.capture_check``): written after frames, updated after SfM."""
        return self.root / "capture.json"

    def read_capture_report(self) -> dict[str, Any] | None:
        """The capture check's report, or None before the frames stage wrote one."""
        try:
            found = json.loads(self.capture_report.read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    @property
    def sfm_dir(self) -> Path:
        return self.root / "sfm"

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def metrics_dir(self) -> Path:
        """Quality numbers per saved iteration (``<iteration>.json``, see ``pipeline.evaluate``)."""
        return self.root / "metrics"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def initial_view(self) -> Path:
        """The first capture camera in the exported splats' frame (``pipeline.export.initial_view``)."""
        return self.outputs_dir / "initial_view.json"

    def read_initial_view(self) -> dict[str, Any] | None:
        """The first capture camera, or None before export (and for scenes exported before it existed)."""
        try:
            found = json.loads(self.initial_view.read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def output_path(self, output_type: str, iteration: int, extension: str | None = None) -> Path:
        """Where an output lives; ``extension`` is the one the scene's training mode gives it in the catalogue
        (default: the output type's first)."""
        ext = extension or next(iter(catalogue.OUTPUT_TYPES[output_type].extensions.values()))
        return self.outputs_dir / output_type / f"{iteration}{ext}"

    def edits_dir(self, version: int | None = None) -> Path:
        """Where the files of edit ``version`` live (``edits/`` holds every version): beside the originals,
        which an edit never touches."""
        root = self.outputs_dir / "edits"
        return root if version is None else root / str(version)

    def edited_output_path(self, version: int, output_type: str, iteration: int, extension: str) -> Path:
        """An output of edit ``version`` (0 is the original: ``output_path``)."""
        if version == 0:
            return self.output_path(output_type, iteration, extension)
        return self.edits_dir(version) / output_type / f"{iteration}{extension}"

    def checkpoint_path(self, iteration: int, training_mode: str) -> Path:
        """The saved model of ``iteration`` (``pipeline.checkpoints``: ``train/checkpoints/<iteration><model
        extension>``), from which outputs are made after the fact."""
        extension = catalogue.OUTPUT_TYPES["model"].extension(training_mode)
        return self.train_dir / "checkpoints" / f"{iteration}{extension}"

    def read_metrics(self) -> dict[int, dict[str, Any]]:
        """Every saved iteration's quality numbers, by iteration (a file being written is skipped)."""
        out: dict[int, dict[str, Any]] = {}
        if not self.metrics_dir.is_dir():
            return out
        for path in self.metrics_dir.glob("*.json"):
            if not path.stem.isdigit():
                continue
            try:
                out[int(path.stem)] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return dict(sorted(out.items()))

    def remove_results(self, *, keep_poses: bool) -> None:
        """Drop what training and export made (and the frames and poses unless ``keep_poses``) so a retried
        job starts clean; the upload and the thumbnail stay."""
        for folder in _RESULTS + (() if keep_poses else _POSES):
            shutil.rmtree(self.root / folder, ignore_errors=True)

    def open_file(self, relpath: str) -> LocalFile | None:
        """A regular file inside the scene folder, found by one ``stat``; None for anything else.

        The check is lexical (no ``resolve()``: the scene folder holds no symbolic links), because it runs on
        every chunk request.
        """
        parts = safe_parts(relpath)
        if parts is None:
            return None
        path = self.root.joinpath(*parts)
        try:
            status = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return LocalFile(path, status) if stat.S_ISREG(status.st_mode) else None

    def create(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def safe_parts(relpath: str) -> tuple[str, ...] | None:
    """The parts of a relative path recorded by the pipeline; None for one that is absolute or climbs out."""
    parts = PurePosixPath(relpath).parts
    if not parts or parts[0] == "/" or ".." in parts:
        return None
    return parts


def scene_key(scene_id: str, relpath: str = "") -> str:
    """A scene's object key in a store: its data-dir path below ``scenes/``."""
    return f"scenes/{scene_id}/{relpath}"


class Storage:
    """Where scenes live: the data dir (``file://``, the default), or an object store (``objects``) with the
    same layout under ``scenes/<id>/``. The API reads scenes through the methods taking a scene id, which
    answer from either; workers stage a store's objects into a local ``SceneFiles`` (``storage.staging``)."""

    def __init__(self, data_dir: Path, *, objects: ObjectStore | None = None,
                 presign_seconds: int | None = None) -> None:
        self.data_dir = data_dir
        self.scenes_dir = data_dir / "scenes"
        self.tmp_dir = data_dir / "tmp"
        self.objects = objects
        self.presign_seconds = presign_seconds

    def scene(self, scene_id: str) -> SceneFiles:
        if not scene_id or "/" in scene_id or scene_id.startswith("."):
            raise ValueError(f"invalid scene id {scene_id!r}")
        return SceneFiles(self.scenes_dir / scene_id)

    def remove_scenes(self, scene_ids: Iterable[str]) -> None:
        """The scenes' folders (and objects), after their rows are gone (a worker still writing one removes
        what it adds)."""
        for scene_id in scene_ids:
            self.scene(scene_id).remove()
            if self.objects is not None:
                self.objects.delete_prefix(scene_key(scene_id))

    def remove_results(self, scene_id: str, *, keep_poses: bool) -> None:
        """``SceneFiles.remove_results`` in whichever place the scene lives."""
        if self.objects is None:
            self.scene(scene_id).remove_results(keep_poses=keep_poses)
            return
        for folder in _RESULTS + (() if keep_poses else _POSES):
            self.objects.delete_prefix(scene_key(scene_id, f"{folder}/"))

    def remove_edits(self, scene_id: str, which: Callable[[int], bool] | None = None) -> int:
        """Remove the files of the scene's edit versions that ``which`` picks (every version: None), in the
        data dir and in the store; how many objects went. An edit's files are dead once another version is
        served or the edit is reverted, and in a store nothing else would ever delete them."""
        root = self.scene(scene_id).edits_dir()
        if which is None:
            shutil.rmtree(root, ignore_errors=True)
        elif root.is_dir():
            for entry in root.iterdir():
                if entry.name.isdigit() and which(int(entry.name)):
                    shutil.rmtree(entry, ignore_errors=True)
        if self.objects is None:
            return 0
        prefix = scene_key(scene_id, "outputs/edits/")
        if which is None:
            return self.objects.delete_prefix(prefix)
        dead = [prefix + rel for rel in self.objects.listing(prefix)
                if rel.partition("/")[0].isdigit() and which(int(rel.partition("/")[0]))]
        self.objects.delete(dead)
        return len(dead)

    def open_file(self, scene_id: str, relpath: str, *, first: tuple[int, int] | None = None) -> Readable | None:
        """Open this scene file (an output, the thumbnail) for reading: None when it is not (yet) there.

        ``first`` (offset, size): the span the caller will read first (a ``Range`` request's), which a store
        then reads with the file's size and date in one request instead of two."""
        if self.objects is None:
            return self.scene(scene_id).open_file(relpath)
        if safe_parts(relpath) is None:
            return None
        key = scene_key(self.scene(scene_id).root.name, relpath)  # scene() refuses a malformed id
        if first is not None and self.presign_seconds is None:
            found = self.objects.read_first(key, *first)
            if found is None:
                return None
            return StoredObject(self.objects, key, found[0], first=(first[0], found[1]))
        info = self.objects.stat(key)
        return None if info is None else StoredObject(self.objects, key, info, self.presign_seconds)

    def file_sizes(self, scene_id: str, relpaths: list[str]) -> dict[str, int]:
        """The sizes of those of a scene's files that are there (what the polled metadata route reports):
        one ``stat`` each in the data dir, one listing of ``outputs/`` in a store instead of a request each."""
        if self.objects is None or not all(relpath.startswith("outputs/") for relpath in relpaths):
            found = {relpath: self.open_file(scene_id, relpath) for relpath in relpaths}
            return {relpath: file.size for relpath, file in found.items() if file is not None}
        if not relpaths:
            return {}
        listed = self.objects.listing(scene_key(self.scene(scene_id).root.name, "outputs/"))
        sizes = {f"outputs/{name}": info.size for name, info in listed.items()}
        return {relpath: sizes[relpath] for relpath in relpaths if relpath in sizes and safe_parts(relpath)}

    def kept_models(self, scene_id: str, iterations: list[int], training_mode: str) -> list[int]:
        """Those of ``iterations`` whose trained model is kept (on disk or in the store): where outputs can be
        made after the fact. A local check alone said "none" for every scene kept in a store."""
        files = self.scene(scene_id)
        relpaths = {it: files.checkpoint_path(it, training_mode).relative_to(files.root).as_posix()
                    for it in iterations}
        sizes = self.file_sizes(scene_id, list(relpaths.values()))
        return [it for it in iterations if relpaths[it] in sizes]

    def read_json(self, scene_id: str, relpath: str) -> dict[str, Any] | None:
        """A JSON object the pipeline wrote (``capture.json``, ``outputs/initial_view.json``), or None."""
        if self.objects is None:
            path = self.scene(scene_id).root / relpath
            data = path.read_bytes() if path.is_file() else None
        else:
            data = self.objects.read_bytes(scene_key(scene_id, relpath))
        try:
            found = json.loads(data) if data is not None else None
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def read_metrics(self, scene_id: str) -> dict[int, dict[str, Any]]:
        """``SceneFiles.read_metrics`` in whichever place the scene lives."""
        if self.objects is None:
            return self.scene(scene_id).read_metrics()
        prefix = scene_key(scene_id, "metrics/")
        names = [name for name in self.objects.listing(prefix) if "/" not in name]
        found = {name: self.objects.read_bytes(prefix + name) for name in names}
        return parse_metrics({name: data for name, data in found.items() if data is not None})

    def keep_upload(self, scene_id: str, filename: str, upload: Path) -> None:
        """Make a received upload the scene's ``upload/<filename>``: renamed in the data dir, or sent to the
        store (and the local file removed)."""
        if self.objects is None:
            publish(upload, self.scene(scene_id).upload_dir / filename)
            return
        self.objects.put_file(scene_key(scene_id, f"upload/{filename}"), upload)
        upload.unlink(missing_ok=True)

    def keep_stored_upload(self, scene_id: str, filename: str, key: str) -> None:
        """Make an upload already in the store (``key``) the scene's ``upload/<filename>``."""
        assert self.objects is not None
        self.objects.copy(key, scene_key(scene_id, f"upload/{filename}"))
        self.objects.delete([key])

    def ensure(self) -> None:
        self.scenes_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def check(self) -> None:
        """Raise ``StoreUnavailableError`` (naming the store and why) when the object store cannot be used."""
        if self.objects is not None:
            self.objects.check()

    def free_bytes(self) -> int:
        """Free space for uploads; an object store's is not ours to measure (its quota answers for it)."""
        if self.objects is not None:
            return 2**62
        self.ensure()
        return shutil.disk_usage(self.data_dir).free


_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means the disk (or the user's quota) is full: the one test every layer uses.

    Read from ``errno`` rather than the type: FFmpeg's errors (PyAV) carry one without being ``OSError``.
    """
    return getattr(exc, "errno", None) in _DISK_FULL_ERRNOS


def publish(tmp: Path, final: Path) -> None:
    """Move a finished temporary file into place atomically (same filesystem) and fsync the directory."""
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.replace(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
