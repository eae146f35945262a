"""Rays from posed cameras, ray marching through the model's box, and alpha compositing.

Rays start at the camera centre and pass through pixel centres ((u + 0.5, v + 0.5) in the pinhole model,
COLMAP's convention), with unit directions in world units. The renderer maps them into the model's space
(``model.space.model_rays``: unchanged in world space, onto the near plane in NDC) and marches there, with
unit directions in model units, so marching distances are model distances; the appearance decoder sees the
world view direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.tensorf.model import AlphaMask, TensorVM


@dataclass
class CameraTensors:
    """A batch of cameras as tensors, so rays for random (camera, pixel) pairs come out in one shot."""

    cam_to_world: Tensor  # (M, 3, 3) = R^T
    centers: Tensor  # (M, 3)
    intrinsics: Tensor  # (M, 4): fx, fy, cx, cy

    @classmethod
    def from_cameras(cls, cameras: list[Camera], device: torch.device) -> CameraTensors:
        rot = np.stack([c.R.T for c in cameras]).astype(np.float32)
        centers = np.stack([c.center for c in cameras]).astype(np.float32)
        intr = np.array([[c.fx, c.fy, c.cx, c.cy] for c in cameras], dtype=np.float32)
        return cls(torch.from_numpy(rot).to(device), torch.from_numpy(centers).to(device),
                   torch.from_numpy(intr).to(device))

    def rays(self, index: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """World origins and unit directions through pixel centres (u, v integer columns/rows) of cameras
        ``index``: each (N, 3)."""
        k = self.intrinsics[index]
        x = (u.float() + 0.5 - k[:, 2]) / k[:, 0]
        y = (v.float() + 0.5 - k[:, 3]) / k[:, 1]
        d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
        d = torch.einsum("nij,nj->ni", self.cam_to_world[index], d_cam)
        return self.centers[index], d / d.norm(dim=-1, keepdim=True)


def camera_rays(camera: Camera, device: torch.device) -> tuple[Tensor, Tensor]:
    """Every pixel's ray of one camera, row-major: origins and unit directions, each (H * W, 3)."""
    cams = CameraTensors.from_cameras([camera], device)
    v, u = torch.meshgrid(torch.arange(camera.height, device=device), torch.arange(camera.width, device=device),
                          indexing="ij")
    index = torch.zeros(camera.height * camera.width, dtype=torch.long, device=device)
    return cams.rays(index, u.reshape(-1), v.reshape(-1))


def ray_box_interval(origins: Tensor, dirs: Tensor, aabb: Tensor) -> tuple[Tensor, Tensor]:
    """Entry and exit distances of each ray with the box (slab method); entry > exit means a miss."""
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    a = (aabb[1] - origins) / safe
    b = (aabb[0] - origins) / safe
    return torch.minimum(a, b).amax(dim=-1), torch.maximum(a, b).amin(dim=-1)


def composite(sigma: Tensor, rgb: Tensor, deltas: Tensor, background: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Emission-absorption compositing along each ray.

    ``sigma`` (B, S) densities already in "per unit of ``deltas``" (i.e. multiplied by the distance scale),
    ``rgb`` (B, S, 3) sample colours, ``deltas`` (B, S) segment lengths, ``background`` (3,) or (B, 3).
    Sample i has opacity ``a_i = 1 - exp(-sigma_i * delta_i)`` and weight ``a_i * prod_{j<i} (1 - a_j)``; the
    background gets what is left. Returns colour (B, 3), accumulated opacity (B,) and weights (B, S).
    """
    tau = sigma * deltas
    alpha = 1.0 - torch.exp(-tau)
    # Transmittance before each sample, as exp of an exclusive cumulative sum: stable and cheap to backprop.
    transmittance = torch.exp(-torch.cumsum(torch.cat([torch.zeros_like(tau[:, :1]), tau[:, :-1]], dim=1), dim=1))
    weights = alpha * transmittance
    acc = weights.sum(dim=1)
    color = (weights[..., None] * rgb).sum(dim=1) + (1.0 - acc)[..., None] * background
    return color, acc, weights


@dataclass
class RenderSettings:
    step: float  # world distance between samples
    n_samples: int
    weight_threshold: float = 1e-4  # samples contributing less than this skip the appearance network


def render_settings(model: TensorVM, step_ratio: float, max_samples: int) -> RenderSettings:
    """Marching step = ``step_ratio`` voxels; enough samples to cross the box's diagonal (capped)."""
    step = float(model.voxel_size.mean()) * step_ratio
    diagonal = float((model.aabb[1] - model.aabb[0]).norm())
    return RenderSettings(step=step, n_samples=max(2, min(max_samples, int(diagonal / step) + 1)))


def render_rays(model: TensorVM, origins: Tensor, dirs: Tensor, settings: RenderSettings, *,
                alpha_mask: AlphaMask | None = None, jitter: bool = False,
                density_volume: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Colour (B, 3), opacity (B,) and expected depth (B,) along world rays (unit ``dirs``); depth is the
    marching distance in the model's space (world units in world space).

    Samples are evenly spaced from where each ray enters the box; only samples inside the box (and inside
    the alpha mask, when given) evaluate density, and only those with a visible weight evaluate colour, which
    is where the time goes. ``jitter`` shifts each ray's samples by a random fraction of a step (training).
    Without autograd (rendering) rays are marched in segments and dropped once nearly opaque, and density
    comes from ``density_volume`` (``model.density_volume()``) when one is given.
    """
    origins, dirs, viewdirs = model.space.model_rays(origins, dirs)
    if not torch.is_grad_enabled() and not jitter:
        return _render_rays_terminating(model, origins, dirs, viewdirs, settings, alpha_mask, density_volume)
    near, far = ray_box_interval(origins, dirs, model.aabb)
    near = near.clamp(min=0.0)
    offsets = torch.arange(settings.n_samples, device=origins.device, dtype=origins.dtype)[None, :]
    if jitter:
        offsets = offsets + torch.rand(origins.shape[0], 1, device=origins.device)
    t = near[:, None] + settings.step * offsets  # (B, S)
    valid = t < far[:, None]
    points = origins[:, None, :] + dirs[:, None, :] * t[..., None]
    if alpha_mask is not None and bool(valid.any()):
        valid = valid.masked_scatter(valid, alpha_mask.contains(points[valid]))

    sigma = torch.zeros_like(t)
    if bool(valid.any()):
        sigma = sigma.masked_scatter(valid, model.density(model.normalize(points[valid])))
    deltas = torch.full_like(t, settings.step)
    tau = sigma * model.distance_scale
    # Weights first (cheap), so the colour network only runs where a sample is visible.
    with torch.no_grad():
        _, _, w = composite(tau, torch.zeros(*t.shape, 3, device=t.device), deltas,
                            torch.zeros(3, device=t.device))
    visible = w > settings.weight_threshold
    rgb = torch.zeros(*t.shape, 3, device=t.device)
    if bool(visible.any()):
        view = viewdirs[:, None, :].expand(-1, t.shape[1], -1)[visible]
        rgb = rgb.masked_scatter(visible[..., None], model.color(model.normalize(points[visible]), view))
    color, acc, weights = composite(tau, rgb, deltas, model.background())
    depth = (weights * t).sum(dim=1)
    return color, acc, depth


TERMINATE_TRANSMITTANCE = 1e-3  # rendering stops a ray once less than this much light can still get through
SEGMENT = 32  # samples marched per step of the early-terminating renderer


def _render_rays_terminating(model: TensorVM, origins: Tensor, dirs: Tensor, viewdirs: Tensor,
                             settings: RenderSettings,
                             alpha_mask: AlphaMask | None,
                             density_volume: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """``render_rays`` for inference: the same samples and weights, marched ``SEGMENT`` samples at a time, with
    each ray dropped once its transmittance falls below ``TERMINATE_TRANSMITTANCE`` or it leaves the box (the
    dropped remainder goes to the background, an error below 1e-3). Rays are in model space already."""
    device = origins.device
    near, far = ray_box_interval(origins, dirs, model.aabb)
    near = near.clamp(min=0.0)
    n = origins.shape[0]
    color = torch.zeros(n, 3, device=device)
    acc = torch.zeros(n, device=device)
    depth = torch.zeros(n, device=device)
    optical_depth = torch.zeros(n, device=device)
    active = torch.nonzero(near < far).view(-1)
    for start in range(0, settings.n_samples, SEGMENT):
        if active.numel() == 0:
            break
        offsets = torch.arange(start, min(start + SEGMENT, settings.n_samples), device=device, dtype=origins.dtype)
        t = near[active, None] + settings.step * offsets[None, :]
        valid = t < far[active, None]
        points = origins[active, None, :] + dirs[active, None, :] * t[..., None]
        if alpha_mask is not None and bool(valid.any()):
            valid = valid.masked_scatter(valid, alpha_mask.contains(points[valid]))
        tau = torch.zeros_like(t)
        if bool(valid.any()):
            normed = model.normalize(points[valid])
            sigma = (model.density(normed) if density_volume is None
                     else model.density_from_volume(density_volume, normed))
            tau = tau.masked_scatter(valid, sigma * model.distance_scale * settings.step)
        before = optical_depth[active, None] + torch.cumsum(tau, dim=1) - tau
        weights = torch.exp(-before) * (1.0 - torch.exp(-tau))
        visible = weights > settings.weight_threshold
        if bool(visible.any()):
            view = viewdirs[active, None, :].expand(-1, t.shape[1], -1)[visible]
            rgb = torch.zeros(*t.shape, 3, device=device)
            rgb = rgb.masked_scatter(visible[..., None], model.color(model.normalize(points[visible]), view))
            color[active] += (weights[..., None] * rgb).sum(dim=1)
        acc[active] += weights.sum(dim=1)
        depth[active] += (weights * t).sum(dim=1)
        optical_depth[active] += tau.sum(dim=1)
        keep = (torch.exp(-optical_depth[active]) > TERMINATE_TRANSMITTANCE) & (t[:, -1] < far[active])
        active = active[keep]
    color = color + (1.0 - acc)[:, None] * model.background()
    return color, acc, depth


@torch.no_grad()
def render_image(model: TensorVM, camera: Camera, settings: RenderSettings, *,
                 alpha_mask: AlphaMask | None = None, chunk: int = 2048,
                 density_volume: Tensor | None = None) -> Tensor:
    """A full frame (H, W, 3) in [0, 1] on the model's device (pass ``model.density_volume()`` when rendering
    many frames: it is exact and several times faster)."""
    device = model.aabb.device
    origins, dirs = camera_rays(camera, device)
    out = torch.empty(origins.shape[0], 3, device=device)
    for s in range(0, origins.shape[0], chunk):
        out[s : s + chunk] = render_rays(model, origins[s : s + chunk], dirs[s : s + chunk], settings,
                                         alpha_mask=alpha_mask, density_volume=density_volume)[0]
    return out.clamp(0.0, 1.0).view(camera.height, camera.width, 3)
