"""The forward-facing synthetic clip: a hand-held sweep over a table that decodes to its renders and never
looks past the scene."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from tests.support.synthetic import TabletopScene, forward_cameras
from tests.support.videos import make_forward_video
from vidscene.pipeline.poses import rotation_angle_deg


def test_forward_video_decodes_to_the_rendered_frames(tmp_path: Path) -> None:
    video = make_forward_video(tmp_path / "forward.mp4", width=64, height=48, n_frames=10, texture_size=64)
    with av.open(str(video.path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 10 == len(video.cameras)
    scene = TabletopScene(0, texture_size=64)
    for i in (0, 9):
        mse = float(np.mean((frames[i].astype(np.float64) - scene.render(video.cameras[i])) ** 2))
        assert 10 * np.log10(255.0**2 / mse) > 28
    assert frames[0].std() > 30  # textured, not flat


def test_forward_cameras_sweep_over_the_table_without_orbiting() -> None:
    cams = forward_cameras(40, 96, 72)
    scene = TabletopScene(0, texture_size=32)
    axes = np.stack([c.R[2] for c in cams])
    mean = axes.mean(axis=0) / np.linalg.norm(axes.mean(axis=0))
    spread = np.degrees(np.arccos(np.clip(axes @ mean, -1, 1)))
    assert 14.0 < spread.max() < 24.0  # a ~36-degree turn, each view within ~18 degrees of the mean
    assert 30.0 < rotation_angle_deg(cams[0].R, cams[-1].R) < 45.0
    centres = np.stack([c.center for c in cams])
    assert np.ptp(centres[:, 0]) > 1.0  # it slides sideways...
    for cam in cams[::13]:
        depth = scene.depth(cam)
        assert np.isfinite(depth).all()  # ...and every pixel sees the table, a box or the board behind
        assert depth.min() > 1.0 and depth.max() < 9.0
