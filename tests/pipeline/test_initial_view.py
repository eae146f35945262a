"""The first capture camera as the viewer gets it: a point seen by the OpenCV camera at pixel (u, v) must be
at the same pixel in the three.js camera the web viewer builds from ``initial_view`` (three.js looks down
-z with +y up; the viewer turns the splats half a turn about x, ``vidscene/web/src/viewer/stage.ts``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.synthetic import look_at_rotation
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.export.initial_view import initial_view, write_initial_view
from vidscene.pipeline.export.splat import write_splat
from vidscene.pipeline.scene import SceneWork, export_iteration

# The viewer's `content.quaternion.set(1, 0, 0, 0)`: half a turn about x, applied to the splats.
VIEWER_CONTENT = np.diag([1.0, -1.0, -1.0])


def opencv_pixel(camera: Camera, point: np.ndarray) -> np.ndarray:
    p = camera.K @ (camera.R @ point + camera.t)
    return np.asarray(p[:2] / p[2])


def three_pixel(view: dict[str, Any], point: np.ndarray, width: int, height: int) -> np.ndarray:
    """What three.js does: ``camera.up = up; camera.position = eye; camera.lookAt(eye + forward)`` (its
    ``Matrix4.lookAt``), then a ``PerspectiveCamera(fov_y, aspect)`` projection to NDC and the viewport."""
    eye = VIEWER_CONTENT @ np.asarray(view["position"], dtype=np.float64)
    target = eye + VIEWER_CONTENT @ np.asarray(view["forward"], dtype=np.float64)
    up = VIEWER_CONTENT @ np.asarray(view["up"], dtype=np.float64)
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    p = np.stack([x, y, z]) @ (VIEWER_CONTENT @ point - eye)
    assert p[2] < 0, "three.js cameras see what lies along their -z"
    f = 1.0 / math.tan(math.radians(float(view["fov_y_degrees"])) / 2)
    ndc = np.array([f / float(view["aspect"]) * p[0] / -p[2], f * p[1] / -p[2]])
    return np.array([(ndc[0] + 1) / 2 * width, (1 - ndc[1]) / 2 * height])


def _camera(width: int = 320, height: int = 240, fy: float = 260.0) -> Camera:
    centre = np.array([0.7, -0.3, -1.4])
    R = look_at_rotation(centre, np.array([0.1, 0.2, 0.3]))
    roll = math.radians(12)  # a tilted phone: up is not world -y
    R = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]]) @ R
    return Camera(width=width, height=height, fx=fy, fy=fy, cx=width / 2, cy=height / 2, R=R, t=-R @ centre,
                  image_name="00003.png")


@pytest.mark.parametrize("size", [(320, 240), (180, 320)])  # landscape and portrait
def test_points_land_on_the_same_pixels_in_both_conventions(size: tuple[int, int]) -> None:
    camera = _camera(*size)
    view = initial_view(camera)
    assert view["aspect"] == pytest.approx(size[0] / size[1])
    assert np.dot(view["forward"], view["up"]) == pytest.approx(0, abs=1e-6)
    assert view["position"] == pytest.approx(camera.center.tolist(), abs=1e-6)
    rng = np.random.default_rng(3)
    for _ in range(20):
        # points inside the camera's view, 0.5-4 units in front of it
        pixel = rng.uniform([0, 0], size)
        depth = rng.uniform(0.5, 4.0)
        ray = np.linalg.inv(camera.K) @ np.array([pixel[0], pixel[1], 1.0])
        point = camera.R.T @ (ray * depth - camera.t)
        assert opencv_pixel(camera, point) == pytest.approx(pixel, abs=1e-6)
        assert three_pixel(view, point, *size) == pytest.approx(pixel, abs=1e-3)


def test_the_splat_file_keeps_the_frame_the_view_is_given_in(tmp_path: Path) -> None:
    """The exporters write the pipeline's world unchanged, so a splat at a known point is where the view
    says: dead centre for a point straight ahead."""
    camera = _camera()
    view = initial_view(camera)
    ahead = np.asarray(view["position"]) + 2.0 * np.asarray(view["forward"])
    path = tmp_path / "one.splat"
    write_splat(path, ahead[None].astype(np.float32), np.zeros((1, 3), np.float32),
                np.array([[1, 0, 0, 0]], np.float32), np.zeros(1, np.float32), np.zeros((1, 3), np.float32))
    stored = np.frombuffer(path.read_bytes()[:12], dtype="<f4")
    assert three_pixel(view, stored.astype(np.float64), 320, 240) == pytest.approx([160, 120], abs=1e-3)


def test_export_writes_the_first_capture_camera_once(tmp_path: Path) -> None:
    cameras = [_camera(), Camera(width=320, height=240, fx=200, fy=200, cx=160, cy=120, R=np.eye(3),
                                 t=np.zeros(3), image_name="00009.png")]
    out = tmp_path / "outputs" / "initial_view.json"
    assert write_initial_view(out, []) is None and not out.exists()
    write_initial_view(out, cameras)
    saved = json.loads(out.read_text())
    assert saved["image_name"] == "00003.png" and saved["frame"] == "splat"
    assert saved["fov_y_degrees"] == pytest.approx(2 * math.degrees(math.atan(120 / 260)), abs=1e-3)
    assert not list(out.parent.glob("*.part"))


def test_every_export_leaves_the_view_beside_the_outputs(tmp_path: Path) -> None:
    """Through the stage code (with no outputs asked for, so nothing heavy runs but the view)."""
    from vidscene.pipeline.presets import preset_config
    from vidscene.storage import Storage

    files = Storage(tmp_path).scene("s1")
    scene = SceneData(cameras=[_camera()], images_dir=tmp_path, points=np.zeros((0, 3), np.float32),
                      colors=np.zeros((0, 3), np.uint8))
    work = SceneWork(scene_id="s1", video=tmp_path / "v.mp4", files=files, training_mode="gaussian",
                     output_types=(), save_iterations=(1,), config=preset_config("preview"))
    files.metrics_dir.mkdir(parents=True)
    (files.metrics_dir / "1.json").write_text("{}")  # already measured: no evaluation either
    export_iteration(work, scene, 1, tmp_path / "missing.ckpt", lambda *a: None, lambda *a: None)
    assert files.read_initial_view() == json.loads(json.dumps(initial_view(_camera())))
