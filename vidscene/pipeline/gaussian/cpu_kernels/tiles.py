"""Tile rasterizer kernels: binning gaussians into 16x16 tiles, front-to-back compositing and its backward.

Why they are shaped this way (2-core machines, training at 160x120 to 320x240):

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

The footprint of a gaussian is the ellipse where ``alpha >= 1/255`` (see ``project.py``), so the result does
not depend on the tiling and equals the dense reference rasterizer's up to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import prange
from numpy.typing import NDArray

from vidscene.pipeline.gaussian.cpu_kernels.jit import parallel_kernel, serial_kernel
from vidscene.pipeline.gaussian.project import ALPHA_MAX, ALPHA_MIN, T_MIN

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

# numba ships partial type information that does not list it; it exists in numba >= 0.57.
_thread_id = numba.get_thread_id  # type: ignore[attr-defined]  # missing from numba's stubs


@serial_kernel
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


@serial_kernel
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


@parallel_kernel
def bin_tiles(order: NDArray[np.int32], means2d: NDArray[np.float32], conics: NDArray[np.float32],
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


@serial_kernel
def _row_range(my: float, ey: float, oy: int) -> tuple[int, int]:
    """Rows of a tile (0..15) whose pixel centres lie within the footprint's vertical extent (empty: r1 < r0).

    Rows outside it could only produce alphas below 1/255; the slack absorbs float rounding.
    """
    slack = np.float32(0.01) + ey * np.float32(1e-4)
    r0 = int(np.ceil(min(max(my - ey - slack - oy - np.float32(0.5), np.float32(-1.0)), np.float32(TILE))))
    r1 = int(np.floor(min(max(my + ey + slack - oy - np.float32(0.5), np.float32(-1.0)), np.float32(TILE))))
    return max(r0, 0), min(r1, TILE - 1)


# One function on purpose: a fused numba kernel, one call per tile in nopython mode.
@parallel_kernel
def forward_tiles(offsets: NDArray[np.int32], ids: NDArray[np.int32], tile_order: NDArray[np.int32],
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


# One function on purpose: a fused numba kernel, one call per tile in nopython mode.
@parallel_kernel
def backward_tiles(offsets: NDArray[np.int32], ids: NDArray[np.int32], tile_order: NDArray[np.int32],
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
    Per-pixel state lives in one scratch array as in ``forward_tiles``.
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
                p = (base + q) & (TILE_PIXELS - 1)  # see forward_tiles
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
