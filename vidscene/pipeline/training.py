"""Pieces both trainers (gaussian and tensorf) share: the result record, atomic checkpoints, resume lookup.

Checkpoints are ``torch.save`` files written to ``<name>.part`` and renamed, so a worker killed mid-write never
leaves a truncated checkpoint that a resumed job would then trip over.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = "resume.th"
_CHECKPOINT_NAME = re.compile(r"^(\d+)\.th$")


@dataclass
class TrainResult:
    """What a finished training run hands to export: the final checkpoint and held-out quality figures."""

    iteration: int
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)  # psnr, ssim (held-out), seconds, s_per_it, ...


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for ``cuda`` on a machine without it is a configuration bug."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but CUDA is not available")
    return torch.device(device)


def checkpoint_path(work_dir: Path, iteration: int) -> Path:
    return work_dir / CHECKPOINT_DIR / f"{iteration}.th"


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to ``path`` atomically: the file either holds the whole checkpoint or does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (plain tensors, numbers, strings and dicts only)."""
    obj = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a vidscene checkpoint")
    return obj


def saved_iterations(work_dir: Path) -> dict[int, Path]:
    """Iteration -> path for every complete ``checkpoints/{iteration}.th`` under ``work_dir``."""
    found: dict[int, Path] = {}
    directory = work_dir / CHECKPOINT_DIR
    if directory.is_dir():
        for p in directory.iterdir():
            m = _CHECKPOINT_NAME.match(p.name)
            if m and p.is_file():
                found[int(m.group(1))] = p
    return found


def find_resume_checkpoint(work_dir: Path, max_iteration: int) -> tuple[int, Path] | None:
    """The newest checkpoint (a saved iteration or ``resume.th``) at or below ``max_iteration``, if any.

    ``resume.th`` must hold an integer ``iteration`` key; it is read only to learn that number. A checkpoint
    that cannot be read is skipped with a warning rather than failing the job: an older one still works.
    """
    candidates = [(it, p) for it, p in saved_iterations(work_dir).items() if it <= max_iteration]
    resume = work_dir / RESUME_FILE
    if resume.is_file():
        try:
            it = int(load_checkpoint(resume)["iteration"])
        except Exception:  # a corrupt file must not block resuming from a good one
            log.warning("ignoring unreadable resume checkpoint", extra={"path": str(resume)}, exc_info=True)
        else:
            if it <= max_iteration:
                candidates.append((it, resume))
    if not candidates:
        return None
    # Prefer a numbered checkpoint over resume.th at the same iteration (it is the one users download).
    return max(candidates, key=lambda c: (c[0], c[1].name != RESUME_FILE))
