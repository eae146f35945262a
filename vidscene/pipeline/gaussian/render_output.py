"""What ``render`` returns whichever backend drew it (:class:`RenderOutput`).

Both ``render`` and the gsplat adapter ``raster_cuda`` build one, and ``render`` imports the adapter; with the
type here, below both, imports run one way (``render`` -> ``raster_cuda`` -> this module) and the adapter
needs no import of ``render`` at type-checking or call time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class RenderOutput:
    image: Tensor  # (H, W, 3) linear colours composited over the background (not clamped to 1)
    alpha: Tensor  # (H, W) accumulated opacity
    depth: Tensor | None  # (H, W) expected camera-space z (0 where alpha == 0), None unless asked for
    means2d: Tensor  # (N, 2) screen-space means in pixels
    radii: Tensor  # (N,) int32 pixel radius of the footprint, 0 = culled in this view
    width: int = 0
    height: int = 0
    # The tensor whose .grad autograd fills (gsplat's is (1, N, 2)); read through screen_grad_norm().
    _grad_source: Tensor | None = field(default=None, repr=False)

    @property
    def visible(self) -> Tensor:
        """(N,) bool: gaussians that may touch at least one pixel of this view."""
        return self.radii > 0

    def screen_grad_norm(self, *, ndc: bool = False) -> Tensor:
        """(N,) norm of d loss / d means2d, valid after ``loss.backward()`` (zeros before, or if unused).

        In pixels by default. ``ndc=True`` rescales to normalised device coordinates (x by W/2, y by H/2),
        the unit in which the 3DGS densification threshold (2e-4) is defined; use that with paper thresholds.
        """
        source = self._grad_source if self._grad_source is not None else self.means2d
        grad = source.grad
        if grad is None:
            return torch.zeros(self.means2d.shape[0], dtype=self.means2d.dtype, device=self.means2d.device)
        grad = grad.reshape(-1, 2)
        if ndc:
            scale = torch.tensor([self.width / 2.0, self.height / 2.0], dtype=grad.dtype, device=grad.device)
            grad = grad * scale
        norm: Tensor = torch.linalg.vector_norm(grad, dim=-1)
        return norm
