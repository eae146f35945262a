"""Floater clean-up before export: the gaussians a viewer would show as haze or blobs but that draw nothing
the training views needed.

Three kinds go: near-transparent ones (training stops pruning when densification ends, so late faders stay),
huge ones (a blob wider than a good part of the scene is a floater that happened to fit a few views), and
those far outside both the cameras and the scene's robust bounds (SfM outliers and strays that drifted off,
which stretch a viewer's "frame the scene" and its depth range). The clean-up never empties a model: if every
gaussian would go, it keeps them all, so a model that learned nothing is still reported as such by the
trainer's collapse checks (``collapse.py``), never turned into an empty file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidscene.pipeline.cameras import Camera

logger = logging.getLogger(__name__)

MIN_OPACITY = 1.0 / 255.0  # below this a gaussian cannot change any pixel by one grey level (project.ALPHA_MIN)
HUGE_FRACTION = 0.5  # longest standard deviation above this fraction of the bounds' half-diagonal
ROBUST_QUANTILE = 0.02  # the scene's robust box: these quantiles of the opacity-weighted centres, per axis
BOUNDS_GROWTH = 2.0  # the kept box: the union of cameras and robust box, grown this many times about its centre


@dataclass(frozen=True)
class Cleanup:
    keep: Tensor  # (N,) bool
    transparent: int
    huge: int
    outside: int

    @property
    def dropped(self) -> int:
        return int((~self.keep).sum())


def _weighted_quantiles(values: Tensor, weights: Tensor, qs: Sequence[float]) -> list[Tensor]:
    order = torch.argsort(values)
    cdf = torch.cumsum(weights[order], dim=0)
    cdf = cdf / cdf[-1].clamp_min(1e-12)
    return [values[order][torch.searchsorted(cdf, torch.tensor(q, dtype=cdf.dtype)).clamp(max=len(values) - 1)]
            for q in qs]


@torch.no_grad()
def floater_mask(means: Tensor, scales: Tensor, opacities: Tensor, cameras: Sequence[Camera]) -> Cleanup:
    """Which gaussians to keep. ``scales`` and ``opacities`` are activated (standard deviations, 0..1), as
    rendered (after the 3D filter). The bounds: the box of the camera centres and the box between the
    ``ROBUST_QUANTILE`` quantiles of the visible gaussians' centres (opacity-weighted), their union grown
    ``BOUNDS_GROWTH`` times about its centre; "huge" is relative to that box."""
    n = means.shape[0]
    transparent = opacities < MIN_OPACITY
    if n == 0:
        return Cleanup(keep=torch.ones(0, dtype=torch.bool), transparent=0, huge=0, outside=0)
    lo = torch.full((3,), float("inf"), dtype=means.dtype)
    hi = torch.full((3,), float("-inf"), dtype=means.dtype)
    if cameras:
        centers = torch.as_tensor(np.stack([c.center for c in cameras]), dtype=means.dtype)
        lo, hi = centers.min(dim=0).values, centers.max(dim=0).values
    visible = ~transparent
    if bool(visible.any()):
        pts, w = means[visible], opacities[visible]
        for axis in range(3):
            q_lo, q_hi = _weighted_quantiles(pts[:, axis], w, (ROBUST_QUANTILE, 1.0 - ROBUST_QUANTILE))
            lo[axis] = torch.minimum(lo[axis], q_lo)
            hi[axis] = torch.maximum(hi[axis], q_hi)
    if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        lo, hi = means.min(dim=0).values, means.max(dim=0).values
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    half_diagonal = float(torch.linalg.vector_norm(half))
    outside = ((means - centre).abs() > BOUNDS_GROWTH * half + 1e-6).any(dim=1)
    huge = scales.max(dim=1).values > HUGE_FRACTION * max(half_diagonal, 1e-9)
    keep = ~(transparent | huge | outside)
    if not bool(keep.any()):
        logger.warning("floater clean-up would drop every gaussian: keeping them all", extra={"gaussians": n})
        keep = torch.ones(n, dtype=torch.bool)
    return Cleanup(keep=keep, transparent=int(transparent.sum()), huge=int((huge & ~transparent).sum()),
                   outside=int((outside & ~transparent & ~huge).sum()))
