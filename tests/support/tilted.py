"""Generated captures whose structure-from-motion frame is tilted at random, for the upright tests: a table filmed
from 45 degrees and straight down, a room orbit, with noisy sparse points and outliers."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tests.support.synthetic import (
    QuadScene,
    SyntheticScene,
    TabletopScene,
    forward_cameras,
    orbit_cameras,
)
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.poses import Similarity, normalizing_similarity

TRUE_UP = np.array([0.0, -1.0, 0.0])  # the synthetic scenes' floor and table are y = 0, -y up


def straight_down_cameras(n: int, width: int = 64, height: int = 48) -> list[Camera]:
    """A phone held flat over the table, looking straight down, sliding across it while it turns by 60 degrees
    (the image's up is horizontal: it says nothing about the vertical)."""
    fx = (width / 2.0) / math.tan(math.radians(30.0))
    cams = []
    for i in range(n):
        s = i / max(1, n - 1)
        heading = math.radians(-30.0 + 60.0 * s)
        centre = np.array([-0.8 + 1.6 * s, -2.5, 0.5 + 0.2 * math.sin(3.0 * s)])
        down = np.array([math.sin(heading), 0.0, math.cos(heading)])  # the image's down, in the world
        forward = np.array([0.0, 1.0, 0.0])
        R = np.stack([np.cross(down, forward), down, forward])
        cams.append(Camera(width=width, height=height, fx=fx, fy=fx, cx=width / 2.0, cy=height / 2.0, R=R,
                           t=-R @ centre, image_name=f"{i:05d}"))
    return cams


def tilted(cameras: list[Camera], points: np.ndarray, seed: int) -> tuple[list[Camera], np.ndarray, Similarity]:
    """The capture in an arbitrary SfM frame (rotated, scaled, shifted) with noisy points and 10% outliers."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    frame = Similarity(scale=3.7, R=q, t=rng.normal(scale=5.0, size=3))
    extent = float(np.percentile(np.linalg.norm(points - np.median(points, axis=0), axis=1), 80))
    noisy = points + rng.normal(scale=0.002 * extent, size=points.shape)
    lo, hi = points.min(axis=0), points.max(axis=0)
    outliers = rng.uniform(lo, hi, size=(len(points) // 10, 3))
    return ([frame.apply_camera(c) for c in cameras], frame.apply_points(np.concatenate([noisy, outliers])), frame)


def level_error_deg(cameras: list[Camera], frame: Similarity, up: np.ndarray | None) -> float:
    """Angle between the true floor normal and ``-y`` after the normalisation with ``up``."""
    norm = normalizing_similarity(cameras, up)
    true_up = norm.R @ frame.R @ TRUE_UP
    return math.degrees(math.acos(float(np.clip(true_up @ TRUE_UP, -1.0, 1.0))))


CAPTURES: dict[str, Callable[[], tuple[QuadScene, list[Camera]]]] = {
    "table_pitch_45": lambda: (TabletopScene(0, texture_size=16), forward_cameras(12, 64, 48, pitch_degrees=45.0)),
    "table_straight_down": lambda: (TabletopScene(0, texture_size=16), straight_down_cameras(12)),
    "room_orbit": lambda: (SyntheticScene(0, texture_size=16), orbit_cameras(16, 64, 48)),
}
