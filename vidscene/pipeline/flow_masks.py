"""Content that moves with the camera: blocks of a frame whose image motion the static scene cannot explain.

The robust loss (``gaussian/robust.py``) finds what moved through the shot by its residual: a person who
crosses the frame is in a few frames only, so the model cannot fit them and their residual stands out. A
person who walks *along with* the camera sits at about the same pixels in every frame; the model fits them
like scenery and their residual is as small as the room's. What gives them away is their image motion.

Between two neighbouring frames with known poses, a static surface at depth ``z`` moves by the flow the
camera's rotation and translation dictate for that depth; a thing carried along with the camera moves by
much less (about the rotation's part alone, as a point at infinity would). So each frame gets a range of
depths per pixel from the sparse SfM points that project into it (a near and a far quantile per block: SfM
points carry no visibility here, and at a box's edge either surface may be the one seen), the segment of the
epipolar line where a static surface in that range would land in a neighbour before and after it, and the
flow the images show (``skimage``'s iterative Lucas-Kanade on small normalised grey frames, which exposure
drift does not move). A block is flagged when the measured landing is more than ``threshold`` pixels off
that segment towards *both* neighbours (a flow error or a blurred frame seldom fails the same way twice),
where the frame has texture enough for flow to be measured, and only in blobs at least two blocks wide (as
the robust loss's). A single depth per block (a low percentile) flagged 2.6% of a clean capture at box
edges; the range, 0.7% (bench/RESULTS.md). Computed once per run, when the robust loss starts; the masks
join its own (``gaussian/train.py``), so nothing downstream changes, the capture check's per-frame moving
share included. Off by default (``GaussianConfig.flow_masks``): on the benchmark's disturbed capture it
did not move the figures, and on the clean one it raised a false ``moving_content`` warning (bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.registration import optical_flow_ilk
from skimage.transform import resize

from vidscene.pipeline.cameras import Camera

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class FlowMaskSettings:
    long_side: int = 160  # flow is measured on frames this long (pixels); thresholds are in these pixels
    gap: int = 2  # neighbours ``gap`` frames before and after (time order)
    threshold: float = 3.0  # flow disagreement (pixels) that flags a block
    block: int = 8  # pixels on a block's side
    depth_quantiles: tuple[float, float] = (0.1, 0.9)  # of the SfM points' depths in a block: near and far
    min_points: int = 3  # SfM points a block needs for a depth range of its own
    flow_radius: int = 4  # Lucas-Kanade window radius (pixels at the flow size)
    min_texture: float = 0.08  # mean gradient magnitude of the normalised grey block; below it flow is guessed
    max_share: float = 0.5  # a frame flagged more than this is a bad fit of poses or depth, not a person


def flow_masks(cameras: Sequence[Camera], images: Sequence[F32], points: F32,
               settings: FlowMaskSettings = FlowMaskSettings(),
               frames: Sequence[int] | None = None) -> dict[int, BoolArray]:
    """``{frame: (H, W) bool}`` at each image's size: the pixels of ``images[frame]`` (``(H, W, 3)`` floats in
    0..1, cameras in time order) that move unlike the static scene, for every index in ``frames`` (default all).

    Frames with fewer than two neighbours, or whose SfM points give no depth, get an all-False mask."""
    height, width = images[0].shape[:2]
    scale = min(1.0, settings.long_side / max(width, height))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = [c.scaled(size[1], size[0]) for c in cameras]
    greys: dict[int, F32] = {}

    def grey(i: int) -> F32:
        if i not in greys:
            greys[i] = _normalised_grey(images[i], size)
        return greys[i]

    out: dict[int, BoolArray] = {}
    for i in range(len(cameras)) if frames is None else frames:
        blocks = _moving_blocks(i, small, grey, points, settings)
        out[i] = _to_pixels(blocks, settings.block, size, (height, width))
    return out


def _moving_blocks(i: int, cameras: Sequence[Camera], grey: Callable[[int], F32], points: F32,
                   settings: FlowMaskSettings) -> BoolArray:
    """``(bh, bw)`` bool at the flow size: the blocks of frame ``i`` flagged as moving unlike the scene."""
    cam = cameras[i]
    grid = (-(-cam.height // settings.block), -(-cam.width // settings.block))
    none = np.zeros(grid, dtype=bool)
    neighbours = [j for j in (i - settings.gap, i + settings.gap) if 0 <= j < len(cameras)]
    depths = depth_range(cam, points, settings.block, settings.depth_quantiles, settings.min_points)
    if len(neighbours) < 2 or depths is None:
        return none
    disagree = np.full(grid, np.inf)
    for j in neighbours:
        measured = optical_flow_ilk(grey(i), grey(j), radius=settings.flow_radius, num_warp=5)
        near, far = (predicted_flow(cam, cameras[j], d) for d in depths)
        disagree = np.minimum(disagree, _block_median(off_static(measured, near, far), settings.block))
    flagged = (disagree > settings.threshold) & (_block_texture(grey(i), settings.block) >= settings.min_texture)
    flagged = _coherent(flagged)
    if flagged.mean() > settings.max_share:
        return none
    return flagged


def _normalised_grey(image: F32, size: tuple[int, int]) -> F32:
    """Luma at ``size``, shifted and scaled to zero mean and unit spread: auto exposure does not look like motion."""
    luma = np.asarray(image, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    small = np.asarray(resize(luma, size, anti_aliasing=True), dtype=np.float32)
    return np.asarray((small - small.mean()) / max(float(small.std()), 1e-6), dtype=np.float32)


def depth_range(camera: Camera, points: F32, block: int, quantiles: tuple[float, float],
                min_points: int = 1) -> tuple[F64, F64] | None:
    """``(near, far)``, each ``(H, W)``: the camera-space depths a static surface at each pixel of ``camera`` may
    have, from the SfM points in front of it: per block the ``quantiles`` of the depths projected there; a block
    with fewer than ``min_points`` takes the whole frame's range, so that it is never judged on a guess (a plain
    wall above a box took the box's depth from its neighbours and was flagged on a clean capture). A range, not
    one depth: at an edge between a box and the wall behind it either may be what the pixel shows, and points
    hidden in this frame project into it too. None when no point projects into the frame."""
    cam_pts = np.asarray(points, dtype=np.float64) @ camera.R.T + camera.t
    z = cam_pts[:, 2]
    front = z > 1e-6
    u = camera.fx * cam_pts[front, 0] / z[front] + camera.cx
    v = camera.fy * cam_pts[front, 1] / z[front] + camera.cy
    z = z[front]
    inside = (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    if not inside.any():
        return None
    grid = (-(-camera.height // block), -(-camera.width // block))
    cells = (v[inside] // block).astype(np.int64) * grid[1] + (u[inside] // block).astype(np.int64)
    order = np.lexsort((z[inside], cells))
    cells, zs = cells[order], z[inside][order]
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    counts = np.diff(np.r_[starts, cells.size])
    bounds = []
    for q in quantiles:
        depths = np.full(grid[0] * grid[1], np.quantile(zs, q))  # a block with too few points: the frame's range
        judged = counts >= min_points
        depths[cells[starts][judged]] = zs[(starts + np.floor(q * (counts - 1)).astype(np.int64))[judged]]
        depths = depths.reshape(grid)
        full = np.repeat(np.repeat(depths, block, axis=0), block, axis=1)
        bounds.append(np.asarray(full[: camera.height, : camera.width], dtype=np.float64))
    return bounds[0], bounds[1]


def off_static(measured: F64, near: F64, far: F64) -> F64:
    """``(H, W)`` pixels between where the measured flow lands and the nearest place a static surface between
    the ``near`` and ``far`` landings (``predicted_flow`` of each, on the same epipolar line) would land."""
    seg = far - near
    length2 = np.maximum((seg**2).sum(axis=0), 1e-9)
    s = np.clip(((measured - near) * seg).sum(axis=0) / length2, 0.0, 1.0)
    return np.asarray(np.linalg.norm(measured - (near + s * seg), axis=0), dtype=np.float64)


def predicted_flow(src: Camera, dst: Camera, depth: F64) -> F64:
    """``(2, H, W)`` (rows, columns): where each pixel of ``src`` at ``depth`` lands in ``dst`` if the scene is
    static, minus where it was (the convention of ``skimage``'s flow: ``src(r, c) ~ dst(r + dr, c + dc)``)."""
    rows, cols = np.mgrid[0: src.height, 0: src.width].astype(np.float64)
    x = (cols + 0.5 - src.cx) / src.fx * depth
    y = (rows + 0.5 - src.cy) / src.fy * depth
    cam = np.stack([x, y, depth], axis=-1)
    world = (cam - src.t) @ src.R  # R^T (x - t), row-wise
    other = world @ dst.R.T + dst.t
    z = np.maximum(other[..., 2], 1e-6)
    u = dst.fx * other[..., 0] / z + dst.cx - 0.5
    v = dst.fy * other[..., 1] / z + dst.cy - 0.5
    return np.stack([v - rows, u - cols])


def _cells(values: F64, block: int) -> F64:
    """``(bh, bw, block * block)``: the values of each ``block`` x ``block`` cell, NaN past the image's edge."""
    height, width = values.shape
    grid = (-(-height // block), -(-width // block))
    padded = np.full((grid[0] * block, grid[1] * block), np.nan)
    padded[:height, :width] = values
    return padded.reshape(grid[0], block, grid[1], block).transpose(0, 2, 1, 3).reshape(grid[0], grid[1], -1)


def _block_median(values: F64, block: int) -> F64:
    """Per block, the median: a block is judged by most of its pixels, not by the flow's worst guesses."""
    return np.asarray(np.nanmedian(_cells(values, block), axis=-1), dtype=np.float64)


def _block_texture(grey: F32, block: int) -> F64:
    """Per block, the mean gradient magnitude: flow is measurable only where the image has structure."""
    gy, gx = np.gradient(grey.astype(np.float64))
    return np.asarray(np.nanmean(_cells(np.hypot(gx, gy), block), axis=-1), dtype=np.float64)


def _coherent(flagged: BoolArray) -> BoolArray:
    """Blocks with at least three flagged neighbours (a blob two blocks wide, not a thin edge), plus one block
    of margin around them: a person's outline blurs beyond the blocks that clear the bar."""
    count = ndimage.uniform_filter(flagged.astype(np.float64), size=3, mode="constant") * 9.0
    core = flagged & (count >= 4.0 - 1e-6)
    return np.asarray(ndimage.binary_dilation(core, structure=np.ones((3, 3), dtype=bool)), dtype=bool)


def _to_pixels(blocks: BoolArray, block: int, small: tuple[int, int], full: tuple[int, int]) -> BoolArray:
    """Block flags at the flow size as an ``full``-sized pixel mask (nearest neighbour)."""
    pixels = np.repeat(np.repeat(blocks, block, axis=0), block, axis=1)[: small[0], : small[1]]
    rows = np.minimum((np.arange(full[0]) * small[0]) // full[0], small[0] - 1)
    cols = np.minimum((np.arange(full[1]) * small[1]) // full[1], small[1] - 1)
    return np.asarray(pixels[np.ix_(rows, cols)], dtype=bool)
