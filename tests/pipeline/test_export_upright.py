"""Upright exports: the floor or table under the subject becomes level, on generated captures whose SfM frame is
tilted arbitrarily (as pycolmap's is) and whose cameras look down at the subject, straight down included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.synthetic import orbit_cameras, surface_points
from tests.support.tilted import CAPTURES, TRUE_UP, level_error_deg, tilted
from tests.support.videos import make_forward_video
from vidscene.pipeline.config import FramesConfig, SfmConfig
from vidscene.pipeline.frames import extract_frames
from vidscene.pipeline.poses import estimate_up, umeyama
from vidscene.pipeline.sfm import reconstruct
from vidscene.pipeline.upright import find_up


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


@pytest.mark.slow
def test_structure_from_motion_levels_a_filmed_table(tmp_path: Path) -> None:
    """The whole SfM stage (pycolmap) on a rendered hand-held clip looking down at a table by 30 degrees:
    the table comes out level (its true normal within 3 degrees of -y), found as the supporting plane."""
    video = make_forward_video(tmp_path / "table.mp4", n_frames=36, width=240, height=180)
    frames = extract_frames(video.path, tmp_path / "frames", tmp_path / "thumb.jpg",
                            FramesConfig(target_count=36, max_long_side=240))
    scene = reconstruct(frames, tmp_path / "sfm", SfmConfig(matcher="sequential", num_threads=2))
    assert scene.extras["normalization"]["up_from"] == "supporting_plane"
    truth = [video.cameras[i] for i in frames.source_frame_indices]
    placed = {c.image_name: c for c in scene.cameras}
    pairs = [(placed[n].center, t.center) for n, t in zip(frames.frame_names, truth, strict=True) if n in placed]
    sim = umeyama(np.array([p for p, _ in pairs]), np.array([t for _, t in pairs]))  # ours -> the truth's frame
    true_up_here = sim.R.T @ TRUE_UP
    assert np.degrees(np.arccos(np.clip(true_up_here @ TRUE_UP, -1.0, 1.0))) < 3.0
