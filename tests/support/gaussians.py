"""Random gaussians and how to compare them with what comes back: in raw training parameters (numpy) for the
export formats' readers, and as torch tensors in front of a tilted camera for the renderers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera
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


Params = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    result: np.ndarray = rot_z @ rot_y @ rot_x
    return result


def tilted_camera(width: int = 45, height: int = 37) -> Camera:
    """Odd image sizes (partial tiles), an off-centre principal point and a rotated, translated camera."""
    return Camera(width=width, height=height, fx=50.0, fy=53.0, cx=width / 2 + 1.3, cy=height / 2 - 0.7,
                  R=rotation(0.08, -0.15, 0.04), t=np.array([0.2, -0.1, 0.3]))


def random_scene(n: int, seed: int, camera: Camera, dtype: torch.dtype = torch.float32) -> Params:
    """Gaussians spread in front of the camera and past its sides (exercises the Jacobian clamp and culling)."""
    gen = torch.Generator().manual_seed(seed)
    cam_pts = torch.rand(n, 3, generator=gen, dtype=torch.float64) * torch.tensor([3.6, 3.0, 3.5]) \
        + torch.tensor([-1.8, -1.5, 0.8], dtype=torch.float64)
    R = torch.as_tensor(camera.R)
    t = torch.as_tensor(camera.t)
    means = (cam_pts - t) @ R  # camera -> world
    quats = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    scales = torch.exp(torch.randn(n, 3, generator=gen, dtype=torch.float64) * 0.5) * 0.12
    opacities = 0.05 + 0.9 * torch.rand(n, generator=gen, dtype=torch.float64)
    sh = torch.randn(n, 16, 3, generator=gen, dtype=torch.float64) * 0.4
    return (means.to(dtype).requires_grad_(), quats.to(dtype).requires_grad_(), scales.to(dtype).requires_grad_(),
            opacities.to(dtype).requires_grad_(), sh.to(dtype).requires_grad_())


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))
