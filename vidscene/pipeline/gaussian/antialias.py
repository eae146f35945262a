"""Mip-Splatting's 3D smoothing filter: no gaussian may be thinner than the training cameras could resolve.

A gaussian fitted to 240-px frames can shrink far below a training pixel without the loss noticing; rendered
larger or closer (a 1000-px viewer, a zoom), it shows as sparkles and needles. Yu et al. (Mip-Splatting, CVPR
2024) bound each gaussian by a 3D low-pass: its covariance gets ``+ v I`` where ``v`` is ``FILTER_VARIANCE``
(in squared pixels) divided by the square of the highest sampling rate, ``focal / depth``, at which any training
camera sees it, and its opacity is scaled by ``sqrt(det Σ / det(Σ + v I))`` so that the gaussian's integral,
what the training views saw, is unchanged.

Applied to scales and opacities *before* rendering, the filter is the same maths on every backend (the CPU
kernels, the dense reference, gsplat on CUDA, whose rasterizer needs no option for it) and it can be baked
into the exported scales and opacities (:func:`bake`), so Spark and every other viewer, which know nothing of
it, draw what training optimised. Scales are along the gaussian's own axes, so ``Σ + v I`` keeps the rotation
and only the scales change: ``s' = sqrt(s² + v)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.project import NEAR_PLANE

# Mip-Splatting's 3D filter: a variance of 0.2 squared pixels at the finest training sampling rate.
FILTER_VARIANCE = 0.2
# A camera "sees" a gaussian whose centre projects within this margin around the image (Mip-Splatting: 15%).
SCREEN_MARGIN = 0.15


@torch.no_grad()
def filter_variances(means: Tensor, cameras: Sequence[Camera], variance_px: float = FILTER_VARIANCE) -> Tensor:
    """(N,) world-space variance of each gaussian's 3D filter, from the training ``cameras``.

    A gaussian that no camera sees (behind every camera or far off-screen) gets the largest filter of the
    others, as in Mip-Splatting: nothing measured it, so it is kept smooth. With no camera seeing any gaussian
    every variance is 0 (no filter).
    """
    pts = means.detach()
    best = torch.zeros(pts.shape[0], dtype=pts.dtype, device=pts.device)  # highest focal / depth so far
    for cam in cameras:
        R = torch.as_tensor(cam.R, dtype=pts.dtype, device=pts.device)
        t = torch.as_tensor(cam.t, dtype=pts.dtype, device=pts.device)
        p = pts @ R.T + t
        z = p[:, 2]
        in_front = z > NEAR_PLANE
        z_safe = torch.where(in_front, z, torch.ones_like(z))
        u = cam.fx * p[:, 0] / z_safe + cam.cx
        v = cam.fy * p[:, 1] / z_safe + cam.cy
        mx, my = SCREEN_MARGIN * cam.width, SCREEN_MARGIN * cam.height
        seen = in_front & (u >= -mx) & (u <= cam.width + mx) & (v >= -my) & (v <= cam.height + my)
        rate = torch.where(seen, max(cam.fx, cam.fy) / z_safe, torch.zeros_like(z))
        best = torch.maximum(best, rate)
    seen_any = best > 0
    if not bool(seen_any.any()):
        return torch.zeros_like(best)
    variances = torch.where(seen_any, variance_px / best.clamp_min(1e-12) ** 2, torch.zeros_like(best))
    return torch.where(seen_any, variances, variances.max())


def apply_filter(scales: Tensor, opacities: Tensor, variances: Tensor) -> tuple[Tensor, Tensor]:
    """``(scales', opacities')`` of gaussians convolved with their filter: ``s' = sqrt(s² + v)`` per axis and
    ``o' = o sqrt(prod s² / prod s'²)``. Differentiable in ``scales`` and ``opacities`` (activated values:
    standard deviations and 0..1)."""
    sq = scales * scales
    v = variances.to(scales.dtype)[:, None]
    filtered_sq = sq + v
    # The determinant ratio as a product of per-axis ratios: no underflow for tiny gaussians.
    coef = torch.sqrt(torch.prod(sq / filtered_sq, dim=1))
    return torch.sqrt(filtered_sq), opacities * coef


def bake(log_scales: Tensor, opacity_logits: Tensor, variances: Tensor) -> tuple[Tensor, Tensor]:
    """The filtered gaussians as raw parameters (log scales, opacity logits), as exported files store them."""
    scales, opacities = apply_filter(torch.exp(log_scales), torch.sigmoid(opacity_logits), variances)
    opacities = opacities.clamp(1e-7, 1.0 - 1e-7)
    return torch.log(scales), torch.log(opacities) - torch.log1p(-opacities)
