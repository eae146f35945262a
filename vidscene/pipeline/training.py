"""Pieces both trainers (gaussian and tensorf) share: the result record, atomic checkpoints, resume lookup.

The loop that writes the checkpoints is ``train_loop``.

Checkpoints are ``torch.save`` files written to ``<name>.part`` and renamed, so a worker killed mid-write never
leaves a truncated checkpoint that a resumed job would then trip over.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidscene.pipeline.export import atomic_write_path

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
# Each trainer names its files with its own suffix (gaussian ``.ckpt``, TensoRF ``.th`` as in its reference code).
DEFAULT_SUFFIX = ".th"
RESUME_FILE = "resume.th"


@dataclass
class TrainResult:
    """What a finished training run hands to export: the final checkpoint and held-out quality figures."""

    iteration: int
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)  # psnr, ssim (held-out), seconds, s_per_it, ...


def resolve_device(device: str, *, cuda_usable: Callable[[], bool] = torch.cuda.is_available) -> torch.device:
    """``auto`` picks CUDA when ``cuda_usable()`` says the method can run there (the gaussian renderer also
    needs gsplat, so it passes its own probe); asking for ``cuda`` on a machine without CUDA is a
    configuration bug and raises ``RuntimeError``."""
    if device == "auto":
        return torch.device("cuda" if cuda_usable() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but CUDA is not available")
    return torch.device(device)


def checkpoint_path(work_dir: Path, iteration: int, suffix: str = DEFAULT_SUFFIX) -> Path:
    return work_dir / CHECKPOINT_DIR / f"{iteration}{suffix}"


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to ``path`` atomically (``.part``, fsync, rename): the file holds the whole checkpoint or
    does not exist. Raises ``StorageFullError`` up front when the disk cannot hold the tensors it contains."""
    expected = _tensor_bytes(obj)
    with atomic_write_path(path, expected_bytes=expected) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return int(obj.numel() * obj.element_size())
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (plain tensors, numbers, strings and dicts only)."""
    obj = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a vidscene checkpoint")
    return obj


def saved_iterations(work_dir: Path, suffix: str = DEFAULT_SUFFIX) -> dict[int, Path]:
    """Iteration -> path for every complete ``checkpoints/{iteration}{suffix}`` under ``work_dir``."""
    found: dict[int, Path] = {}
    directory = work_dir / CHECKPOINT_DIR
    if directory.is_dir():
        for p in directory.iterdir():
            if p.suffix == suffix and p.stem.isdigit() and p.is_file():
                found[int(p.stem)] = p
    return found


def find_resume_checkpoint(work_dir: Path, max_iteration: int, *, suffix: str = DEFAULT_SUFFIX,
                           resume_file: str = RESUME_FILE,
                           load: Callable[[Path], dict[str, Any]] = load_checkpoint) -> tuple[int, Path] | None:
    """The newest checkpoint (a saved iteration or the periodic resume file) at or below ``max_iteration``.

    The resume file must hold an integer ``iteration`` key; it is read only to learn that number. A checkpoint
    that cannot be read is skipped with a warning rather than failing the job: an older one still works.
    """
    candidates = [(it, p) for it, p in saved_iterations(work_dir, suffix).items() if it <= max_iteration]
    resume = work_dir / resume_file
    if resume.is_file():
        try:
            it = int(load(resume)["iteration"])
        except Exception:  # a corrupt file must not block resuming from a good one
            log.warning("ignoring unreadable resume checkpoint", extra={"path": str(resume)}, exc_info=True)
        else:
            if it <= max_iteration:
                candidates.append((it, resume))
    if not candidates:
        return None
    # Prefer a numbered checkpoint over the resume file at the same iteration (it is the one users download).
    return max(candidates, key=lambda c: (c[0], c[1].name != resume_file))


@dataclass(frozen=True)
class CheckpointFiles:
    """One training method's checkpoint names under a work dir and the reader that checks its format.

    Numbered checkpoints are ``checkpoints/{iteration}{suffix}``; ``resume_file`` is the periodic one.
    """

    suffix: str = DEFAULT_SUFFIX
    resume_file: str = RESUME_FILE
    load: Callable[[Path], dict[str, Any]] = load_checkpoint

    def path(self, work_dir: Path, iteration: int) -> Path:
        return checkpoint_path(work_dir, iteration, self.suffix)

    def find_resume(self, work_dir: Path, max_iteration: int) -> tuple[int, Path] | None:
        """See ``find_resume_checkpoint``."""
        return find_resume_checkpoint(work_dir, max_iteration, suffix=self.suffix, resume_file=self.resume_file,
                                      load=self.load)
