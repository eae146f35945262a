"""The 3DGS photometric loss: ``(1 - λ) L1 + λ (1 - SSIM)``."""

from __future__ import annotations

import torch
from torch import Tensor

from vidscene.pipeline.images import ssim_mean


def photometric_loss(pred: Tensor, target: Tensor, ssim_lambda: float) -> tuple[Tensor, Tensor]:
    """``(loss, l1)`` between a rendered and a ground-truth ``(H, W, 3)`` image in 0..1.

    L1 keeps colours right, the SSIM term keeps edges and texture sharp (L1 alone blurs fine detail away in a
    few hundred iterations). ``l1`` is returned detached for logging.
    """
    l1 = (pred - target).abs().mean()
    if ssim_lambda <= 0:
        return l1, l1.detach()
    x = pred.permute(2, 0, 1).unsqueeze(0)
    y = target.permute(2, 0, 1).unsqueeze(0)
    d_ssim = 1.0 - ssim_mean(x, y)
    return (1.0 - ssim_lambda) * l1 + ssim_lambda * d_ssim, l1.detach()


def _sorted_axes(scales: Tensor) -> Tensor:
    return torch.sort(scales, dim=1).values


def needle_penalty(scales: Tensor, max_ratio: float) -> Tensor:
    """PhysGaussian's scale-ratio term, on the longest against the middle axis: ``mean(relu(s_max / s_mid - r))``.

    A needle (one axis far longer than the other two) fits a training view as a thin streak, but from any
    other viewpoint it is a spike; flat discs (two long axes, one short) are how surfaces are drawn, so the
    shortest axis is left alone. ``scales`` (N, 3) are standard deviations (activated); zero for N = 0.
    """
    if scales.shape[0] == 0:
        return scales.sum()
    s = _sorted_axes(scales)
    return torch.relu(s[:, 2] / s[:, 1].clamp_min(1e-12) - max_ratio).mean()


@torch.no_grad()
def needle_share(scales: Tensor, opacities: Tensor, max_ratio: float = 10.0) -> float:
    """Opacity-weighted fraction of gaussians whose longest axis is more than ``max_ratio`` x their middle one
    (the issue's "needle share"); 0 for an empty or fully transparent model."""
    if scales.shape[0] == 0:
        return 0.0
    s = _sorted_axes(scales.detach())
    needles = (s[:, 2] > max_ratio * s[:, 1]).to(opacities.dtype)
    total = float(opacities.detach().sum())
    return float((needles * opacities.detach()).sum()) / total if total > 0 else 0.0
