"""Training images at a working resolution, the train/eval split, and image quality metrics.

Shared by the Gaussian splatting and TensoRF trainers so both train and evaluate on exactly the same pixels.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Any

import numba
import numpy as np
import torch
import torch.nn.functional as F
from numba import prange
from numpy.typing import NDArray
from PIL import Image
from torch import Tensor

from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.errors import TrainingError

logger = logging.getLogger(__name__)


def training_size(width: int, height: int, max_long_side: int) -> tuple[int, int]:
    """(width, height) with the long side at most ``max_long_side``; never upscales, keeps the aspect."""
    long_side = max(width, height)
    if max_long_side <= 0 or long_side <= max_long_side:
        return width, height
    s = max_long_side / long_side
    return max(1, round(width * s)), max(1, round(height * s))


def load_training_images(scene: SceneData, max_long_side: int, *,
                         dtype: torch.dtype = torch.float32) -> tuple[list[Camera], torch.Tensor]:
    """Every camera's image resized to the working resolution, with the cameras scaled to match.

    Returns ``(cameras, images)`` where ``images`` is ``(M, H, W, 3)`` on the CPU, in the order of
    ``scene.cameras``: float32 in 0..1, or with ``dtype=torch.uint8`` exactly the decoded values (a quarter of
    the memory: a float copy of 150 frames at 480x360 is 311 MB of peak RSS, which the gaussian trainer and
    the quality figure need not pay). All images share the first camera's working size (SfM runs with one
    camera model, so they normally already do). Raises ``TrainingError`` when an image is missing or
    unreadable.
    """
    if not scene.cameras:
        raise TrainingError("There are no registered frames to train on.")
    ref = scene.cameras[0]
    w, h = training_size(ref.width, ref.height, max_long_side)
    cameras: list[Camera] = []
    images = torch.empty((len(scene.cameras), h, w, 3), dtype=dtype)
    for i, cam in enumerate(scene.cameras):
        path = scene.images_dir / cam.image_name
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                if rgb.size != (w, h):
                    # Box filter: an exact area average when shrinking, which is what a lower-resolution
                    # sensor would have recorded (bilinear aliases on fine texture).
                    shrink = rgb.width >= w
                    rgb = rgb.resize((w, h), Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC)
                arr = np.asarray(rgb, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"Frame {cam.image_name!r} could not be read for training.") from exc
        pixels = torch.from_numpy(arr.copy())
        images[i] = pixels if dtype == torch.uint8 else unit_float(pixels, dtype)
        cameras.append(cam.scaled(w, h))
    logger.debug("loaded training images", extra={"count": len(cameras), "width": w, "height": h})
    return cameras, images


def unit_float(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Decoded bytes (0..255) as ``dtype`` in 0..1: frames are kept as bytes, a quarter of a float copy's
    memory, and converted only when one is drawn or scored."""
    return pixels.to(dtype) / 255.0


def split_train_eval(n: int, eval_every: int) -> tuple[list[int], list[int]]:
    """Indices ``(train, eval)`` for ``n`` frames: every ``eval_every``-th frame is held out.

    Held-out frames are taken from the middle of each block of ``eval_every`` (not frame 0) so evaluation
    interpolates between training views instead of extrapolating past the path's start. With fewer than
    ``2 * eval_every`` frames (or ``eval_every <= 1``) nothing is held out: every view is needed for training.
    """
    if eval_every <= 1 or n < 2 * eval_every:
        return list(range(n)), []
    offset = eval_every // 2
    held = [i for i in range(n) if i % eval_every == offset]
    train = [i for i in range(n) if i % eval_every != offset]
    return train, held


def psnr(a: Tensor, b: Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two images with values in 0..1 (any matching shape)."""
    mse = float(torch.mean((a.detach().float() - b.detach().float()) ** 2))
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@lru_cache(maxsize=8)
def _gaussian_kernel_1d(size: int, sigma: float, dtype: torch.dtype, device: str) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur_plane_py(x: NDArray[np.float32], g: NDArray[np.float32], tmp: NDArray[np.float32],
                   out: NDArray[np.float32]) -> None:
    """Separable "same"-size blur of one (H, W) plane with zero padding (numba-compiled below).

    Both passes keep the pixel index innermost over contiguous memory so LLVM vectorises them.
    """
    h, w = x.shape
    taps = g.shape[0]
    r = taps // 2
    row = np.zeros(w + 2 * r, np.float32)
    for i in range(h):
        for j in range(w):
            row[r + j] = x[i, j]
            tmp[i, j] = 0.0
        for k in range(taps):
            c = g[k]
            for j in range(w):
                tmp[i, j] += c * row[j + k]
    for i in range(h):
        for j in range(w):
            out[i, j] = 0.0
        for ii in range(max(0, i - r), min(h, i + r + 1)):
            c = g[ii - i + r]
            for j in range(w):
                out[i, j] += c * tmp[ii, j]


def _ssim_forward_py(a: NDArray[np.float32], b: NDArray[np.float32], g: NDArray[np.float32], c1: float,
                     c2: float, d_mu: NDArray[np.float32], d_eaa: NDArray[np.float32],
                     d_eab: NDArray[np.float32]) -> float:
    """Sum of the SSIM map of planes ``a`` vs ``b`` (P, H, W); also the map's partial derivatives with respect
    to the blurred statistics mu_a, E[a²], E[ab], which the backward pass blurs back onto the pixels."""
    n_planes, h, w = a.shape
    totals = np.zeros(n_planes)
    for p in prange(n_planes):
        tmp = np.empty((h, w), np.float32)
        prod = np.empty((h, w), np.float32)
        mu_a = np.empty((h, w), np.float32)
        mu_b = np.empty((h, w), np.float32)
        e_aa = np.empty((h, w), np.float32)
        e_bb = np.empty((h, w), np.float32)
        e_ab = np.empty((h, w), np.float32)
        _blur_plane(a[p], g, tmp, mu_a)
        _blur_plane(b[p], g, tmp, mu_b)
        for i in range(h):
            for j in range(w):
                prod[i, j] = a[p, i, j] * a[p, i, j]
        _blur_plane(prod, g, tmp, e_aa)
        for i in range(h):
            for j in range(w):
                prod[i, j] = b[p, i, j] * b[p, i, j]
        _blur_plane(prod, g, tmp, e_bb)
        for i in range(h):
            for j in range(w):
                prod[i, j] = a[p, i, j] * b[p, i, j]
        _blur_plane(prod, g, tmp, e_ab)
        acc = 0.0
        for i in range(h):
            for j in range(w):
                ma, mb = mu_a[i, j], mu_b[i, j]
                a1 = 2 * ma * mb + c1
                a2 = 2 * (e_ab[i, j] - ma * mb) + c2
                b1 = ma * ma + mb * mb + c1
                b2 = (e_aa[i, j] - ma * ma) + (e_bb[i, j] - mb * mb) + c2
                inv = 1.0 / (b1 * b2)
                s = a1 * a2 * inv
                acc += s
                d_mu[p, i, j] = 2 * mb * (a2 - a1) * inv - 2 * ma * s / b1 + 2 * ma * s / b2
                d_eaa[p, i, j] = -s / b2
                d_eab[p, i, j] = 2 * a1 * inv
        totals[p] = acc
    return float(totals.sum())


def _ssim_backward_py(a: NDArray[np.float32], b: NDArray[np.float32], g: NDArray[np.float32],
                      d_mu: NDArray[np.float32], d_eaa: NDArray[np.float32], d_eab: NDArray[np.float32],
                      scale: float, grad: NDArray[np.float32]) -> None:
    """d(scale * sum SSIM)/da. The blur with a symmetric kernel and zero padding is self-adjoint, so each
    statistic's derivative map goes back through the same blur."""
    n_planes, h, w = a.shape
    for p in prange(n_planes):
        tmp = np.empty((h, w), np.float32)
        g_mu = np.empty((h, w), np.float32)
        g_aa = np.empty((h, w), np.float32)
        g_ab = np.empty((h, w), np.float32)
        _blur_plane(d_mu[p], g, tmp, g_mu)
        _blur_plane(d_eaa[p], g, tmp, g_aa)
        _blur_plane(d_eab[p], g, tmp, g_ab)
        for i in range(h):
            for j in range(w):
                grad[p, i, j] = scale * (g_mu[i, j] + 2 * a[p, i, j] * g_aa[i, j] + b[p, i, j] * g_ab[i, j])


# numba compiles lazily on first call (about two seconds, then cached on disk), so importing stays cheap.
_blur_plane = numba.njit(fastmath=True, cache=True)(_blur_plane_py)
_ssim_forward = numba.njit(parallel=True, fastmath=True, cache=True)(_ssim_forward_py)
_ssim_backward = numba.njit(parallel=True, fastmath=True, cache=True)(_ssim_backward_py)
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


class _FusedSsim(torch.autograd.Function):
    """Mean SSIM of CPU float32 images with fused numba kernels (the prediction gets gradients, the target
    does not). Elementwise PyTorch on ~15 full-image temporaries per step cost more than rendering did."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, g: Tensor) -> Tensor:
        shape = a.shape
        an = np.ascontiguousarray(a.detach().reshape(-1, shape[-2], shape[-1]).numpy(), dtype=np.float32)
        bn = np.ascontiguousarray(b.detach().reshape(-1, shape[-2], shape[-1]).numpy(), dtype=np.float32)
        gn = np.ascontiguousarray(g.numpy(), dtype=np.float32)
        d_mu, d_eaa, d_eab = np.empty_like(an), np.empty_like(an), np.empty_like(an)
        total = _ssim_forward(an, bn, gn, SSIM_C1, SSIM_C2, d_mu, d_eaa, d_eab)
        ctx.arrays = (an, bn, gn, d_mu, d_eaa, d_eab)
        ctx.shape = shape
        return torch.tensor(total / an.size, dtype=a.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None]:
        an, bn, gn, d_mu, d_eaa, d_eab = ctx.arrays
        grad = np.empty_like(an)
        _ssim_backward(an, bn, gn, d_mu, d_eaa, d_eab, float(grad_out) / an.size, grad)
        return torch.from_numpy(grad).reshape(ctx.shape), None, None


def ssim_mean(a: Tensor, b: Tensor, *, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of ``(B, C, H, W)`` images in 0..1 as a scalar tensor, differentiable with respect to ``a``.

    On the CPU (float32, ``b`` not requiring grad) it runs fused numba kernels, about 5x faster than the
    PyTorch formulation; elsewhere it is ``ssim_map(a, b).mean()``.
    """
    if a.device.type == "cpu" and a.dtype == torch.float32 and b.dtype == torch.float32 and not b.requires_grad:
        g = _gaussian_kernel_1d(window, sigma, torch.float32, "cpu")
        out: Tensor = _FusedSsim.apply(a, b, g)
        return out
    return ssim_map(a, b, window=window, sigma=sigma).mean()


def ssim_map(a: Tensor, b: Tensor, *, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM of ``(B, C, H, W)`` images in 0..1 (differentiable; used as a training loss).

    The 11x11 Gaussian window (sigma 1.5) of Wang et al. is applied as two separable 1-D convolutions. Borders
    use zero padding ("same" size output), as the 3DGS reference implementation does. ``ssim_mean`` is the
    fast path for a scalar.
    """
    c = a.shape[1]
    g = _gaussian_kernel_1d(window, sigma, a.dtype, str(a.device))
    gx = g.view(1, 1, 1, window).expand(c, 1, 1, window)
    gy = g.view(1, 1, window, 1).expand(c, 1, window, 1)
    pad = window // 2
    # Filter the five statistics in one batched call.
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=0)
    filt = F.conv2d(F.conv2d(stack, gx, padding=(0, pad), groups=c), gy, padding=(pad, 0), groups=c)
    mu_a, mu_b, e_aa, e_bb, e_ab = filt.chunk(5, dim=0)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a, var_b, cov = e_aa - mu_aa, e_bb - mu_bb, e_ab - mu_ab
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))


def ssim(a: Tensor, b: Tensor) -> float:
    """Mean SSIM between two ``(H, W, 3)`` images with values in 0..1 (evaluation metric, 1 = identical)."""
    x = a.detach().float().permute(2, 0, 1).unsqueeze(0)
    y = b.detach().float().permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        return float(ssim_mean(x, y))
