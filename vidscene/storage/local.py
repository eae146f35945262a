"""Local-disk layout of a scene's files under ``<data_dir>/scenes/<scene_id>/``.

Every writer puts a file in place with an atomic rename (see ``SceneFiles.publish``), so a reader that sees a
path sees a whole file; a crash leaves at most a ``*.part`` file that the next run overwrites.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidscene import catalogue


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
        folders = [self.train_dir, self.outputs_dir, self.metrics_dir]
        if not keep_poses:
            folders += [self.frames_dir, self.sfm_dir]
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def create(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Storage:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.scenes_dir = data_dir / "scenes"
        self.tmp_dir = data_dir / "tmp"

    def scene(self, scene_id: str) -> SceneFiles:
        if not scene_id or "/" in scene_id or scene_id.startswith("."):
            raise ValueError(f"invalid scene id {scene_id!r}")
        return SceneFiles(self.scenes_dir / scene_id)

    def remove_scenes(self, scene_ids: Iterable[str]) -> None:
        """The scenes' folders, after their rows are gone (a worker still writing one removes what it adds)."""
        for scene_id in scene_ids:
            self.scene(scene_id).remove()

    def ensure(self) -> None:
        self.scenes_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def free_bytes(self) -> int:
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
