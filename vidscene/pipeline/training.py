"""Pieces both trainers (gaussian and tensorf) share: the result record, the device, atomic checkpoint files.

The loop that writes the checkpoints is ``train_loop``; their names and common keys are ``checkpoints``.

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
