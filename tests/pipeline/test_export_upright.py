"""Upright exports: the floor or table under the subject becomes level, on generated captures whose SfM frame is
tilted arbitrarily (as pycolmap's is) and whose cameras look down at the subject, straight down included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.support.synthetic import (
    SyntheticScene,
    TabletopScene,
    forward_cameras,
    orbit_cameras,
    surface_points,
)
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.poses import Similarity, estimate_up, normalizing_similarity
from vidscene.pipeline.upright import find_up

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


CAPTURES = {
    "table_pitch_45": lambda: (TabletopScene(0, texture_size=16), forward_cameras(12, 64, 48, pitch_degrees=45.0)),
    "table_straight_down": lambda: (TabletopScene(0, texture_size=16), straight_down_cameras(12)),
    "room_orbit": lambda: (SyntheticScene(0, texture_size=16), orbit_cameras(16, 64, 48)),
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
@pytest.mark.parametrize("seed", [1, 2])
def test_supporting_plane_becomes_level(name: str, seed: int) -> None:
    scene, cameras = CAPTURES[name]()
    cams, points, frame = tilted(cameras, surface_points(scene, cameras, 150, seed=seed), seed)
    up = find_up(cams, points, seed=seed)
    assert up.source == "supporting_plane"
    assert level_error_deg(cams, frame, up.direction) < 3.0
    # The floor is what was found, not a wall or the poster board: the cameras are above it.
    assert up.plane is not None and up.plane.support > 0.3


@pytest.mark.parametrize("name", ["table_pitch_45", "table_straight_down"])
def test_cameras_alone_tilt_a_tabletop(name: str) -> None:
    """What the plane replaces: the cameras' own up leans towards the subject by about their pitch."""
    scene, cameras = CAPTURES[name]()
    cams, _, frame = tilted(cameras, surface_points(scene, cameras, 10), 3)
    assert level_error_deg(cams, frame, estimate_up(cams)[0]) > 20.0


def test_no_plane_falls_back_to_the_cameras() -> None:
    cameras = orbit_cameras(16, 64, 48)
    blob = np.random.default_rng(4).normal(scale=0.5, size=(2000, 3)) + np.array([0.0, -0.5, 0.0])
    cams, points, frame = tilted(cameras, blob, 4)
    up = find_up(cams, points)
    assert up.source == "camera_plane"  # the level orbit, as before the plane rule
    assert up.plane is None
    assert level_error_deg(cams, frame, up.direction) < 3.0
    assert find_up(cams, points[:10]).source == "camera_plane"  # too few points to try


def test_a_plane_seen_from_below_is_not_the_floor() -> None:
    """The ceiling of a room is a big plane too; cameras under it, held upright, look up at it: not chosen."""
    scene, cameras = CAPTURES["room_orbit"]()
    points = surface_points(scene, cameras, 150, seed=5)
    ceiling = np.column_stack([np.random.default_rng(5).uniform(-6, 6, (3000, 2)), np.full(3000, -4.0)])[:, [0, 2, 1]]
    cams, pts, frame = tilted(cameras, np.concatenate([points, ceiling]), 5)
    up = find_up(cams, pts)
    assert up.source == "supporting_plane"
    assert level_error_deg(cams, frame, up.direction) < 3.0
