"""Differentiable rendering of 3D gaussians for one camera: the one entry point training and export use.

Backends (all return the same :class:`RenderOutput`, with gradients for every input tensor):

- ``"cuda"``: gsplat's fused CUDA kernels (optional extra ``vidscene[gpu]``), for GPU workers;
- ``"cpu"``: numba kernels with hand-written backward passes (``raster_cpu``): projection, SH colours and a
  16x16 tile rasterizer;
- ``"reference"``: PyTorch projection + dense PyTorch rasterizer; slow, any dtype, the specification the
  other two are tested against;
- ``"auto"``: ``"cuda"`` when CUDA and gsplat are usable and the tensors are on the GPU, else ``"cpu"``.

Running the CPU backend well (see bench/rasterizer.py for figures):

- Threads: ``numba.set_num_threads`` (default: every core). PyTorch and numba load the same libgomp, whose
  threads spin after each parallel region; on a shared machine set ``OMP_WAIT_POLICY=PASSIVE`` in the
  environment of the process *before torch is imported* (2-3x faster under load, no cost when idle).
- The first CPU render in a fresh environment JIT-compiles the kernels (15-40 s; ~1-2 s when numba's
  on-disk cache is warm). Call :func:`precompile_cpu` at worker start or image build time.
- Memory per call is small: per-pixel buffers of the image, a (threads, N, 10) float32 gradient buffer
  and the tile lists (4 bytes per gaussian-tile intersection).
"""

from __future__ import annotations

import dataclasses
import logging
from functools import cache
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.cpu_kernels.tiles import TILE
from vidscene.pipeline.gaussian.project import Projected, project_gaussians
from vidscene.pipeline.gaussian.raster_reference import rasterize_reference
from vidscene.pipeline.gaussian.render_output import RenderOutput
from vidscene.pipeline.gaussian.sh import SHCoefficients, joined_sh, num_sh_bases, sh_to_rgb

logger = logging.getLogger(__name__)

Backend = Literal["auto", "cpu", "cuda", "reference"]


@cache
def cuda_available() -> bool:
    """Whether the gsplat CUDA path can run here (CUDA device present and gsplat importable)."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401  (probing the optional extra)
    except ImportError:
        return False
    return True


def precompile_cpu() -> float:
    """Compile (or load from numba's on-disk cache) every CPU kernel by rendering a tiny scene; returns seconds.

    The first CPU render in a fresh environment otherwise spends ~20-40 s in numba's JIT (2 s with a warm
    cache); call this at worker start-up or image build time so that no training job pays for it.
    """
    import time

    started = time.perf_counter()
    camera = Camera(width=24, height=20, fx=20.0, fy=20.0, cx=12.0, cy=10.0, R=np.eye(3), t=np.zeros(3))
    gen = torch.Generator().manual_seed(0)
    params = [torch.rand(8, 3, generator=gen) + torch.tensor([-0.5, -0.5, 2.0]), torch.randn(8, 4, generator=gen),
              torch.rand(8, 3, generator=gen) * 0.2, torch.rand(8, generator=gen), torch.randn(8, 16, 3, generator=gen)]
    leaves = [p.requires_grad_() for p in params]
    out = render(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], camera, sh_degree=3,
                 background=torch.zeros(3), backend="cpu", with_depth=True)
    assert out.depth is not None
    (out.image.sum() + out.depth.sum()).backward()
    return time.perf_counter() - started


def resolve_backend(backend: Backend, device: torch.device) -> Literal["cpu", "cuda", "reference"]:
    if backend != "auto":
        return backend
    if device.type == "cuda" and cuda_available():
        return "cuda"
    return "cpu"


def render(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: SHCoefficients, camera: Camera, *,
           sh_degree: int, background: Tensor, backend: Backend = "auto",
           with_depth: bool = False, drawn_tiles: Tensor | None = None) -> RenderOutput:
    """Render gaussians seen by ``camera``.

    Args:
        means: (N, 3) world positions.
        quats: (N, 4) rotations as unnormalised quaternions, w first.
        scales: (N, 3) standard deviations along the gaussian's axes (already activated, e.g. ``exp``'d).
        opacities: (N,) in [0, 1] (already activated).
        sh: (N, K, 3) SH coefficients, K = (max degree + 1)², or the (DC, rest) pair ``Gaussians`` stores
            (``sh.SHCoefficients``); only the first (sh_degree + 1)² are used.
        camera: pinhole camera (OpenCV axes, world -> camera ``R, t``); renders ``camera.width x height``.
        sh_degree: SH degree in use (0..3), ramped up during training.
        background: (3,) colour behind the gaussians (gradients flow to it if it requires grad).
        backend: see the module docstring.
        with_depth: also render the expected depth.
        drawn_tiles: ((H + 15) // 16, (W + 15) // 16) bool: draw only these 16x16-pixel tiles (the rest show
            the background and send the gaussians no gradient). The CPU rasterizer skips the others' work,
            which is what a training step's pixel budget (``GaussianConfig.step_pixels``) is for; the other
            backends draw everything and blank the rest.

    The screen-space gradient for densification: call ``out.screen_grad_norm()`` after ``backward()``.
    """
    _check_shapes(means, quats, scales, opacities, sh, sh_degree)
    chosen = resolve_backend(backend, means.device)
    if chosen == "cuda":
        from vidscene.pipeline.gaussian.raster_cuda import render_gsplat

        out = render_gsplat(means, quats, scales, opacities, joined_sh(sh), camera, sh_degree=sh_degree,
                            background=background, with_depth=with_depth)
        return out if drawn_tiles is None else blanked(out, drawn_tiles, background)
    if means.device.type != "cpu":
        raise ValueError(f"backend {chosen!r} needs CPU tensors, got {means.device}")

    if chosen == "cpu":
        proj, image, alpha, depth_sum = _rasterized_cpu(means, quats, scales, opacities, sh, camera, sh_degree,
                                                        background, with_depth, drawn_tiles)
    else:
        proj, image, alpha, depth_sum = _rasterized_reference(means, quats, scales, opacities, sh, camera,
                                                              sh_degree, background, with_depth)
    depth = None
    if with_depth:
        depth = torch.where(alpha > 1e-6, depth_sum / alpha.clamp_min(1e-6), torch.zeros_like(alpha))
    if proj.means2d.requires_grad:
        proj.means2d.retain_grad()
    out = RenderOutput(image=image, alpha=alpha, depth=depth, means2d=proj.means2d, radii=proj.radii,
                       width=camera.width, height=camera.height)
    if drawn_tiles is None:
        return out
    if chosen == "cpu":  # the kernels drew only those tiles: the rest is background already
        return dataclasses.replace(out, radii=drawn_radii(proj.radii, proj.means2d, drawn_tiles))
    return blanked(out, drawn_tiles, background)


def tile_pixels(drawn_tiles: Tensor, width: int, height: int) -> Tensor:
    """(H, W) bool: the pixels of the ``drawn_tiles`` (see ``render``)."""
    full = drawn_tiles.repeat_interleave(TILE, dim=0).repeat_interleave(TILE, dim=1)
    return full[:height, :width]


def blanked(out: RenderOutput, drawn_tiles: Tensor, background: Tensor) -> RenderOutput:
    """``out`` with the pixels outside ``drawn_tiles`` at the background, as if they were never drawn."""
    drawn = tile_pixels(drawn_tiles.to(out.image.device), out.width, out.height)
    image = torch.where(drawn[..., None], out.image, background.to(out.image.dtype))
    depth = None if out.depth is None else out.depth * drawn
    radii = drawn_radii(out.radii, out.means2d.reshape(-1, 2), drawn_tiles.to(out.radii.device))
    return dataclasses.replace(out, image=image, alpha=out.alpha * drawn, depth=depth, radii=radii)


def drawn_radii(radii: Tensor, means2d: Tensor, drawn_tiles: Tensor) -> Tensor:
    """``radii`` with 0 for the gaussians whose footprint (a square of side twice the radius) covers no drawn
    tile: they were not drawn, and densification must not count a view with no gradient as one that saw
    them (it averages the screen-space gradient over the views a gaussian was visible in)."""
    tiles_y, tiles_x = drawn_tiles.shape
    table = torch.zeros((tiles_y + 1, tiles_x + 1), dtype=torch.int32, device=radii.device)
    table[1:, 1:] = drawn_tiles.to(torch.int32).cumsum(0).cumsum(1)  # drawn tiles above and left of each corner
    centre, r = means2d.detach().to(torch.float32), radii.to(torch.float32)
    x0, x1 = ((centre[:, 0] - r) / TILE).floor(), ((centre[:, 0] + r) / TILE).floor()
    y0, y1 = ((centre[:, 1] - r) / TILE).floor(), ((centre[:, 1] + r) / TILE).floor()
    x0, x1 = x0.clamp(0, tiles_x - 1).long(), x1.clamp(0, tiles_x - 1).long()
    y0, y1 = y0.clamp(0, tiles_y - 1).long(), y1.clamp(0, tiles_y - 1).long()
    covered = table[y1 + 1, x1 + 1] - table[y0, x1 + 1] - table[y1 + 1, x0] + table[y0, x0]
    return torch.where(covered > 0, radii, torch.zeros_like(radii))


def _check_shapes(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: SHCoefficients,
                  sh_degree: int) -> None:
    """Raise ``ValueError`` naming the first input whose shape ``render`` cannot take (kernels would not)."""
    n = means.shape[0]
    expected = (("quats", quats, (n, 4)), ("scales", scales, (n, 3)), ("opacities", opacities, (n,)))
    for name, tensor, shape in expected:
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")
    if means.ndim != 2 or means.shape[1] != 3:
        raise ValueError(f"means must have shape (N, 3), got {tuple(means.shape)}")
    parts = sh if isinstance(sh, tuple) else (sh,)
    bases = sum(p.shape[1] for p in parts) if all(p.ndim == 3 for p in parts) else 0  # checked before indexing
    if (bases < num_sh_bases(sh_degree) or any(p.shape[0] != n or p.shape[2] != 3 for p in parts)
            or (isinstance(sh, tuple) and sh[0].shape[1] != 1)):
        shapes = " + ".join(str(tuple(p.shape)) for p in parts)
        raise ValueError(f"sh must have shape (N, >= {num_sh_bases(sh_degree)}, 3), got {shapes}")


def _rasterized_cpu(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: SHCoefficients,
                    camera: Camera, sh_degree: int, background: Tensor, with_depth: bool,
                    drawn_tiles: Tensor | None = None) -> tuple[Projected, Tensor, Tensor, Tensor]:
    """Projection, image, alpha and alpha-weighted depth sum from the numba kernels (``raster_cpu``)."""
    from vidscene.pipeline.gaussian.raster_cpu import project_cpu, rasterize_cpu, sh_colors_cpu

    proj = project_cpu(means, quats, scales, opacities, camera)
    colors = sh_colors_cpu(sh, means, camera.center, sh_degree, proj.visible)
    image, alpha, depth_sum = rasterize_cpu(proj.means2d, proj.conics, colors, opacities, proj.depths,
                                            background.to(means.dtype), proj.visible, proj.extents,
                                            camera.width, camera.height, with_depth, drawn_tiles)
    return proj, image, alpha, depth_sum


def _rasterized_reference(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: SHCoefficients,
                          camera: Camera, sh_degree: int, background: Tensor,
                          with_depth: bool) -> tuple[Projected, Tensor, Tensor, Tensor]:
    """The same from the PyTorch reference: depth rides along as a fourth colour channel when asked for."""
    proj = project_gaussians(means, quats, scales, opacities, camera)
    center = torch.as_tensor(camera.center, dtype=means.dtype, device=means.device)
    colors = sh_to_rgb(joined_sh(sh), means, center, sh_degree)
    features = torch.cat([colors, proj.depths[:, None]], dim=1) if with_depth else colors
    feat, alpha = rasterize_reference(proj.means2d, proj.conics, features, opacities, proj.depths,
                                      proj.visible, proj.extents, camera.width, camera.height)
    image = feat[..., :3] + (1.0 - alpha)[..., None] * background.to(feat.dtype)
    depth_sum = feat[..., 3] if with_depth else feat.new_zeros(0)
    return proj, image, alpha, depth_sum
