"""The synthetic video generator: its frames decode, and its cameras are the ones that rendered them."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.support.synthetic import LOOK_AT, SyntheticScene, orbit_cameras
from tests.support.videos import make_black_video, make_orbit_video
from vidscene.pipeline.cameras import Camera


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def _project(cam: Camera, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pc = pts @ cam.R.T + cam.t
    uv = pc[:, :2] / pc[:, 2:3] * [cam.fx, cam.fy] + [cam.cx, cam.cy]
    return uv, pc[:, 2]


def test_orbit_video_decodes_to_the_rendered_frames(tmp_path: Path) -> None:
    video = make_orbit_video(tmp_path / "orbit.mp4", n_frames=12, width=96, height=64)
    frames = _decode(video.path)
    assert len(frames) == 12 == len(video.cameras) == len(video.frame_times)
    assert frames[0].shape == (64, 96, 3)
    assert video.frame_times == pytest.approx([i / 24 for i in range(12)])
    scene = SyntheticScene(0)
    for i in (0, 11):
        assert _psnr(frames[i], scene.render(video.cameras[i])) > 30
    # Consecutive frames differ (the camera moves), and the frames are textured, not flat.
    assert _psnr(frames[0], frames[11]) < 20
    assert frames[0].std() > 30


def test_true_cameras_follow_the_pipeline_conventions() -> None:
    cams = orbit_cameras(10, 160, 120, orbit_degrees=90)
    for cam in cams:
        assert np.allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(cam.R) == pytest.approx(1.0)
        uv, depth = _project(cam, LOOK_AT[None])
        assert depth[0] > 0
        assert np.allclose(uv[0], [80, 60], atol=1e-6)  # looks at the centre of the scene
        # y-down cameras, world -y up: the camera's up direction (-y_cam in world) points to world -y.
        assert (-cam.R[1]) @ np.array([0.0, -1.0, 0.0]) > 0.9
        assert cam.center[1] < 0  # above the floor
    centres = np.array([c.center for c in cams])
    angle = np.degrees(np.arccos(np.dot(centres[0, [0, 2]], centres[-1, [0, 2]])
                                 / np.linalg.norm(centres[0, [0, 2]]) / np.linalg.norm(centres[-1, [0, 2]])))
    assert angle == pytest.approx(90, abs=1e-6)


def test_cameras_and_renders_agree_geometrically() -> None:
    """A surface point seen by two cameras has the same colour in both renders."""
    scene = SyntheticScene(3)
    cams = orbit_cameras(8, 160, 120, orbit_degrees=40)
    c0, c1 = cams[0], cams[7]
    img0, img1 = scene.render(c0, supersample=1), scene.render(c1, supersample=1)
    # Back-project every pixel of view 0 to its surface point, then find it in view 1.
    depth0 = scene.depth(c0).astype(np.float64)
    vv, uu = np.mgrid[0:120, 0:160]
    rays = np.stack([(uu + 0.5 - c0.cx) / c0.fx, (vv + 0.5 - c0.cy) / c0.fy, np.ones(uu.shape)], -1)
    pts = ((rays * depth0[..., None]).reshape(-1, 3) - c0.t) @ c0.R  # R^T (x_cam - t)
    uv1, d1 = _project(c1, pts)
    inside = (d1 > 0) & np.all((uv1 >= 0) & (uv1 < [160, 120]), axis=1)
    iu, iv = uv1[inside, 0].astype(int), uv1[inside, 1].astype(int)
    visible = np.abs(scene.depth(c1)[iv, iu] - d1[inside]) < 0.02 * d1[inside]  # not hidden in view 1
    assert visible.sum() > 5000
    col0 = img0.reshape(-1, 3)[inside][visible].astype(float)
    col1 = img1[iv[visible], iu[visible]].astype(float)
    diff = np.abs(col0 - col1).mean(axis=1)
    rng = np.random.default_rng(0)
    shuffled = np.abs(col0 - col1[rng.permutation(len(col1))]).mean(axis=1)
    assert np.median(diff) < 0.3 * np.median(shuffled)


def test_rotated_video_carries_display_rotation(tmp_path: Path) -> None:
    video = make_orbit_video(tmp_path / "portrait.mp4", n_frames=3, width=64, height=96, rotation=90)
    with av.open(str(video.path)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (96, 64)  # stored sideways, as a phone does
        assert frame.rotation == 90
        upright = np.rot90(frame.to_ndarray(format="rgb24"), k=1)
    assert _psnr(upright, SyntheticScene(0).render(video.cameras[0])) > 28


def test_black_video_is_uniform(tmp_path: Path) -> None:
    frames = _decode(make_black_video(tmp_path / "black.mp4", n_frames=5))
    assert len(frames) == 5
    assert max(int(f.max()) for f in frames) <= 20


def test_blur_and_brightness_options(tmp_path: Path) -> None:
    video = make_orbit_video(tmp_path / "dark.mp4", n_frames=6, width=96, height=64, brightness=0.2,
                             blur_frames=[2])
    frames = _decode(video.path)
    assert np.mean(frames[0]) < 40

    def sharpness(img: np.ndarray) -> float:
        g = img.astype(float).mean(axis=2)
        return float(np.var(np.diff(g, axis=1)))

    assert sharpness(frames[2]) < 0.5 * min(sharpness(frames[1]), sharpness(frames[3]))
