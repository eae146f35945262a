"""Random gaussians in raw training parameters, and how to compare them with what a reader gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from vidscene.pipeline.errors import StorageFullError

F32 = NDArray[np.float32]


@dataclass
class Sample:
    means: F32
    log_scales: F32
    quats: F32  # unnormalised w, x, y, z
    opacity_logits: F32
    sh: F32  # (N, K, 3), DC first

    def take(self, index: NDArray[np.intp]) -> Sample:
        return Sample(self.means[index], self.log_scales[index], self.quats[index], self.opacity_logits[index],
                      self.sh[index])


def random_gaussians(n: int, sh_degree: int = 3, seed: int = 0) -> Sample:
    """Values inside what the compact formats can hold (SH rest in -1..1, log scales in -10..5)."""
    rng = np.random.default_rng(seed)
    k = (sh_degree + 1) ** 2
    sh = rng.uniform(-0.95, 0.95, size=(n, k, 3)).astype(np.float32)
    sh[:, 0, :] = rng.uniform(-1.7, 1.7, size=(n, 3))  # colours 0.5 + C0 * DC within about 0..1
    return Sample(means=rng.normal(scale=2.0, size=(n, 3)).astype(np.float32),
                  log_scales=rng.uniform(-7, 0, size=(n, 3)).astype(np.float32),
                  quats=rng.normal(size=(n, 4)).astype(np.float32),
                  opacity_logits=rng.normal(scale=2.0, size=n).astype(np.float32),
                  sh=sh)


def sigmoid(x: NDArray[np.floating]) -> NDArray[np.float64]:
    return np.asarray(np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=np.float64))), dtype=np.float64)


def rotation_alignment(read_wxyz: NDArray[np.floating], written_wxyz: NDArray[np.floating]) -> NDArray[np.float64]:
    """|cos| of half the angle between the rotations (1 = the same rotation; q and -q are the same)."""
    a = np.asarray(read_wxyz, dtype=np.float64)
    b = np.asarray(written_wxyz, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray(np.abs((a * b).sum(axis=1)), dtype=np.float64)


GaussianWriter = Callable[[Path, F32, F32, F32, F32, F32], None]


def assert_full_disk_leaves_nothing(writer: GaussianWriter, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that meets a full disk raises ``StorageFullError`` and leaves no file, partial or whole."""
    class Usage:
        total, used, free = 10**9, 10**9, 1024

    monkeypatch.setattr("vidscene.pipeline.export.shutil.disk_usage", lambda _p: Usage())
    g = random_gaussians(10)
    with pytest.raises(StorageFullError):
        writer(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    assert list(path.parent.iterdir()) == []
