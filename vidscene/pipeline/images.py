"""Training images at a working resolution, the train/eval split, and image quality metrics.

Shared by the Gaussian splatting and TensoRF trainers so both train and evaluate on exactly the same pixels.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

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


def load_training_images(scene: SceneData, max_long_side: int) -> tuple[list[Camera], torch.Tensor]:
    """Every camera's image resized to the working resolution, with the cameras scaled to match.

    Returns ``(cameras, images)`` where ``images`` is ``(M, H, W, 3)`` float32 in 0..1 on the CPU, in the
    order of ``scene.cameras``. All images share the first camera's working size (SfM runs with one camera
    model, so they normally already do). Raises ``TrainingError`` when an image is missing or unreadable.
    """
    if not scene.cameras:
        raise TrainingError("There are no registered frames to train on.")
    ref = scene.cameras[0]
    w, h = training_size(ref.width, ref.height, max_long_side)
    cameras: list[Camera] = []
    images = torch.empty((len(scene.cameras), h, w, 3), dtype=torch.float32)
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
        images[i] = torch.from_numpy(arr.copy()).to(torch.float32) / 255.0
        cameras.append(cam.scaled(w, h))
    logger.debug("loaded training images", extra={"count": len(cameras), "width": w, "height": h})
    return cameras, images


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


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two images with values in 0..1 (any matching shape)."""
    mse = float(torch.mean((a.detach().float() - b.detach().float()) ** 2))
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@lru_cache(maxsize=8)
def _gaussian_kernel_1d(size: int, sigma: float, dtype: torch.dtype, device: str) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def ssim_map(a: torch.Tensor, b: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM of ``(B, C, H, W)`` images in 0..1 (differentiable; used as a training loss).

    The 11x11 Gaussian window (sigma 1.5) of Wang et al. is applied as two separable 1-D convolutions, which
    is ~5x cheaper than the 2-D convolution on the CPU. Borders use zero padding ("same" size output), as the
    3DGS reference implementation does.
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


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM between two ``(H, W, 3)`` images with values in 0..1 (evaluation metric, 1 = identical)."""
    x = a.detach().float().permute(2, 0, 1).unsqueeze(0)
    y = b.detach().float().permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        return float(ssim_map(x, y).mean())
