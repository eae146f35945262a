"""Real spherical harmonics up to degree 3, in the convention of the original 3D Gaussian Splatting code.

Trained models are exported to the standard 3DGS ``.ply`` layout and read by third-party viewers, so the basis
order, signs and the ``+ 0.5`` offset must match that code exactly, not merely be *a* valid SH basis.
"""

from __future__ import annotations

import torch
from torch import Tensor

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
      1.445305721320277, -0.5900435899266435)


# A model's SH coefficients: one (N, K, 3) tensor, or the (DC (N, 1, 3), rest (N, K-1, 3)) pair the trainer and
# the .ply store. The CPU kernels read the pair in place; the other backends join it (``joined_sh``).
SHCoefficients = Tensor | tuple[Tensor, Tensor]


def split_sh(sh: SHCoefficients) -> tuple[Tensor, Tensor]:
    """``(dc, rest)`` views of either form."""
    if isinstance(sh, tuple):
        return sh
    return sh[:, :1], sh[:, 1:]


def joined_sh(sh: SHCoefficients) -> Tensor:
    """One (N, K, 3) tensor of either form (a copy for the pair)."""
    return torch.cat(sh, dim=1) if isinstance(sh, tuple) else sh


def num_sh_bases(degree: int) -> int:
    """Coefficients per colour channel for an SH degree (1, 4, 9, 16)."""
    return (degree + 1) ** 2


def rgb_to_sh0(rgb: Tensor) -> Tensor:
    """The DC coefficient that makes a gaussian show ``rgb`` from every direction (initialisation, export)."""
    return (rgb - 0.5) / C0


def eval_sh(degree: int, sh: Tensor, dirs: Tensor) -> Tensor:
    """Evaluate SH at unit directions.

    ``sh`` is (N, K, 3) with K >= (degree+1)**2 (higher bands are ignored, which is how training ramps the
    degree up); ``dirs`` is (N, 3) and must already be normalised. Returns (N, 3) *without* the 0.5 offset.
    """
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    if sh.shape[1] < num_sh_bases(degree):
        raise ValueError(f"sh has {sh.shape[1]} bases per channel; degree {degree} needs "
                         f"{num_sh_bases(degree)}")
    result = C0 * sh[:, 0]
    if degree == 0:
        return result
    x, y, z = dirs[:, 0:1], dirs[:, 1:2], dirs[:, 2:3]
    result = result - C1 * y * sh[:, 1] + C1 * z * sh[:, 2] - C1 * x * sh[:, 3]
    if degree == 1:
        return result
    xx, yy, zz = x * x, y * y, z * z
    xy, yz, xz = x * y, y * z, x * z
    result = (result
              + C2[0] * xy * sh[:, 4]
              + C2[1] * yz * sh[:, 5]
              + C2[2] * (2.0 * zz - xx - yy) * sh[:, 6]
              + C2[3] * xz * sh[:, 7]
              + C2[4] * (xx - yy) * sh[:, 8])
    if degree == 2:
        return result
    return (result
            + C3[0] * y * (3.0 * xx - yy) * sh[:, 9]
            + C3[1] * xy * z * sh[:, 10]
            + C3[2] * y * (4.0 * zz - xx - yy) * sh[:, 11]
            + C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * sh[:, 12]
            + C3[4] * x * (4.0 * zz - xx - yy) * sh[:, 13]
            + C3[5] * z * (xx - yy) * sh[:, 14]
            + C3[6] * x * (xx - 3.0 * yy) * sh[:, 15])


def sh_to_rgb(sh: Tensor, means: Tensor, camera_center: Tensor, degree: int) -> Tensor:
    """View-dependent colour of each gaussian seen from ``camera_center`` (world coordinates), (N, 3), >= 0.

    The direction runs from the camera centre to the gaussian, as in 3DGS; colours are not clamped above 1
    (the renderer composites unclamped values and the loss sees them), only below 0.
    """
    if degree == 0:
        # No direction needed; skipping the normalisation keeps degree-0 training cheaper.
        return torch.clamp_min(eval_sh(0, sh, means) + 0.5, 0.0)
    dirs = means - camera_center
    dirs = dirs / torch.linalg.vector_norm(dirs, dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.clamp_min(eval_sh(degree, sh, dirs) + 0.5, 0.0)
