"""Tile rasterizer for CPUs: numba kernels with a hand-written backward, wrapped as a torch.autograd.Function.

Why it is shaped this way (2-core machines, training at 160x120 to 320x240):

- Work follows gaussian-tile intersections, so a gaussian is binned only into the 16x16 tiles its footprint
  ellipse actually touches (exact ellipse-rectangle test), not into every tile of a 3-sigma square.
- Per-tile lists come out depth-sorted for free: gaussians are visited in global depth order and scattered
  into tiles with a stable counting sort.
- Inside a tile the loop runs gaussian by gaussian over the tile rows its footprint covers, 16 pixels to a
  row, with branch-free arithmetic that LLVM turns into AVX2/AVX-512 code. What keeps it vectorised (each
  measured; losing any one costs 3-20x): ``exp`` replaced by a polynomial (relative error ~3e-7; libm's
  ``expf`` does not vectorise without SVML), pixel indices masked to prove them non-negative, numpy's
  division semantics (no zero-division branch), and all per-pixel state in one scratch array per tile.
- Every gaussian carries exactly four channels (RGB and depth or zero) so the channel loops are unrolled by
  hand; background compositing happens inside the kernel, so the image needs no extra PyTorch passes.
- The backward pass walks each tile's list back to front, recovering transmittance by division from the
  final value saved by the forward pass, and reduces each gaussian's gradient over the tile's pixels in
  registers before adding it to a per-thread buffer: no atomics, one write per gaussian per tile.
- Projection and SH colours are fused per-gaussian kernels with hand-written backward passes too: as
  PyTorch graphs they cost more than the rasterizer on two busy cores.

The footprint of a gaussian is the ellipse where ``alpha >= 1/255`` (see ``project.py``), so the result does
not depend on the tiling and equals the dense reference rasterizer's up to float32 rounding.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import torch
from numba import prange
from numpy.typing import NDArray
from torch import Tensor
from torch.autograd.function import FunctionCtx

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.project import (
    ALPHA_MAX,
    ALPHA_MIN,
    EPS2D,
    FAR_PLANE,
    FOV_MARGIN,
    NEAR_PLANE,
    T_MIN,
    Projected,
)
from vidscene.pipeline.gaussian.sh import C0, C1, C2, C3

TILE = 16
TILE_PIXELS = TILE * TILE
N_CHANNELS = 4  # RGB + optional depth; fixed so the kernels' channel loops are unrolled
N_GRADS = 6 + N_CHANNELS  # d/d mean x, mean y, conic A, B, C, opacity, colour channels
# exp(-s) only matters while opacity * exp(-s) >= 1/255, i.e. s <= ln 255 ~ 5.54; clamping s keeps the
# polynomial in range and still yields alpha < 1/255 beyond it.
SIGMA_CLAMP = 6.0
# Row offsets (in pixels) of the per-tile scratch arrays of the forward (_F_*) and backward (_B_*) kernels.
_F_PX, _F_PY, _F_TRANS, _F_LIVE, _F_LAST, _F_ACC0, _F_ACC1, _F_ACC2, _F_ACC3 = (i * TILE_PIXELS for i in range(9))
_F_ROWS = 9
(_B_PX, _B_PY, _B_LAST, _B_G0, _B_G1, _B_G2, _B_G3, _B_GA, _B_TFINAL, _B_TRANS, _B_R0, _B_R1, _B_R2,
 _B_R3) = (i * TILE_PIXELS for i in range(14))
_B_ROWS = 14
SH_CHUNK = 256  # gaussians per parallel work item in the SH kernels (one scratch array each)

F = TypeVar("F", bound=Callable[..., Any])

# numba ships partial type information that does not list these; both exist in numba >= 0.57.
_thread_id = numba.get_thread_id  # type: ignore[attr-defined]  # missing from numba's stubs
_POOL_THREADS: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # missing from numba's stubs


# error_model="numpy": Python semantics would check every float division for zero, and that branch keeps
# LLVM from vectorising the backward pixel loop (14x slower). Divisions here never see zero by construction.
_JIT_OPTIONS: dict[str, Any] = {"cache": True, "fastmath": True, "nogil": True, "error_model": "numpy"}


def _parallel_kernel(fn: F) -> F:
    """numba's decorators are untyped; this keeps the kernels' signatures visible to mypy."""
    return cast(F, numba.njit(parallel=True, **_JIT_OPTIONS)(fn))


def _serial_kernel(fn: F) -> F:
    return cast(F, numba.njit(**_JIT_OPTIONS)(fn))


# The per-gaussian kernels (projection, SH) are cheap and decide visibility, so they keep IEEE semantics:
# under fastmath, isfinite() and comparisons with NaN may be folded away, and a diverged gaussian with NaN
# parameters must be culled, not rasterised.
_STRICT_OPTIONS: dict[str, Any] = {**_JIT_OPTIONS, "fastmath": False}


def _parallel_strict_kernel(fn: F) -> F:
    return cast(F, numba.njit(parallel=True, **_STRICT_OPTIONS)(fn))


def _serial_strict_kernel(fn: F) -> F:
    return cast(F, numba.njit(**_STRICT_OPTIONS)(fn))


@_serial_kernel
def _exp_neg(s: np.float32) -> np.float32:
    """exp(-s) for 0 <= s <= SIGMA_CLAMP: Taylor polynomial of exp(-s/16), then squared four times."""
    y = s * np.float32(0.0625)
    e = np.float32(1.0) - y * (np.float32(1.0) - y * (np.float32(0.5) - y * (
        np.float32(1.0 / 6.0) - y * (np.float32(1.0 / 24.0) - y * (
            np.float32(1.0 / 120.0) - y * (np.float32(1.0 / 720.0) - y * np.float32(1.0 / 5040.0)))))))
    e = e * e
    e = e * e
    e = e * e
    return e * e


@_serial_kernel
def _ellipse_touches_rect(a: float, b: float, c: float, ext2: float,
                          x0: float, x1: float, y0: float, y1: float) -> bool:
    """Whether the ellipse ``a x² + 2 b x y + c y² <= ext2`` (centred at 0) meets the rectangle."""
    if x0 <= 0.0 <= x1 and y0 <= 0.0 <= y1:
        return True
    # The minimum of a convex quadratic over a rectangle not containing its centre lies on an edge; on an edge
    # x = X the minimiser is y = -b X / c, clamped to the edge.
    best = 1e300  # not inf: fastmath lets LLVM assume no infinities
    for xe in (x0, x1):
        ye = min(max(-b * xe / c, y0), y1)
        best = min(best, a * xe * xe + 2.0 * b * xe * ye + c * ye * ye)
    for ye in (y0, y1):
        xe = min(max(-b * ye / a, x0), x1)
        best = min(best, a * xe * xe + 2.0 * b * xe * ye + c * ye * ye)
    return bool(best <= ext2)


@_parallel_kernel
def _bin_tiles(order: NDArray[np.int32], means2d: NDArray[np.float32], conics: NDArray[np.float32],
               ext2: NDArray[np.float32], extents: NDArray[np.float32], tiles_x: int,
               tiles_y: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Per-tile gaussian lists in front-to-back order: (offsets (tiles + 1,), ids (intersections,))."""
    m = order.shape[0]
    n_tiles = tiles_x * tiles_y
    rect = np.empty((m, 4), dtype=np.int32)
    upper = np.zeros(m + 1, dtype=np.int64)
    for i in range(m):
        g = order[i]
        # Clamp in floating point first: huge footprints must not overflow the integer conversion.
        tx0 = int(np.floor(min(max((means2d[g, 0] - extents[g, 0]) / TILE, 0.0), tiles_x)))
        tx1 = int(np.floor(min(max((means2d[g, 0] + extents[g, 0]) / TILE, -1.0), tiles_x - 1)))
        ty0 = int(np.floor(min(max((means2d[g, 1] - extents[g, 1]) / TILE, 0.0), tiles_y)))
        ty1 = int(np.floor(min(max((means2d[g, 1] + extents[g, 1]) / TILE, -1.0), tiles_y - 1)))
        rect[i, 0] = tx0
        rect[i, 1] = tx1
        rect[i, 2] = ty0
        rect[i, 3] = ty1
        upper[i + 1] = upper[i] + max(tx1 - tx0 + 1, 0) * max(ty1 - ty0 + 1, 0)
    pair_tile = np.full(upper[m], -1, dtype=np.int32)
    for i in prange(m):
        g = order[i]
        a = conics[g, 0]
        b = conics[g, 1]
        c = conics[g, 2]
        # A hair of slack so float rounding can only add a tile (whose pixels then fail the alpha test),
        # never drop one that the dense reference would draw into.
        e2 = ext2[g] * 1.0001 + 1e-4
        mx = means2d[g, 0]
        my = means2d[g, 1]
        k = upper[i]
        for ty in range(rect[i, 2], rect[i, 3] + 1):
            y0 = ty * TILE + 0.5 - my
            y1 = y0 + TILE - 1.0
            for tx in range(rect[i, 0], rect[i, 1] + 1):
                x0 = tx * TILE + 0.5 - mx
                x1 = x0 + TILE - 1.0
                if _ellipse_touches_rect(a, b, c, e2, x0, x1, y0, y1):
                    pair_tile[k] = ty * tiles_x + tx
                k += 1
    # Stable counting sort by tile keeps the depth order of `order` inside every tile.
    offsets = np.zeros(n_tiles + 1, dtype=np.int32)
    for i in range(m):
        for k in range(upper[i], upper[i + 1]):
            t = pair_tile[k]
            if t >= 0:
                offsets[t + 1] += 1
    for t in range(n_tiles):
        offsets[t + 1] += offsets[t]
    ids = np.empty(offsets[n_tiles], dtype=np.int32)
    cursor = offsets[:-1].copy()
    for i in range(m):
        for k in range(upper[i], upper[i + 1]):
            t = pair_tile[k]
            if t >= 0:
                ids[cursor[t]] = order[i]
                cursor[t] += 1
    return offsets, ids


@_serial_kernel
def _row_range(my: float, ey: float, oy: int) -> tuple[int, int]:
    """Rows of a tile (0..15) whose pixel centres lie within the footprint's vertical extent (empty: r1 < r0).

    Rows outside it could only produce alphas below 1/255; the slack absorbs float rounding.
    """
    slack = np.float32(0.01) + ey * np.float32(1e-4)
    r0 = int(np.ceil(min(max(my - ey - slack - oy - np.float32(0.5), np.float32(-1.0)), np.float32(TILE))))
    r1 = int(np.floor(min(max(my + ey + slack - oy - np.float32(0.5), np.float32(-1.0)), np.float32(TILE))))
    return max(r0, 0), min(r1, TILE - 1)


@_parallel_kernel
def _forward_tiles(offsets: NDArray[np.int32], ids: NDArray[np.int32], tile_order: NDArray[np.int32],
                   means2d: NDArray[np.float32], conics: NDArray[np.float32], colors: NDArray[np.float32],
                   opacities: NDArray[np.float32], extents: NDArray[np.float32], width: int, height: int,
                   tiles_x: int, background: Any, out_image: NDArray[np.float32], out_alpha: NDArray[np.float32],
                   out_depth: NDArray[np.float32], out_trans: NDArray[np.float32],
                   out_last: NDArray[np.int32]) -> None:
    """Front-to-back compositing per tile.

    Fills the image (H, W, 3) composited over ``background``, alpha, the alpha-weighted sum of channel 3
    (depth), the final transmittance and the last contributor of every pixel (its position in ``ids``; the
    tile's start minus one if none), where the backward pass starts walking back.

    All per-pixel state of a tile lives in one scratch array (rows of 256 at the ``_F_*`` offsets): with a
    single base pointer LLVM vectorises the pixel loop without runtime aliasing checks.
    """
    alpha_max = np.float32(ALPHA_MAX)
    alpha_min = np.float32(ALPHA_MIN)
    t_min = np.float32(T_MIN)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    half = np.float32(0.5)
    sigma_clamp = np.float32(SIGMA_CLAMP)
    for j in prange(tile_order.shape[0]):
        tile = tile_order[j]
        ty = tile // tiles_x
        tx = tile - ty * tiles_x
        ox = tx * TILE
        oy = ty * TILE
        start = offsets[tile]
        end = offsets[tile + 1]
        st = np.zeros(_F_ROWS * TILE_PIXELS, dtype=np.float32)
        n_live = 0
        for p in range(TILE_PIXELS):
            x = ox + p % TILE
            y = oy + p // TILE
            st[_F_PX + p] = x + 0.5
            st[_F_PY + p] = y + 0.5
            st[_F_TRANS + p] = one
            # Index of the last contributor relative to `start`, as a float so that the pixel loop stays in
            # one vector type (exact: tile lists are far shorter than 2**24).
            st[_F_LAST + p] = -one
            if x < width and y < height:
                st[_F_LIVE + p] = one
                n_live += 1
        for k in range(start, end):
            if n_live == 0:
                break
            g = ids[k]
            mx = means2d[g, 0]
            my = means2d[g, 1]
            r0, r1 = _row_range(my, extents[g, 1], oy)
            ca = conics[g, 0]
            cb = conics[g, 1]
            cc = conics[g, 2]
            op = opacities[g]
            col0 = colors[g, 0]
            col1 = colors[g, 1]
            col2 = colors[g, 2]
            col3 = colors[g, 3]
            kf = np.float32(k - start)
            died = zero
            base = r0 * TILE
            for q in range((r1 - r0 + 1) * TILE):
                # The mask proves p >= 0 to LLVM, which drops numba's negative-index fix-up; without it the
                # loop does not vectorise (20x slower).
                p = (base + q) & (TILE_PIXELS - 1)
                dx = st[_F_PX + p] - mx
                dy = st[_F_PY + p] - my
                s = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                s = min(max(s, zero), sigma_clamp)
                al = min(op * _exp_neg(s), alpha_max)
                t = st[_F_TRANS + p]
                nt = t * (one - al)
                counts = (al >= alpha_min) & (st[_F_LIVE + p] > zero)
                ok = counts & (nt >= t_min)
                ends = counts & (nt < t_min)
                w = (al * t) * np.float32(ok)
                st[_F_ACC0 + p] += w * col0
                st[_F_ACC1 + p] += w * col1
                st[_F_ACC2 + p] += w * col2
                st[_F_ACC3 + p] += w * col3
                st[_F_TRANS + p] = nt if ok else t
                st[_F_LAST + p] = kf if ok else st[_F_LAST + p]
                st[_F_LIVE + p] = st[_F_LIVE + p] * (one - np.float32(ends))
                died += np.float32(ends)
            n_live -= int(died)
        for p in range(TILE_PIXELS):
            x = ox + p % TILE
            y = oy + p // TILE
            if x < width and y < height:
                t = st[_F_TRANS + p]
                out_image[y, x, 0] = st[_F_ACC0 + p] + t * background[0]
                out_image[y, x, 1] = st[_F_ACC1 + p] + t * background[1]
                out_image[y, x, 2] = st[_F_ACC2 + p] + t * background[2]
                out_depth[y, x] = st[_F_ACC3 + p]
                out_alpha[y, x] = one - t
                out_trans[y, x] = t
                out_last[y, x] = start + int(st[_F_LAST + p])


@_parallel_kernel
def _backward_tiles(offsets: NDArray[np.int32], ids: NDArray[np.int32], tile_order: NDArray[np.int32],
                    means2d: NDArray[np.float32], conics: NDArray[np.float32], colors: NDArray[np.float32],
                    opacities: NDArray[np.float32], extents: NDArray[np.float32], width: int, height: int,
                    tiles_x: int, background: Any, final_trans: NDArray[np.float32],
                    last_index: NDArray[np.int32], grad_image: NDArray[np.float32],
                    grad_alpha: NDArray[np.float32], grad_depth: NDArray[np.float32], has_grad_depth: bool,
                    thread_grads: NDArray[np.float32]) -> None:
    """Back-to-front gradients per tile, summed into ``thread_grads[thread, gaussian, N_GRADS]``.

    Per pixel, walking back from the last contributor: ``T_i = T_{i+1} / (1 - a_i)``; ``R`` is the colour
    composited behind gaussian i (normalised by ``T_{i+1}``), so ``dC/da_i = T_i (c_i - R)`` and
    ``d alpha_pixel / d a_i = T_final / (1 - a_i)``. The background enters through the final transmittance:
    image = colour + T * background, so it adds ``-grad_image . background`` to the gradient of alpha = 1 - T.
    Per-pixel state lives in one scratch array as in ``_forward_tiles``.
    """
    alpha_max = np.float32(ALPHA_MAX)
    alpha_min = np.float32(ALPHA_MIN)
    one = np.float32(1.0)
    half = np.float32(0.5)
    zero = np.float32(0.0)
    sigma_clamp = np.float32(SIGMA_CLAMP)
    for j in prange(tile_order.shape[0]):
        tile = tile_order[j]
        tid = _thread_id()
        ty = tile // tiles_x
        tx = tile - ty * tiles_x
        ox = tx * TILE
        oy = ty * TILE
        start = offsets[tile]
        end = offsets[tile + 1]
        if end == start:
            continue
        st = np.zeros(_B_ROWS * TILE_PIXELS, dtype=np.float32)
        k_max = start - 1
        for p in range(TILE_PIXELS):
            x = ox + p % TILE
            y = oy + p // TILE
            st[_B_PX + p] = x + 0.5
            st[_B_PY + p] = y + 0.5
            st[_B_TRANS + p] = one
            st[_B_TFINAL + p] = one
            st[_B_LAST + p] = -one
            if x < width and y < height:
                st[_B_TRANS + p] = final_trans[y, x]
                st[_B_TFINAL + p] = final_trans[y, x]
                st[_B_LAST + p] = np.float32(last_index[y, x] - start)
                k_max = max(k_max, last_index[y, x])
                g0 = grad_image[y, x, 0]
                g1 = grad_image[y, x, 1]
                g2 = grad_image[y, x, 2]
                st[_B_G0 + p] = g0
                st[_B_G1 + p] = g1
                st[_B_G2 + p] = g2
                st[_B_G3 + p] = grad_depth[y, x] if has_grad_depth else zero
                st[_B_GA + p] = grad_alpha[y, x] - (g0 * background[0] + g1 * background[1] + g2 * background[2])
        for k in range(k_max, start - 1, -1):
            g = ids[k]
            mx = means2d[g, 0]
            my = means2d[g, 1]
            row0, row1 = _row_range(my, extents[g, 1], oy)
            ca = conics[g, 0]
            cb = conics[g, 1]
            cc = conics[g, 2]
            op = opacities[g]
            col0 = colors[g, 0]
            col1 = colors[g, 1]
            col2 = colors[g, 2]
            col3 = colors[g, 3]
            kf = np.float32(k - start)
            s_mx = zero
            s_my = zero
            s_ca = zero
            s_cb = zero
            s_cc = zero
            s_op = zero
            s_c0 = zero
            s_c1 = zero
            s_c2 = zero
            s_c3 = zero
            base = row0 * TILE
            for q in range((row1 - row0 + 1) * TILE):
                p = (base + q) & (TILE_PIXELS - 1)  # see _forward_tiles
                dx = st[_B_PX + p] - mx
                dy = st[_B_PY + p] - my
                s = half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                s = min(max(s, zero), sigma_clamp)
                e = _exp_neg(s)
                raw = op * e
                al = min(raw, alpha_max)
                valid = (kf <= st[_B_LAST + p]) & (al >= alpha_min)
                vf = np.float32(valid)
                om = one - al
                inv_om = one / om
                t_after = st[_B_TRANS + p]
                t_i = t_after * inv_om
                w = al * t_i * vf
                g0 = st[_B_G0 + p]
                g1 = st[_B_G1 + p]
                g2 = st[_B_G2 + p]
                g3 = st[_B_G3 + p]
                r0 = st[_B_R0 + p]
                r1 = st[_B_R1 + p]
                r2 = st[_B_R2 + p]
                r3 = st[_B_R3 + p]
                dot = g0 * (col0 - r0) + g1 * (col1 - r1) + g2 * (col2 - r2) + g3 * (col3 - r3)
                # Clamped alphas do not depend on opacity or position.
                d_raw = ((t_i * dot + st[_B_GA + p] * st[_B_TFINAL + p] * inv_om) * vf
                         * np.float32(raw < alpha_max))
                s_c0 += w * g0
                s_c1 += w * g1
                s_c2 += w * g2
                s_c3 += w * g3
                s_op += e * d_raw
                d_sigma = -raw * d_raw
                s_ca += d_sigma * half * dx * dx
                s_cb += d_sigma * dx * dy
                s_cc += d_sigma * half * dy * dy
                s_mx -= d_sigma * (ca * dx + cb * dy)
                s_my -= d_sigma * (cb * dx + cc * dy)
                a_v = al * vf
                om_v = one - a_v
                st[_B_R0 + p] = a_v * col0 + om_v * r0
                st[_B_R1 + p] = a_v * col1 + om_v * r1
                st[_B_R2 + p] = a_v * col2 + om_v * r2
                st[_B_R3 + p] = a_v * col3 + om_v * r3
                st[_B_TRANS + p] = t_i if valid else t_after
            thread_grads[tid, g, 0] += s_mx
            thread_grads[tid, g, 1] += s_my
            thread_grads[tid, g, 2] += s_ca
            thread_grads[tid, g, 3] += s_cb
            thread_grads[tid, g, 4] += s_cc
            thread_grads[tid, g, 5] += s_op
            thread_grads[tid, g, 6] += s_c0
            thread_grads[tid, g, 7] += s_c1
            thread_grads[tid, g, 8] += s_c2
            thread_grads[tid, g, 9] += s_c3


# ---------------------------------------------------------------------------------------------------------
# Projection. The PyTorch version in project.py is the specification; on 2 busy cores its ~100 small autograd
# ops cost 20-100 ms per iteration at 20k gaussians, these fused per-gaussian kernels well under 1 ms. They
# compute in float64 internally (per-gaussian work is cheap) and agree with the specification to ~1e-6.
# 3x3 matrices are row-major 9-tuples so that nothing is allocated per gaussian.


@_serial_strict_kernel
def _mat3_mul(a: Any, b: Any) -> Any:
    return (a[0] * b[0] + a[1] * b[3] + a[2] * b[6], a[0] * b[1] + a[1] * b[4] + a[2] * b[7],
            a[0] * b[2] + a[1] * b[5] + a[2] * b[8],
            a[3] * b[0] + a[4] * b[3] + a[5] * b[6], a[3] * b[1] + a[4] * b[4] + a[5] * b[7],
            a[3] * b[2] + a[4] * b[5] + a[5] * b[8],
            a[6] * b[0] + a[7] * b[3] + a[8] * b[6], a[6] * b[1] + a[7] * b[4] + a[8] * b[7],
            a[6] * b[2] + a[7] * b[5] + a[8] * b[8])


@_serial_strict_kernel
def _mat3_t(a: Any) -> Any:
    return (a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8])


@_serial_strict_kernel
def _quat_rotmat(qw: float, qx: float, qy: float, qz: float) -> Any:
    """Rotation matrix of a *normalised* quaternion (w, x, y, z)."""
    return (1.0 - 2.0 * (qy * qy + qz * qz), 2.0 * (qx * qy - qw * qz), 2.0 * (qx * qz + qw * qy),
            2.0 * (qx * qy + qw * qz), 1.0 - 2.0 * (qx * qx + qz * qz), 2.0 * (qy * qz - qw * qx),
            2.0 * (qx * qz - qw * qy), 2.0 * (qy * qz + qw * qx), 1.0 - 2.0 * (qx * qx + qy * qy))


@_serial_strict_kernel
def _project_one(means: Any, quats: Any, scales: Any, i: int, cam: Any) -> Any:
    """Shared forward math of one gaussian; returns every intermediate the backward pass needs."""
    # cam = (R row-major x9, t x3, fx, fy, cx, cy, lim_x_neg, lim_x_pos, lim_y_neg, lim_y_pos)
    rc = (cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7], cam[8])
    fx, fy = cam[12], cam[13]
    mx, my, mz = float(means[i, 0]), float(means[i, 1]), float(means[i, 2])
    x = rc[0] * mx + rc[1] * my + rc[2] * mz + cam[9]
    y = rc[3] * mx + rc[4] * my + rc[5] * mz + cam[10]
    z = rc[6] * mx + rc[7] * my + rc[8] * mz + cam[11]
    in_depth = z > NEAR_PLANE and z < FAR_PLANE
    zs = z if in_depth else 1.0
    u = x / zs
    v = y / zs
    uc = min(max(u, -cam[16]), cam[17])
    vc = min(max(v, -cam[18]), cam[19])
    qw, qx, qy, qz = float(quats[i, 0]), float(quats[i, 1]), float(quats[i, 2]), float(quats[i, 3])
    qn = max(np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz), 1e-12)
    rot = _quat_rotmat(qw / qn, qx / qn, qy / qn, qz / qn)
    s0, s1, s2 = float(scales[i, 0]), float(scales[i, 1]), float(scales[i, 2])
    m = (rot[0] * s0, rot[1] * s1, rot[2] * s2, rot[3] * s0, rot[4] * s1, rot[5] * s2,
         rot[6] * s0, rot[7] * s1, rot[8] * s2)
    cov = _mat3_mul(m, _mat3_t(m))
    cov_c = _mat3_mul(_mat3_mul(rc, cov), _mat3_t(rc))
    j00 = fx / zs
    j02 = -fx * uc / zs
    j11 = fy / zs
    j12 = -fy * vc / zs
    # T = J cov_c (2x3), cov2d = T Jᵀ
    t0 = j00 * cov_c[0] + j02 * cov_c[6]
    t1 = j00 * cov_c[1] + j02 * cov_c[7]
    t2 = j00 * cov_c[2] + j02 * cov_c[8]
    t4 = j11 * cov_c[4] + j12 * cov_c[7]
    t5 = j11 * cov_c[5] + j12 * cov_c[8]
    a = t0 * j00 + t2 * j02 + EPS2D
    b = t1 * j11 + t2 * j12
    c = t4 * j11 + t5 * j12 + EPS2D
    det = a * c - b * b
    return (x, y, z, in_depth, zs, u, v, uc, vc, rot, (s0, s1, s2), m, cov_c, j00, j02, j11, j12, a, b, c, det,
            (qw, qx, qy, qz, qn))


@_parallel_strict_kernel
def _project_forward(means: NDArray[np.float32], quats: NDArray[np.float32], scales: NDArray[np.float32],
                     opacities: NDArray[np.float32], cam: Any, width: int, height: int,
                     out_means2d: NDArray[np.float32], out_conics: NDArray[np.float32],
                     out_depths: NDArray[np.float32], out_extents: NDArray[np.float32],
                     out_radii: NDArray[np.int32]) -> None:
    for i in prange(means.shape[0]):
        (_x, _y, z, in_depth, _zs, u, v, _uc, _vc, _rot, _sc, _m, _cov_c, _j00, _j02, _j11, _j12, a, b, c, det,
         _q) = _project_one(means, quats, scales, i, cam)
        m2x = cam[12] * u + cam[14]
        m2y = cam[13] * v + cam[15]
        out_means2d[i, 0] = m2x
        out_means2d[i, 1] = m2y
        out_depths[i] = z
        ok_det = det > 1e-12
        ds = det if ok_det else 1.0
        out_conics[i, 0] = c / ds
        out_conics[i, 1] = -b / ds
        out_conics[i, 2] = a / ds
        op = float(opacities[i])
        ext = np.sqrt(2.0 * np.log(max(op * 255.0, 1.0)))
        ex = ext * np.sqrt(max(a, 0.0))
        ey = ext * np.sqrt(max(c, 0.0))
        out_extents[i, 0] = ex
        out_extents[i, 1] = ey
        on_screen = m2x + ex > 0.0 and m2x - ex < width and m2y + ey > 0.0 and m2y - ey < height
        visible = (in_depth and ok_det and op >= ALPHA_MIN and on_screen and np.isfinite(m2x)
                   and np.isfinite(m2y))
        out_radii[i] = int(np.ceil(max(ex, ey))) if visible else 0


@_parallel_strict_kernel
def _project_backward(means: NDArray[np.float32], quats: NDArray[np.float32], scales: NDArray[np.float32],
                      radii: NDArray[np.int32], cam: Any, g_means2d: NDArray[np.float32],
                      g_conics: NDArray[np.float32], g_depths: NDArray[np.float32],
                      out_g_means: NDArray[np.float32], out_g_quats: NDArray[np.float32],
                      out_g_scales: NDArray[np.float32]) -> None:
    for i in prange(means.shape[0]):
        if radii[i] <= 0:
            # Culled gaussians receive no gradient from the rasterizer; skip them entirely.
            continue
        (_x, _y, _z, _in_depth, zs, u, v, uc, vc, rot, sc, m, cov_c, j00, j02, j11, j12, a, b, c, det,
         q) = _project_one(means, quats, scales, i, cam)
        rc = (cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7], cam[8])
        fx, fy = cam[12], cam[13]
        # conic (A, B, C) = (c, -b, a) / det  ->  d/d(a, b, c) of the 2D covariance
        gA, gB, gC = float(g_conics[i, 0]), float(g_conics[i, 1]), float(g_conics[i, 2])
        inv2 = 1.0 / (det * det)
        ga = (-c * c * gA + b * c * gB - b * b * gC) * inv2
        gb = (2.0 * b * c * gA - (det + 2.0 * b * b) * gB + 2.0 * a * b * gC) * inv2
        gc = (-b * b * gA + a * b * gB - a * a * gC) * inv2
        # Symmetric gradient of cov2d = J cov_c Jᵀ: G = [[ga, gb/2], [gb/2, gc]].
        g01 = 0.5 * gb
        # dL/dcov_c = Jᵀ G J, with J = [[j00, 0, j02], [0, j11, j12]]
        h00 = j00 * ga * j00
        h01 = j00 * g01 * j11
        h02 = j00 * (ga * j02 + g01 * j12)
        h11 = j11 * gc * j11
        h12 = j11 * (g01 * j02 + gc * j12)
        h22 = j02 * (ga * j02 + g01 * j12) + j12 * (g01 * j02 + gc * j12)
        g_cov_c = (h00, h01, h02, h01, h11, h12, h02, h12, h22)
        # dL/dJ = 2 G J cov_c (only the four non-constant entries of J matter)
        gj = (ga * j00, g01 * j11, ga * j02 + g01 * j12, g01 * j00, gc * j11, g01 * j02 + gc * j12)
        jc00 = 2.0 * (gj[0] * cov_c[0] + gj[1] * cov_c[3] + gj[2] * cov_c[6])
        jc02 = 2.0 * (gj[0] * cov_c[2] + gj[1] * cov_c[5] + gj[2] * cov_c[8])
        jc11 = 2.0 * (gj[3] * cov_c[1] + gj[4] * cov_c[4] + gj[5] * cov_c[7])
        jc12 = 2.0 * (gj[3] * cov_c[2] + gj[4] * cov_c[5] + gj[5] * cov_c[8])
        # J and the screen position as functions of the camera-space point (x, y, z)
        gx = 0.0
        gy = 0.0
        gz = float(g_depths[i])
        gm0, gm1 = float(g_means2d[i, 0]), float(g_means2d[i, 1])
        iz = 1.0 / zs
        gx += gm0 * fx * iz
        gy += gm1 * fy * iz
        gz -= (gm0 * fx * u + gm1 * fy * v) * iz
        gz -= (jc00 * fx + jc11 * fy) * iz * iz
        if -cam[16] < u < cam[17]:
            # j02 = -fx x / z²
            gx -= jc02 * fx * iz * iz
            gz += jc02 * 2.0 * fx * u * iz * iz
        else:
            gz += jc02 * fx * uc * iz * iz
        if -cam[18] < v < cam[19]:
            gy -= jc12 * fy * iz * iz
            gz += jc12 * 2.0 * fy * v * iz * iz
        else:
            gz += jc12 * fy * vc * iz * iz
        out_g_means[i, 0] = rc[0] * gx + rc[3] * gy + rc[6] * gz
        out_g_means[i, 1] = rc[1] * gx + rc[4] * gy + rc[7] * gz
        out_g_means[i, 2] = rc[2] * gx + rc[5] * gy + rc[8] * gz
        # cov_c = Rc cov Rcᵀ -> dL/dcov = Rcᵀ dL/dcov_c Rc; cov = M Mᵀ -> dL/dM = 2 dL/dcov M
        g_cov = _mat3_mul(_mat3_mul(_mat3_t(rc), g_cov_c), rc)
        g_m = _mat3_mul(g_cov, m)
        s0, s1, s2 = sc
        out_g_scales[i, 0] = 2.0 * (g_m[0] * rot[0] + g_m[3] * rot[3] + g_m[6] * rot[6])
        out_g_scales[i, 1] = 2.0 * (g_m[1] * rot[1] + g_m[4] * rot[4] + g_m[7] * rot[7])
        out_g_scales[i, 2] = 2.0 * (g_m[2] * rot[2] + g_m[5] * rot[5] + g_m[8] * rot[8])
        gr = (2.0 * g_m[0] * s0, 2.0 * g_m[1] * s1, 2.0 * g_m[2] * s2, 2.0 * g_m[3] * s0, 2.0 * g_m[4] * s1,
              2.0 * g_m[5] * s2, 2.0 * g_m[6] * s0, 2.0 * g_m[7] * s1, 2.0 * g_m[8] * s2)
        qw_raw, qx_raw, qy_raw, qz_raw, qn = q
        w, qx, qy, qz = qw_raw / qn, qx_raw / qn, qy_raw / qn, qz_raw / qn
        dw = 2.0 * (-qz * gr[1] + qy * gr[2] + qz * gr[3] - qx * gr[5] - qy * gr[6] + qx * gr[7])
        dx = 2.0 * (qy * gr[1] + qz * gr[2] + qy * gr[3] - 2.0 * qx * gr[4] - w * gr[5] + qz * gr[6]
                    + w * gr[7] - 2.0 * qx * gr[8])
        dy = 2.0 * (-2.0 * qy * gr[0] + qx * gr[1] + w * gr[2] + qx * gr[3] + qz * gr[5] - w * gr[6]
                    + qz * gr[7] - 2.0 * qy * gr[8])
        dz = 2.0 * (-2.0 * qz * gr[0] - w * gr[1] + qx * gr[2] + w * gr[3] - 2.0 * qz * gr[4] + qy * gr[5]
                    + qx * gr[6] + qy * gr[7])
        # Through the normalisation q / |q|: remove the radial component and divide by |q|.
        dot = w * dw + qx * dx + qy * dy + qz * dz
        out_g_quats[i, 0] = (dw - w * dot) / qn
        out_g_quats[i, 1] = (dx - qx * dot) / qn
        out_g_quats[i, 2] = (dy - qy * dot) / qn
        out_g_quats[i, 3] = (dz - qz * dot) / qn


# ---------------------------------------------------------------------------------------------------------
# Colour from spherical harmonics (same basis as sh.py). In PyTorch the ~60 small ops of degree 3 plus their
# backward cost more than the whole tile rasterizer on two busy cores; fused here they are a few microseconds
# per thousand gaussians.


@_serial_strict_kernel
def _sh_basis(degree: int, x: float, y: float, z: float, out: NDArray[np.float64]) -> None:
    """Basis values and their x, y, z derivatives into rows 0..3 of ``out`` (4, 16).

    Entries of bands above ``degree`` and structurally zero derivatives are never written, so a scratch
    array zeroed once can be reused for every gaussian of the same degree.
    """
    b = out[0]
    bx = out[1]
    by = out[2]
    bz = out[3]
    b[0] = C0
    if degree >= 1:
        b[1] = -C1 * y
        b[2] = C1 * z
        b[3] = -C1 * x
        by[1] = -C1
        bz[2] = C1
        bx[3] = -C1
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        b[4] = C2[0] * x * y
        b[5] = C2[1] * y * z
        b[6] = C2[2] * (2.0 * zz - xx - yy)
        b[7] = C2[3] * x * z
        b[8] = C2[4] * (xx - yy)
        bx[4], by[4] = C2[0] * y, C2[0] * x
        by[5], bz[5] = C2[1] * z, C2[1] * y
        bx[6], by[6], bz[6] = -2.0 * C2[2] * x, -2.0 * C2[2] * y, 4.0 * C2[2] * z
        bx[7], bz[7] = C2[3] * z, C2[3] * x
        bx[8], by[8] = 2.0 * C2[4] * x, -2.0 * C2[4] * y
    if degree >= 3:
        xx, yy, zz = x * x, y * y, z * z
        b[9] = C3[0] * y * (3.0 * xx - yy)
        b[10] = C3[1] * x * y * z
        b[11] = C3[2] * y * (4.0 * zz - xx - yy)
        b[12] = C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy)
        b[13] = C3[4] * x * (4.0 * zz - xx - yy)
        b[14] = C3[5] * z * (xx - yy)
        b[15] = C3[6] * x * (xx - 3.0 * yy)
        bx[9], by[9] = C3[0] * 6.0 * x * y, C3[0] * (3.0 * xx - 3.0 * yy)
        bx[10], by[10], bz[10] = C3[1] * y * z, C3[1] * x * z, C3[1] * x * y
        bx[11], by[11], bz[11] = (-2.0 * C3[2] * x * y, C3[2] * (4.0 * zz - xx - 3.0 * yy),
                                  8.0 * C3[2] * y * z)
        bx[12], by[12], bz[12] = (-6.0 * C3[3] * x * z, -6.0 * C3[3] * y * z,
                                  C3[3] * (6.0 * zz - 3.0 * xx - 3.0 * yy))
        bx[13], by[13], bz[13] = (C3[4] * (4.0 * zz - 3.0 * xx - yy), -2.0 * C3[4] * x * y,
                                  8.0 * C3[4] * x * z)
        bx[14], by[14], bz[14] = 2.0 * C3[5] * x * z, -2.0 * C3[5] * y * z, C3[5] * (xx - yy)
        bx[15], by[15] = C3[6] * (3.0 * xx - 3.0 * yy), -6.0 * C3[6] * x * y


@_serial_strict_kernel
def _view_dir(means: Any, i: int, campos: Any) -> Any:
    vx = float(means[i, 0]) - campos[0]
    vy = float(means[i, 1]) - campos[1]
    vz = float(means[i, 2]) - campos[2]
    norm = max(np.sqrt(vx * vx + vy * vy + vz * vz), 1e-12)
    return vx / norm, vy / norm, vz / norm, norm


@_parallel_strict_kernel
def _sh_forward(sh: NDArray[np.float32], means: NDArray[np.float32], campos: Any, degree: int,
                out_colors: NDArray[np.float32]) -> None:
    n = sh.shape[0]
    n_bases = (degree + 1) * (degree + 1)
    for chunk in prange((n + SH_CHUNK - 1) // SH_CHUNK):
        basis = np.zeros((4, 16))
        b = basis[0]
        for i in range(chunk * SH_CHUNK, min(n, (chunk + 1) * SH_CHUNK)):
            x, y, z, _norm = _view_dir(means, i, campos)
            _sh_basis(degree, x, y, z, basis)
            for c in range(3):
                acc = 0.0
                for k in range(n_bases):
                    acc += b[k] * sh[i, k, c]
                out_colors[i, c] = max(acc + 0.5, 0.0)


@_parallel_strict_kernel
def _sh_backward(sh: NDArray[np.float32], means: NDArray[np.float32], campos: Any, degree: int,
                 g_colors: NDArray[np.float32], out_g_sh: NDArray[np.float32],
                 out_g_means: NDArray[np.float32]) -> None:
    n = sh.shape[0]
    n_bases = (degree + 1) * (degree + 1)
    for chunk in prange((n + SH_CHUNK - 1) // SH_CHUNK):
        basis = np.zeros((4, 16))
        for i in range(chunk * SH_CHUNK, min(n, (chunk + 1) * SH_CHUNK)):
            x, y, z, norm = _view_dir(means, i, campos)
            _sh_basis(degree, x, y, z, basis)
            gdx = 0.0
            gdy = 0.0
            gdz = 0.0
            for c in range(3):
                raw = 0.0
                for k in range(n_bases):
                    raw += basis[0, k] * sh[i, k, c]
                # clamp(min=0) after the +0.5 offset passes the gradient where its input is >= 0, as in PyTorch.
                g = float(g_colors[i, c]) if raw + 0.5 >= 0.0 else 0.0
                for k in range(n_bases):
                    out_g_sh[i, k, c] = basis[0, k] * g
                    coeff = sh[i, k, c] * g
                    gdx += basis[1, k] * coeff
                    gdy += basis[2, k] * coeff
                    gdz += basis[3, k] * coeff
            if degree > 0:
                # Through the normalisation d = v / |v|.
                dot = x * gdx + y * gdy + z * gdz
                out_g_means[i, 0] = (gdx - x * dot) / norm
                out_g_means[i, 1] = (gdy - y * dot) / norm
                out_g_means[i, 2] = (gdz - z * dot) / norm


def _f32(t: Tensor) -> NDArray[np.float32]:
    return np.ascontiguousarray(t.detach().to(torch.float32).numpy())


class _RasterizeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor,
                depths: Tensor, background: Tensor, visible: Tensor, extents: Tensor, width: int, height: int,
                with_depth: bool) -> tuple[Tensor, Tensor, Tensor]:
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
        offsets, ids = _bin_tiles(order, m2, con, ext2, ext, tiles_x, tiles_y)
        tile_order = _balanced_tile_order(offsets)
        image = np.empty((height, width, 3), dtype=np.float32)
        alpha = np.empty((height, width), dtype=np.float32)
        depth = np.empty((height, width), dtype=np.float32)
        trans = np.empty((height, width), dtype=np.float32)
        last = np.empty((height, width), dtype=np.int32)
        _forward_tiles(offsets, ids, tile_order, m2, con, cols, opac, ext, width, height, tiles_x, bg, image, alpha,
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
        _backward_tiles(offsets, ids, tile_order, m2, con, cols, opac, ext, width, height, tiles_x, bg, trans, last,
                        g_image, g_alpha, g_depth, has_grad_depth, thread_grads)
        grads = torch.from_numpy(thread_grads.sum(axis=0))
        g_bg = torch.from_numpy(np.einsum("hw,hwc->c", trans, g_image)).to(dt_bg)
        g_depths = grads[:, 9].to(dt_depths) if with_depth else None
        return (grads[:, 0:2].to(dt_means), grads[:, 2:5].to(dt_conics), grads[:, 6:9].to(dt_colors),
                grads[:, 5].to(dt_opac), g_depths, g_bg, None, None, None, None, None)


def _balanced_tile_order(offsets: NDArray[np.int32]) -> NDArray[np.int32]:
    """Tiles dealt round-robin by decreasing cost into one contiguous run per thread.

    numba splits a prange into equal contiguous chunks, one per thread, and tile costs (list lengths) vary
    by orders of magnitude across an image; dealing the sorted tiles keeps every thread's share near equal.
    """
    by_cost = np.argsort(-np.diff(offsets), kind="stable").astype(np.int32)
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


def rasterize_cpu(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor, depths: Tensor,
                  background: Tensor, visible: Tensor, extents: Tensor, width: int, height: int,
                  with_depth: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Composite gaussians with the numba kernels.

    Returns ``(image (H, W, 3) over background, alpha (H, W), depth)`` where depth is the alpha-weighted sum
    of ``depths`` (H, W) when ``with_depth`` (divide by alpha for the expected depth), else an empty tensor.
    Gradients flow to means2d, conics, colors, opacities, depths (with_depth) and background.
    Threads: ``numba.set_num_threads`` (default: all cores).
    """
    if colors.ndim != 2 or colors.shape[1] != 3:
        raise ValueError(f"colors must have shape (N, 3), got {tuple(colors.shape)}")
    out: tuple[Tensor, Tensor, Tensor] = _RasterizeCPU.apply(means2d, conics, colors, opacities, depths,
                                                             background, visible, extents, width, height,
                                                             with_depth)
    return out


class _SHColorsCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, sh: Tensor, means: Tensor, campos: tuple[float, float, float],
                degree: int) -> Tensor:
        sh_np = _f32(sh)
        means_np = _f32(means)
        colors = np.empty((sh.shape[0], 3), dtype=np.float32)
        _sh_forward(sh_np, means_np, campos, degree, colors)
        # FunctionCtx is untyped attribute storage; numpy state cannot go through save_for_backward.
        ctx.kernel_state = (sh_np, means_np, campos, degree, sh.dtype, means.dtype)  # type: ignore[attr-defined]  # autograd ctx: state for backward
        return torch.from_numpy(colors).to(sh.dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_colors: Tensor) -> tuple[Tensor | None, ...]:
        sh_np, means_np, campos, degree, dt_sh, dt_means = ctx.kernel_state  # type: ignore[attr-defined]  # autograd ctx: state kept for backward
        g_sh = np.zeros(sh_np.shape, dtype=np.float32)
        g_means = np.zeros(means_np.shape, dtype=np.float32)
        _sh_backward(sh_np, means_np, campos, degree, _f32(grad_colors), g_sh, g_means)
        return torch.from_numpy(g_sh).to(dt_sh), torch.from_numpy(g_means).to(dt_means), None, None


def sh_colors_cpu(sh: Tensor, means: Tensor, camera_center: NDArray[np.float64], degree: int) -> Tensor:
    """Fused numba version of ``sh.sh_to_rgb`` (float32 inside), differentiable in ``sh`` and ``means``."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    campos = (float(camera_center[0]), float(camera_center[1]), float(camera_center[2]))
    out: Tensor = _SHColorsCPU.apply(sh, means, campos, degree)
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
        _project_forward(mn, qt, sc, _f32(opacities), cam, camera.width, camera.height, means2d, conics, depths,
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
        _project_backward(mn, qt, sc, radii, cam, _f32(g_means2d), _f32(g_conics), _f32(g_depths), g_means,
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
