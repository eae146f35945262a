"""EWA projection of 3D gaussians to screen-space ellipses (PyTorch autograd; O(N) and cheap next to raster).

Conventions shared by every rasterizer backend in this package:

- pixel ``(x, y)`` has its centre at ``(x + 0.5, y + 0.5)`` in the intrinsics' coordinates (COLMAP/gsplat);
- the conic ``(A, B, C)`` is the inverse 2D covariance; a pixel at offset ``d`` from the mean gets
  ``alpha = min(0.99, opacity * exp(-sigma))`` with ``sigma = 0.5 * (A dx² + C dy²) + B dx dy``;
- a gaussian only counts where ``alpha >= 1/255``. Its footprint is therefore exactly the ellipse
  ``2 sigma <= extent²`` with ``extent² = 2 ln(255 * opacity)`` (about 3.33 sigma at full opacity, smaller for
  faint gaussians). Bounding boxes and tile lists are derived from that ellipse, which makes tiling a pure
  optimisation: the dense reference and the tiled kernels compute the same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vidscene.pipeline.cameras import Camera

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4
EPS2D = 0.3  # pixels² added to the 2D covariance so every gaussian covers about a pixel (anti-aliasing floor)
NEAR_PLANE = 0.01
FAR_PLANE = 1e10
FOV_MARGIN = 0.3  # Jacobian clamping beyond the image, as a fraction of the half field of view (3DGS/gsplat)


@dataclass
class Projected:
    """Screen-space gaussians for one camera. Rows of culled gaussians are finite but meaningless."""

    means2d: Tensor  # (N, 2) pixels, differentiable
    conics: Tensor  # (N, 3) inverse 2D covariance (A, B, C), differentiable
    depths: Tensor  # (N,) camera-space z, differentiable
    extents: Tensor  # (N, 2) half-size of the footprint's bounding box in pixels (x, y), no grad
    radii: Tensor  # (N,) int32, ceil(max(extents)), 0 where culled
    visible: Tensor  # (N,) bool


def quats_to_rotmats(quats: Tensor) -> Tensor:
    """(N, 4) unnormalised wxyz -> (N, 3, 3) rotation matrices."""
    q = quats / torch.linalg.vector_norm(quats, dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(-1, 3, 3)


def covariances3d(quats: Tensor, scales: Tensor) -> Tensor:
    """World-space covariance R S Sᵀ Rᵀ, (N, 3, 3)."""
    m = quats_to_rotmats(quats) * scales[:, None, :]
    return m @ m.transpose(1, 2)


def project_gaussians(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                      camera: Camera) -> Projected:
    """Project gaussians into ``camera`` (perspective EWA splatting with the 3DGS Jacobian clamp).

    Culled (``radii == 0``): behind the near plane or past the far plane, degenerate 2D covariance, opacity
    below 1/255 (never visible), or a footprint entirely outside the image.
    """
    dtype, device = means.dtype, means.device
    R = torch.as_tensor(camera.R, dtype=dtype, device=device)
    t = torch.as_tensor(camera.t, dtype=dtype, device=device)
    p_cam = means @ R.T + t
    z = p_cam[:, 2]
    in_depth = (z > NEAR_PLANE) & (z < FAR_PLANE)
    # Divisions by z of culled gaussians must stay finite: a NaN there would poison the gradients of every
    # gaussian through the masked-out branches of torch.where.
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    x_over_z = p_cam[:, 0] / z_safe
    y_over_z = p_cam[:, 1] / z_safe
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    means2d = torch.stack([fx * x_over_z + cx, fy * y_over_z + cy], dim=-1)

    # The Jacobian is evaluated at the mean clamped to a margin around the image, so that gaussians far off to
    # the side do not get absurdly stretched footprints that leak into the image.
    tan_x, tan_y = 0.5 * camera.width / fx, 0.5 * camera.height / fy
    lim_x_pos = (camera.width - cx) / fx + FOV_MARGIN * tan_x
    lim_x_neg = cx / fx + FOV_MARGIN * tan_x
    lim_y_pos = (camera.height - cy) / fy + FOV_MARGIN * tan_y
    lim_y_neg = cy / fy + FOV_MARGIN * tan_y
    tx = x_over_z.clamp(-lim_x_neg, lim_x_pos)
    ty = y_over_z.clamp(-lim_y_neg, lim_y_pos)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z_safe, zero, -fx * tx / z_safe,
                     zero, fy / z_safe, -fy * ty / z_safe], dim=-1).reshape(-1, 2, 3)
    cov_cam = R @ covariances3d(quats, scales) @ R.T
    cov2d = J @ cov_cam @ J.transpose(1, 2)
    a = cov2d[:, 0, 0] + EPS2D
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + EPS2D
    det = a * c - b * b
    ok_det = det > 1e-12
    det_safe = torch.where(ok_det, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)

    with torch.no_grad():
        opac = opacities.detach()
        ext2 = 2.0 * torch.log((opac * 255.0).clamp_min(1.0))
        ext = torch.sqrt(ext2)
        extents = torch.stack([ext * torch.sqrt(a.clamp_min(0.0)), ext * torch.sqrt(c.clamp_min(0.0))],
                              dim=-1)
        m2 = means2d.detach()
        on_screen = ((m2[:, 0] + extents[:, 0] > 0) & (m2[:, 0] - extents[:, 0] < camera.width)
                     & (m2[:, 1] + extents[:, 1] > 0) & (m2[:, 1] - extents[:, 1] < camera.height))
        visible = in_depth & ok_det & (opac >= ALPHA_MIN) & on_screen & torch.isfinite(m2).all(dim=-1)
        radii = torch.where(visible, torch.ceil(extents.max(dim=-1).values), torch.zeros_like(ext))
        radii = radii.to(torch.int32)
    return Projected(means2d=means2d, conics=conics, depths=z, extents=extents, radii=radii, visible=visible)


def footprint_extent(opacity: float) -> float:
    """Mahalanobis radius of the alpha >= 1/255 footprint for one opacity (documentation and tests)."""
    return math.sqrt(2.0 * math.log(max(opacity * 255.0, 1.0)))
