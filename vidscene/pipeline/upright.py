"""Which way is up: the supporting plane (floor or table) under the subject, confirmed by how the camera was held.

The cameras alone guess up poorly when people film objects: the image's up leans towards the subject by the
camera's pitch (30-60 degrees over a table, 90 looking straight down), and the camera path's plane is level
only for a level orbit. The surface things stand on is a far better level: it is usually the largest plane in
the sparse points, and the one exports must show horizontal (an orbit then turns about the true vertical).

``find_up`` fits planes to the SfM points by RANSAC (up to ``MAX_PLANES``, each removing its inliers), and keeps
those a hand-held phone can have seen from above: nearly all cameras on one side of it (that side is up), and
for most cameras a plausible hold under that up (roll within ``MAX_ROLL_DEG``, pitch between looking a little
up and looking straight down). Of those, the largest plane the cameras look at obliquely (mean pitch at most
``STEEP_PITCH_DEG``) wins; a plane the cameras face head-on (a table filmed straight down, which looks exactly
like a wall filmed straight on) is taken only when no oblique one qualifies and it holds most of the points
(``DOMINANT_SUPPORT``). Without such a plane the camera rules of ``poses.estimate_up`` decide, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.poses import estimate_up

F64 = NDArray[np.float64]

MAX_POINTS = 20_000  # RANSAC on a random subset: more adds time, not accuracy
RANSAC_ITERATIONS = 400
MAX_PLANES = 4
INLIER_DISTANCE = 0.01  # of the points' extent (80th percentile distance from their median)
MIN_SUPPORT = 0.12  # fraction of the points a plane needs to count at all
DOMINANT_SUPPORT = 0.4  # ... and to be trusted when the cameras face it head-on
MIN_POINTS = 30
CAMERAS_ABOVE = 0.9  # fraction of camera centres that must be on the plane's up side
PLAUSIBLE_CAMERAS = 0.8  # fraction of cameras whose hold must be plausible under the plane's up
MAX_ROLL_DEG = 30.0
PITCH_RANGE_DEG = (-25.0, 105.0)  # looking a little up .. a little past straight down
STEEP_PITCH_DEG = 65.0


@dataclass(frozen=True)
class Plane:
    """``normal @ x + offset == 0``; ``normal`` is a unit vector pointing to the cameras' side."""

    normal: F64
    offset: float
    support: float  # fraction of the points within the inlier distance
    mean_pitch_deg: float = 0.0  # how steeply the cameras look down at it (90: straight down)


@dataclass(frozen=True)
class Up:
    """World up (unit vector) and what decided it: ``supporting_plane`` or one of ``estimate_up``'s rules."""

    direction: F64
    source: str
    plane: Plane | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"up_from": self.source}
        if self.plane is not None:
            out["plane_support"] = round(self.plane.support, 4)
            out["plane_pitch_deg"] = round(self.plane.mean_pitch_deg, 2)
        return out


def find_up(cameras: list[Camera], points: NDArray[np.floating], *, seed: int = 0) -> Up:
    """Up for a scene's cameras and sparse points (see the module doc); deterministic for ``seed``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    plane = supporting_plane(cameras, pts, seed=seed) if len(pts) >= MIN_POINTS and cameras else None
    if plane is not None:
        return Up(plane.normal, "supporting_plane", plane)
    direction, source = estimate_up(cameras)
    return Up(direction, source)


def supporting_plane(cameras: list[Camera], points: F64, *, seed: int = 0) -> Plane | None:
    """The plane the scene stands on, or None when no plane qualifies (module doc)."""
    candidates = [oriented for p in candidate_planes(points, seed=seed)
                  if (oriented := _seen_from_above(p, cameras)) is not None]
    oblique = [p for p in candidates if p.mean_pitch_deg <= STEEP_PITCH_DEG]
    if oblique:
        return max(oblique, key=lambda p: p.support)
    steep = [p for p in candidates if p.support >= DOMINANT_SUPPORT]
    return max(steep, key=lambda p: p.support) if steep else None


def candidate_planes(points: F64, *, seed: int = 0) -> list[Plane]:
    """Up to ``MAX_PLANES`` planes found one after another by RANSAC, each refined by least squares on its
    inliers and then left out of the search for the next; only planes with ``MIN_SUPPORT`` are returned."""
    rng = np.random.default_rng(seed)
    if len(points) > MAX_POINTS:
        points = points[rng.choice(len(points), MAX_POINTS, replace=False)]
    centre = np.median(points, axis=0)
    extent = float(np.percentile(np.linalg.norm(points - centre, axis=1), 80))
    tolerance = INLIER_DISTANCE * max(extent, 1e-12)
    total = len(points)
    remaining = points
    planes: list[Plane] = []
    for _ in range(MAX_PLANES):
        if len(remaining) < max(MIN_POINTS, MIN_SUPPORT * total):
            break
        found = _ransac(remaining, tolerance, rng)
        if found is None:
            break
        normal, offset = found
        inliers = np.abs(remaining @ normal + offset) <= tolerance
        if inliers.sum() < max(MIN_POINTS, MIN_SUPPORT * total):
            break
        normal, offset = _refit(remaining[inliers])
        inliers = np.abs(remaining @ normal + offset) <= tolerance
        planes.append(Plane(normal, offset, float(inliers.sum()) / total))
        remaining = remaining[~inliers]
    return planes


def _ransac(points: F64, tolerance: float, rng: np.random.Generator) -> tuple[F64, float] | None:
    """The plane through three of ``points`` with the most points within ``tolerance``; None if all degenerate."""
    triples = rng.integers(0, len(points), size=(RANSAC_ITERATIONS, 3))
    a, b, c = points[triples[:, 0]], points[triples[:, 1]], points[triples[:, 2]]
    normals = np.cross(b - a, c - a)
    lengths = np.linalg.norm(normals, axis=1)
    ok = lengths > 1e-12 * max(1.0, float(np.abs(points).max()))
    if not ok.any():
        return None
    normals = normals[ok] / lengths[ok, None]
    offsets = -(normals * a[ok]).sum(axis=1)
    counts = np.zeros(len(normals), dtype=np.int64)
    for start in range(0, len(normals), 64):  # (64, N) distances at a time keeps memory small
        block = slice(start, start + 64)
        counts[block] = (np.abs(normals[block] @ points.T + offsets[block, None]) <= tolerance).sum(axis=1)
    best = int(np.argmax(counts))
    return normals[best], float(offsets[best])


def _refit(inliers: F64) -> tuple[F64, float]:
    """Least-squares plane (smallest principal axis) through ``inliers``."""
    centre = inliers.mean(axis=0)
    _, _, vt = np.linalg.svd(inliers - centre, full_matrices=False)
    normal = vt[2] / np.linalg.norm(vt[2])
    return normal, float(-normal @ centre)


def _seen_from_above(plane: Plane, cameras: list[Camera]) -> Plane | None:
    """``plane`` with its normal towards the cameras and their mean pitch, when the cameras can have filmed it
    from above with a plausible hold (module doc); None otherwise."""
    centres = np.array([c.center for c in cameras])
    side = centres @ plane.normal + plane.offset
    sign = 1.0 if float(np.median(side)) >= 0 else -1.0
    if np.mean(side * sign > 0) < CAMERAS_ABOVE:
        return None
    up = plane.normal * sign
    rows = np.array([c.R for c in cameras])  # each row: the camera's x (right), y (down), z (forward) in world
    right, image_up, back = rows[:, 0] @ up, -(rows[:, 1] @ up), -(rows[:, 2] @ up)
    roll = np.degrees(np.arcsin(np.clip(right, -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(back, image_up))  # 0: looking level, 90: straight down
    plausible = (np.abs(roll) <= MAX_ROLL_DEG) & (pitch >= PITCH_RANGE_DEG[0]) & (pitch <= PITCH_RANGE_DEG[1])
    if np.mean(plausible) < PLAUSIBLE_CAMERAS:
        return None
    return Plane(up, plane.offset * sign, plane.support, float(np.degrees(
        math.atan2(float(np.mean(back)), float(np.mean(image_up))))))
