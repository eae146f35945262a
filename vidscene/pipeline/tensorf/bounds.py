"""The box TensoRF models: where the SfM points that the cameras actually see are, robust to outliers.

A handful of wild SfM points (mismatches, sky, far buildings) would otherwise blow the box up and waste the
grid on empty space. Anything beyond the box is represented by the model's background colour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera

F64 = NDArray[np.float64]

MAX_POINTS = 50_000
MAX_CAMERAS = 60
PERCENTILE = 0.5  # per-axis percentile cut at each end
PADDING = 0.1  # fraction of the extent added on each side
REACH = 4.0  # the box stays within this many camera-path radii of the cameras' centroid
MIN_AXIS_FRACTION = 0.1  # no axis thinner than this fraction of the longest one


def _visible(points: F64, cameras: Sequence[Camera]) -> NDArray[np.bool_]:
    """Points in front of, and inside the image of, at least one camera (the frustums)."""
    seen = np.zeros(points.shape[0], dtype=bool)
    step = max(1, len(cameras) // MAX_CAMERAS)
    for cam in cameras[::step]:
        p = points @ cam.R.T + cam.t
        z = p[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = cam.fx * p[:, 0] / z + cam.cx
            v = cam.fy * p[:, 1] / z + cam.cy
        seen |= (z > 1e-6) & (u >= 0) & (u <= cam.width) & (v >= 0) & (v <= cam.height)
    return seen


def visible_points(points: F64, cameras: Sequence[Camera]) -> F64:
    """The finite points (at most ``MAX_POINTS``, a fixed random subset beyond) that some camera sees."""
    pts = points[np.isfinite(points).all(axis=1)]
    if pts.shape[0] > MAX_POINTS:
        pts = pts[np.random.default_rng(0).choice(pts.shape[0], MAX_POINTS, replace=False)]
    return pts[_visible(pts, cameras)]


def scene_aabb(cameras: Sequence[Camera], points: NDArray[np.floating]) -> F64:
    """(2, 3) min/max corners in world units of the region worth modelling.

    Uses SfM points seen by some camera, cut at the 0.5th/99.5th percentile per axis, padded by 10%, and kept within
    ``REACH`` camera-path radii of the cameras; with fewer than 20 usable points, a box around the cameras.
    """
    if not cameras:
        raise ValueError("scene bounds need at least one camera")
    centers = np.stack([c.center for c in cameras])
    centroid = centers.mean(axis=0)
    radius = float(np.linalg.norm(centers - centroid, axis=1).max())
    if radius < 1e-6:
        radius = 1.0
    reach_lo, reach_hi = centroid - REACH * radius, centroid + REACH * radius

    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if pts.shape[0] > MAX_POINTS:
        pts = pts[np.random.default_rng(0).choice(pts.shape[0], MAX_POINTS, replace=False)]
    if pts.shape[0] >= 20:
        pts = pts[_visible(pts, cameras)]
    if pts.shape[0] >= 20:
        lo = np.percentile(pts, PERCENTILE, axis=0)
        hi = np.percentile(pts, 100.0 - PERCENTILE, axis=0)
        pad = (hi - lo) * PADDING
        lo, hi = np.maximum(lo - pad, reach_lo), np.minimum(hi + pad, reach_hi)
    else:
        lo, hi = centroid - 2.0 * radius, centroid + 2.0 * radius
    extent = hi - lo
    # Degenerate (planar or empty after clipping) boxes: grow thin axes about their middle.
    min_extent = max(float(extent.max()), radius) * MIN_AXIS_FRACTION
    mid = (lo + hi) / 2.0
    half = np.maximum(extent, min_extent) / 2.0
    return np.stack([mid - half, mid + half])
