"""Adapter from :func:`vidscene.pipeline.gaussian.render.render` to gsplat's CUDA rasterizer (gsplat 1.5.x).

gsplat is the optional extra ``vidscene[gpu]``; it is imported here, lazily, so CPU installs never need it.
Differences from the CPU path that callers may notice: gsplat clamps alpha at 0.999 instead of 0.99 and its
footprint bound may be 3 sigma instead of the opacity-aware ellipse (depending on the version), so images
agree to a few 1e-3, not bit for bit. The background is composited here in PyTorch so that its gradient and
the depth normalisation behave exactly as on the CPU path.

Anti-aliasing is the 3D smoothing filter (``antialias.py``), applied to scales and opacities before either
backend is called, so gsplat needs no option for it; ``rasterize_mode`` stays "classic" (the 0.3 px² dilation
without opacity compensation) because that is what the CPU kernels compute and what viewers such as Spark do.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.project import EPS2D, FAR_PLANE, NEAR_PLANE
from vidscene.pipeline.gaussian.render_output import RenderOutput


def render_gsplat(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: Tensor,
                  camera: Camera, *, sh_degree: int, background: Tensor, with_depth: bool) -> RenderOutput:
    """Render with ``gsplat.rasterization``; same contract as ``render(..., backend="cuda")``."""
    import gsplat  # optional extra, imported only on GPU workers

    if means.device.type != "cuda":
        raise ValueError(f"the cuda backend needs CUDA tensors, got {means.device}")
    device = means.device
    viewmats = torch.as_tensor(camera.viewmat, dtype=torch.float32, device=device)[None]
    Ks = torch.as_tensor(camera.K, dtype=torch.float32, device=device)[None]
    colors, alphas, meta = gsplat.rasterization(
        means, quats, scales, opacities, sh, viewmats, Ks, camera.width, camera.height,
        near_plane=NEAR_PLANE, far_plane=FAR_PLANE, eps2d=EPS2D, sh_degree=sh_degree, packed=False,
        render_mode="RGB+ED" if with_depth else "RGB", rasterize_mode="classic",
    )
    feat = colors[0]
    alpha = alphas[0, ..., 0]
    image = feat[..., :3] + (1.0 - alpha)[..., None] * background.to(device=device, dtype=feat.dtype)
    depth = None
    if with_depth:
        # gsplat already divided by alpha ("ED"); zero the empty pixels like the CPU path does.
        depth = torch.where(alpha > 1e-6, feat[..., 3], torch.zeros_like(alpha))
    grad_source: Tensor = meta["means2d"]
    if grad_source.requires_grad:
        grad_source.retain_grad()
    radii: Tensor = meta["radii"][0]
    if radii.ndim == 2:  # gsplat >= 1.5 reports (x, y) radii; older versions one radius
        radii = radii.max(dim=-1).values
    return RenderOutput(image=image, alpha=alpha, depth=depth, means2d=grad_source[0].detach(),
                        radii=radii.to(torch.int32), width=camera.width, height=camera.height,
                        _grad_source=grad_source)
