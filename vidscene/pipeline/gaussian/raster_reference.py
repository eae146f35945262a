"""Dense pure-PyTorch rasterizer: the executable specification the fast kernels are tested against.

Every pixel composites every visible gaussian overlapping its row band, sorted front to back, with the rules
of ``project.py`` (alpha clamp, 1/255 skip, termination once transmittance would fall below 1e-4). Autograd
provides the gradients, in any floating dtype (float64 makes ``torch.autograd.gradcheck`` possible). It keeps
(pixels x gaussians) intermediates for the backward pass, so it is meant for small scenes only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidscene.pipeline.gaussian.project import ALPHA_MAX, ALPHA_MIN, T_MIN

BAND_ROWS = 16


def rasterize_reference(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor, depths: Tensor,
                        visible: Tensor, extents: Tensor, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Composite gaussians; returns (features (H, W, C) without background, alpha (H, W))."""
    n_channels = colors.shape[1]
    dtype, device = means2d.dtype, means2d.device
    idx = torch.nonzero(visible, as_tuple=False).squeeze(1)
    # Stable sort so equal depths keep index order, the tie-break the tiled kernels use as well.
    idx = idx[torch.sort(depths.detach()[idx], stable=True).indices]
    xs = torch.arange(width, dtype=dtype, device=device) + 0.5
    feature_rows: list[Tensor] = []
    alpha_rows: list[Tensor] = []
    for y0 in range(0, height, BAND_ROWS):
        y1 = min(y0 + BAND_ROWS, height)
        m2 = means2d.detach()[idx]
        ext = extents[idx]
        near = idx[(m2[:, 1] + ext[:, 1] >= y0) & (m2[:, 1] - ext[:, 1] <= y1)]
        rows = y1 - y0
        if near.numel() == 0:
            feature_rows.append(torch.zeros(rows, width, n_channels, dtype=dtype, device=device))
            alpha_rows.append(torch.zeros(rows, width, dtype=dtype, device=device))
            continue
        ys = torch.arange(y0, y1, dtype=dtype, device=device) + 0.5
        px = xs[None, :].expand(rows, width).reshape(-1, 1)
        py = ys[:, None].expand(rows, width).reshape(-1, 1)
        dx = px - means2d[near][None, :, 0]
        dy = py - means2d[near][None, :, 1]
        con = conics[near]
        sigma = 0.5 * (con[None, :, 0] * dx * dx + con[None, :, 2] * dy * dy) + con[None, :, 1] * dx * dy
        alpha = torch.clamp(opacities[near][None, :] * torch.exp(-sigma), max=ALPHA_MAX)
        alpha = torch.where(alpha >= ALPHA_MIN, alpha, torch.zeros_like(alpha))
        with torch.no_grad():
            # Transmittance after each gaussian is non-increasing, so "still above T_MIN" marks exactly the
            # gaussians composited before termination.
            keep = torch.cumprod(1.0 - alpha, dim=1) >= T_MIN
        alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
        one_minus = 1.0 - alpha
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), one_minus[:, :-1]], dim=1), dim=1)
        weights = alpha * trans
        feature_rows.append((weights @ colors[near]).reshape(rows, width, n_channels))
        alpha_rows.append((1.0 - trans[:, -1] * one_minus[:, -1]).reshape(rows, width))
    return torch.cat(feature_rows, dim=0), torch.cat(alpha_rows, dim=0)
