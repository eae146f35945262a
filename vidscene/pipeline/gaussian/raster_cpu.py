"""CPU renderer: the numba kernels of ``cpu_kernels`` as torch.autograd.Functions with hand-written backwards.

Projection (``project_cpu``), SH colours (``sh_colors_cpu``) and the 16x16 tile rasterizer (``rasterize_cpu``)
are each one fused kernel pair: as PyTorch graphs they cost more than the rasterizer itself on two busy cores.
This module converts tensors to the float32 arrays the kernels take, keeps what each backward needs, and owns
the reusable buffers and the tile schedule; the kernels and the reasons for their shape live in
``cpu_kernels``.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.autograd.function import FunctionCtx

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.cpu_kernels.projection import project_backward, project_forward
from vidscene.pipeline.gaussian.cpu_kernels.sh_colors import sh_backward, sh_forward
from vidscene.pipeline.gaussian.cpu_kernels.tiles import (
    N_CHANNELS,
    N_GRADS,
    TILE,
    backward_tiles,
    bin_tiles,
    forward_tiles,
)
from vidscene.pipeline.gaussian.project import FOV_MARGIN, Projected
from vidscene.pipeline.gaussian.sh import SHCoefficients, split_sh

# numba's stubs do not list this setting (it exists in numba >= 0.57).
_POOL_THREADS: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # missing from numba's stubs


def _f32(t: Tensor) -> NDArray[np.float32]:
    return np.ascontiguousarray(t.detach().to(torch.float32).numpy())


class _RasterizeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor,
                depths: Tensor, background: Tensor, visible: Tensor, extents: Tensor, width: int, height: int,
                with_depth: bool, drawn_tiles: NDArray[np.bool_] | None) -> tuple[Tensor, Tensor, Tensor]:
        n = colors.shape[0]
        m2 = _f32(means2d)
        con = _f32(conics)
        dep = _f32(depths)
        cols = np.empty((n, N_CHANNELS), dtype=np.float32)
        cols[:, :3] = _f32(colors)
        cols[:, 3] = dep if with_depth else 0.0
        opac = _f32(opacities)
        bg = tuple(float(v) for v in background.detach().to(torch.float32).cpu())
        vis = np.flatnonzero(visible.detach().numpy())
        order = vis[np.argsort(dep[vis], kind="stable")].astype(np.int32)
        ext2 = (2.0 * np.log(np.maximum(opac * 255.0, 1.0))).astype(np.float32)
        tiles_x = (width + TILE - 1) // TILE
        tiles_y = (height + TILE - 1) // TILE
        ext = _f32(extents)
        offsets, ids = bin_tiles(order, m2, con, ext2, ext, tiles_x, tiles_y)
        tile_order = _balanced_tile_order(offsets, drawn_tiles)
        image = np.empty((height, width, 3), dtype=np.float32)
        if drawn_tiles is None:  # the kernel writes every pixel
            alpha = np.empty((height, width), dtype=np.float32)
            depth = np.empty((height, width), dtype=np.float32)
            trans = np.empty((height, width), dtype=np.float32)
        else:  # tiles left out show the background: nothing in front of it, nothing to walk back through
            image[:] = bg
            alpha = np.zeros((height, width), dtype=np.float32)
            depth = np.zeros((height, width), dtype=np.float32)
            trans = np.ones((height, width), dtype=np.float32)
        last = np.empty((height, width), dtype=np.int32)
        forward_tiles(offsets, ids, tile_order, m2, con, cols, opac, ext, width, height, tiles_x, bg, image, alpha,
                       depth, trans, last)
        state = (offsets, ids, tile_order, m2, con, cols, opac, ext, width, height, tiles_x, bg, trans, last,
                 with_depth, means2d.dtype, conics.dtype, colors.dtype, opacities.dtype, depths.dtype,
                 background.dtype)
        # FunctionCtx is untyped attribute storage; numpy state cannot go through save_for_backward.
        ctx.kernel_state = state  # type: ignore[attr-defined]  # autograd ctx: state for backward
        out_dtype = colors.dtype
        depth_out = torch.from_numpy(depth).to(out_dtype) if with_depth else torch.zeros(0, dtype=out_dtype)
        if not with_depth:
            ctx.mark_non_differentiable(depth_out)
        return torch.from_numpy(image).to(out_dtype), torch.from_numpy(alpha).to(out_dtype), depth_out

    @staticmethod
    def backward(ctx: FunctionCtx, grad_image: Tensor, grad_alpha: Tensor,
                 grad_depth: Tensor) -> tuple[Tensor | None, ...]:
        (offsets, ids, tile_order, m2, con, cols, opac, ext, width, height, tiles_x, bg, trans, last, with_depth,
         dt_means, dt_conics, dt_colors, dt_opac, dt_depths, dt_bg) = ctx.kernel_state  # type: ignore[attr-defined]  # autograd ctx: state kept for backward
        n = m2.shape[0]
        g_image = _f32(grad_image)
        g_alpha = _f32(grad_alpha)
        has_grad_depth = bool(with_depth and grad_depth.numel() > 0)
        g_depth = _f32(grad_depth) if has_grad_depth else np.zeros((1, 1), dtype=np.float32)
        thread_grads = _thread_grad_buffer(n)
        backward_tiles(offsets, ids, tile_order, m2, con, cols, opac, ext, width, height, tiles_x, bg, trans, last,
                        g_image, g_alpha, g_depth, has_grad_depth, thread_grads)
        grads = torch.from_numpy(thread_grads.sum(axis=0))
        g_bg = torch.from_numpy(np.einsum("hw,hwc->c", trans, g_image)).to(dt_bg)
        g_depths = grads[:, 9].to(dt_depths) if with_depth else None
        return (grads[:, 0:2].to(dt_means), grads[:, 2:5].to(dt_conics), grads[:, 6:9].to(dt_colors),
                grads[:, 5].to(dt_opac), g_depths, g_bg, None, None, None, None, None, None)


def _balanced_tile_order(offsets: NDArray[np.int32], drawn: NDArray[np.bool_] | None = None) -> NDArray[np.int32]:
    """The tiles to draw (all, or the ``drawn`` ones), dealt round-robin by decreasing cost into one
    contiguous run per thread.

    numba splits a prange into equal contiguous chunks, one per thread, and tile costs (list lengths) vary
    by orders of magnitude across an image; dealing the sorted tiles keeps every thread's share near equal.
    """
    by_cost = np.argsort(-np.diff(offsets), kind="stable").astype(np.int32)
    if drawn is not None:
        by_cost = by_cost[drawn.reshape(-1)[by_cost]]
    threads = max(1, numba.get_num_threads())
    return np.concatenate([by_cost[i::threads] for i in range(threads)])


_scratch = threading.local()


def _thread_grad_buffer(n: int) -> NDArray[np.float32]:
    """Zeroed (pool threads, n, N_GRADS) buffer, reused between calls of the same Python thread.

    Allocating it afresh every iteration costs page faults on every call (it is megabytes at 100k
    gaussians); reusing it is safe because each Python thread has its own and backward passes of one thread
    never overlap.
    """
    # get_thread_id() is bounded by the pool size, not by the current set_num_threads() value.
    buf: NDArray[np.float32] | None = getattr(_scratch, "thread_grads", None)
    if buf is None or buf.shape[1] < n:
        buf = np.zeros((_POOL_THREADS, max(n, 1024), N_GRADS), dtype=np.float32)
        _scratch.thread_grads = buf
    view = buf[:, :n]
    view.fill(0.0)
    return view


def _drawn(drawn_tiles: Tensor | None, width: int, height: int) -> NDArray[np.bool_] | None:
    if drawn_tiles is None:
        return None
    shape = ((height + TILE - 1) // TILE, (width + TILE - 1) // TILE)
    if tuple(drawn_tiles.shape) != shape:
        raise ValueError(f"drawn_tiles must have shape {shape} for {width}x{height}, got {tuple(drawn_tiles.shape)}")
    return np.ascontiguousarray(drawn_tiles.detach().cpu().numpy().astype(np.bool_))


def rasterize_cpu(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor, depths: Tensor,
                  background: Tensor, visible: Tensor, extents: Tensor, width: int, height: int,
                  with_depth: bool, drawn_tiles: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Composite gaussians with the numba kernels.

    Returns ``(image (H, W, 3) over background, alpha (H, W), depth)`` where depth is the alpha-weighted sum
    of ``depths`` (H, W) when ``with_depth`` (divide by alpha for the expected depth), else an empty tensor.
    Gradients flow to means2d, conics, colors, opacities, depths (with_depth) and background.
    ``drawn_tiles`` ((tiles down, tiles across) bool, 16x16-pixel tiles): only those tiles are composited,
    forward and backward; the others show the background and send the gaussians no gradient.
    Threads: ``numba.set_num_threads`` (default: all cores).
    """
    if colors.ndim != 2 or colors.shape[1] != 3:
        raise ValueError(f"colors must have shape (N, 3), got {tuple(colors.shape)}")
    out: tuple[Tensor, Tensor, Tensor] = _RasterizeCPU.apply(means2d, conics, colors, opacities, depths,
                                                             background, visible, extents, width, height,
                                                             with_depth, _drawn(drawn_tiles, width, height))
    return out


class _SHColorsCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, sh0: Tensor, sh_rest: Tensor, means: Tensor, campos: tuple[float, float, float],
                degree: int, visible: NDArray[np.bool_]) -> Tensor:
        sh0_np, rest_np, means_np = _f32(sh0), _f32(sh_rest), _f32(means)
        colors = np.empty((sh0.shape[0], 3), dtype=np.float32)
        sh_forward(sh0_np, rest_np, means_np, campos, degree, visible, colors)
        # FunctionCtx is untyped attribute storage; numpy state cannot go through save_for_backward.
        ctx.kernel_state = (sh0_np, rest_np, means_np, campos, degree, visible,  # type: ignore[attr-defined]  # autograd ctx: state for backward
                            sh0.dtype, sh_rest.dtype, means.dtype)
        return torch.from_numpy(colors).to(sh0.dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_colors: Tensor) -> tuple[Tensor | None, ...]:
        sh0_np, rest_np, means_np, campos, degree, visible, dt_sh0, dt_rest, dt_means = ctx.kernel_state  # type: ignore[attr-defined]  # autograd ctx: state kept for backward
        g_sh0 = np.zeros(sh0_np.shape, dtype=np.float32)
        g_rest = np.zeros(rest_np.shape, dtype=np.float32)
        g_means = np.zeros(means_np.shape, dtype=np.float32)
        sh_backward(sh0_np, rest_np, means_np, campos, degree, visible, _f32(grad_colors), g_sh0, g_rest, g_means)
        return (torch.from_numpy(g_sh0).to(dt_sh0), torch.from_numpy(g_rest).to(dt_rest),
                torch.from_numpy(g_means).to(dt_means), None, None, None)


def sh_colors_cpu(sh: SHCoefficients, means: Tensor, camera_center: NDArray[np.float64], degree: int,
                  visible: Tensor | None = None) -> Tensor:
    """Fused numba version of ``sh.sh_to_rgb`` (float32 inside), differentiable in ``sh`` and ``means``.

    ``sh`` is one (N, K, 3) tensor or the (DC (N, 1, 3), rest (N, K-1, 3)) pair the trainer keeps, read in
    place. With ``visible`` (N,) bool, only those gaussians get colours and gradients (the rest are 0).
    """
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    sh0, sh_rest = split_sh(sh)
    mask = (np.ones(sh0.shape[0], dtype=np.bool_) if visible is None
            else np.ascontiguousarray(visible.detach().cpu().numpy(), dtype=np.bool_))
    campos = (float(camera_center[0]), float(camera_center[1]), float(camera_center[2]))
    out: Tensor = _SHColorsCPU.apply(sh0, sh_rest, means, campos, degree, mask)
    return out


def _camera_tuple(camera: Camera) -> tuple[float, ...]:
    tan_x, tan_y = 0.5 * camera.width / camera.fx, 0.5 * camera.height / camera.fy
    return (*(float(v) for v in np.asarray(camera.R, dtype=np.float64).reshape(9)),
            *(float(v) for v in np.asarray(camera.t, dtype=np.float64).reshape(3)),
            float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy),
            camera.cx / camera.fx + FOV_MARGIN * tan_x, (camera.width - camera.cx) / camera.fx + FOV_MARGIN * tan_x,
            camera.cy / camera.fy + FOV_MARGIN * tan_y, (camera.height - camera.cy) / camera.fy + FOV_MARGIN * tan_y)


class _ProjectCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor,
                camera: Camera) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        n = means.shape[0]
        cam = _camera_tuple(camera)
        mn, qt, sc = _f32(means), _f32(quats), _f32(scales)
        means2d = np.empty((n, 2), dtype=np.float32)
        conics = np.empty((n, 3), dtype=np.float32)
        depths = np.empty(n, dtype=np.float32)
        extents = np.empty((n, 2), dtype=np.float32)
        radii = np.empty(n, dtype=np.int32)
        project_forward(mn, qt, sc, _f32(opacities), cam, camera.width, camera.height, means2d, conics, depths,
                         extents, radii)
        # FunctionCtx is untyped attribute storage; numpy state cannot go through save_for_backward.
        ctx.kernel_state = (mn, qt, sc, radii, cam, means.dtype, quats.dtype,  # type: ignore[attr-defined]  # autograd ctx: state for backward
                            scales.dtype)
        out_radii = torch.from_numpy(radii)
        out_extents = torch.from_numpy(extents)
        ctx.mark_non_differentiable(out_extents, out_radii)
        dt = means.dtype
        return (torch.from_numpy(means2d).to(dt), torch.from_numpy(conics).to(dt), torch.from_numpy(depths).to(dt),
                out_extents, out_radii)

    @staticmethod
    def backward(ctx: FunctionCtx, g_means2d: Tensor, g_conics: Tensor, g_depths: Tensor, _g_extents: Tensor,
                 _g_radii: Tensor) -> tuple[Tensor | None, ...]:
        mn, qt, sc, radii, cam, dt_means, dt_quats, dt_scales = ctx.kernel_state  # type: ignore[attr-defined]  # autograd ctx: state kept for backward
        n = mn.shape[0]
        g_means = np.zeros((n, 3), dtype=np.float32)
        g_quats = np.zeros((n, 4), dtype=np.float32)
        g_scales = np.zeros((n, 3), dtype=np.float32)
        project_backward(mn, qt, sc, radii, cam, _f32(g_means2d), _f32(g_conics), _f32(g_depths), g_means,
                          g_quats, g_scales)
        return (torch.from_numpy(g_means).to(dt_means), torch.from_numpy(g_quats).to(dt_quats),
                torch.from_numpy(g_scales).to(dt_scales), None, None)


def project_cpu(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, camera: Camera) -> Projected:
    """Fused numba version of ``project.project_gaussians`` (same outputs, same culling, float32 results).

    Gradients reach means, quats and scales of *visible* gaussians (culled ones get exact zeros, as they
    receive no gradient from the rasterizer anyway). Opacities are only used for culling and the footprint.
    """
    result: tuple[Tensor, Tensor, Tensor, Tensor, Tensor] = _ProjectCPU.apply(means, quats, scales, opacities,
                                                                                camera)
    means2d, conics, depths, extents, radii = result
    return Projected(means2d=means2d, conics=conics, depths=depths, extents=extents, radii=radii,
                     visible=radii > 0)
