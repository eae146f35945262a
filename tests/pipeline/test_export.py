"""Output writers (.splat, .ply, .mp4), the smooth camera path, and the shared image helpers."""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from plyfile import PlyData

from tests.support.synthetic import look_at_rotation
from vidscene.pipeline import export as export_pkg
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.errors import StorageFullError
from vidscene.pipeline.export.camera_path import (
    path_video_size,
    quat_to_rotation,
    rotation_to_quat,
    smooth_camera_path,
)
from vidscene.pipeline.export.ply import gaussian_ply_properties, write_gaussian_ply, write_point_ply
from vidscene.pipeline.export.splat import write_splat
from vidscene.pipeline.export.video import write_mp4
from vidscene.pipeline.images import (
    load_training_images,
    psnr,
    split_train_eval,
    ssim,
    ssim_map,
    ssim_mean,
)

SH_C0 = 0.28209479177387814


def _gaussians(n: int, k: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "means": rng.normal(size=(n, 3)).astype(np.float32),
        "log_scales": rng.uniform(-4, -1, size=(n, 3)).astype(np.float32),
        "quats": rng.normal(size=(n, 4)).astype(np.float32),
        "opacity_logits": rng.normal(size=n).astype(np.float32),
        "sh": rng.normal(scale=0.5, size=(n, k, 3)).astype(np.float32),
    }


# -- .splat -------------------------------------------------------------------------------------------------------

def test_splat_layout_values_and_sort_order(tmp_path: Path) -> None:
    g = _gaussians(5, 1)
    # Make one gaussian clearly the most important (big and opaque) and one the least.
    g["log_scales"][3] = [0.0, 0.0, 0.0]
    g["opacity_logits"][3] = 5.0
    g["log_scales"][1] = [-6.0, -6.0, -6.0]
    path = tmp_path / "out.splat"
    write_splat(path, g["means"], g["log_scales"], g["quats"], g["opacity_logits"], g["sh"][:, 0, :])
    data = path.read_bytes()
    assert len(data) == 5 * 32

    importance = np.exp(g["log_scales"].astype(np.float64).sum(1)) / (1 + np.exp(-g["opacity_logits"]))
    expected_order = np.argsort(-importance)
    assert expected_order[0] == 3
    assert expected_order[-1] == 1
    for rank, i in enumerate(expected_order):
        rec = data[rank * 32:(rank + 1) * 32]
        pos = struct.unpack("<3f", rec[0:12])
        scale = struct.unpack("<3f", rec[12:24])
        rgba = tuple(rec[24:28])
        rot = tuple(rec[28:32])
        np.testing.assert_allclose(pos, g["means"][i], rtol=1e-6)
        np.testing.assert_allclose(scale, np.exp(g["log_scales"][i]), rtol=1e-5)
        rgb = np.clip((0.5 + SH_C0 * g["sh"][i, 0]) * 255, 0, 255).astype(np.uint8)
        alpha = int(np.clip(255 / (1 + np.exp(-g["opacity_logits"][i])), 0, 255))
        assert rgba[:3] == tuple(int(v) for v in rgb)
        assert abs(rgba[3] - alpha) <= 1
        q = g["quats"][i] / np.linalg.norm(g["quats"][i])
        expected_rot = np.clip(q * 128 + 128, 0, 255).astype(np.uint8)
        assert all(abs(int(a) - int(b)) <= 1 for a, b in zip(rot, expected_rot, strict=True))


def test_splat_quaternion_is_wxyz_biased_by_128(tmp_path: Path) -> None:
    path = tmp_path / "q.splat"
    quats = np.array([[2.0, 0, 0, 0], [0, 0, -3.0, 0]], dtype=np.float32)  # unnormalised on purpose
    write_splat(path, np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32), quats,
                np.array([3.0, 2.0], np.float32), np.zeros((2, 3), np.float32))
    data = path.read_bytes()
    assert tuple(data[28:32]) == (255, 128, 128, 128)  # w = 1 -> 256 clipped to 255
    assert tuple(data[60:64]) == (128, 128, 0, 128)  # y = -1 -> 0
    assert tuple(data[24:27]) == (127, 127, 127)  # DC 0 -> 0.5 grey, truncated like antimatter15's converter


# -- .ply ---------------------------------------------------------------------------------------------------------

def test_gaussian_ply_header_order_and_values(tmp_path: Path) -> None:
    g = _gaussians(7, 4)  # SH degree 1: 3 "rest" coefficients per channel
    path = tmp_path / "out.ply"
    write_gaussian_ply(path, g["means"], g["log_scales"], g["quats"], g["opacity_logits"], g["sh"])
    header = path.read_bytes().split(b"end_header\n")[0].decode()
    assert "format binary_little_endian 1.0" in header
    assert "element vertex 7" in header

    ply = PlyData.read(str(path))
    v = ply["vertex"]
    names = [p.name for p in v.properties]
    assert names == gaussian_ply_properties(4)
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[9:18] == [f"f_rest_{i}" for i in range(9)]
    assert names[18:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert all(p.val_dtype in ("f4", "float32", "<f4") for p in v.properties)
    assert v.count == 7

    np.testing.assert_allclose(np.stack([v["x"], v["y"], v["z"]], 1), g["means"])
    np.testing.assert_array_equal(v["nx"], 0)
    np.testing.assert_allclose(np.stack([v[f"f_dc_{c}"] for c in range(3)], 1), g["sh"][:, 0, :])
    # Channel-major: f_rest_0..2 are red bands 1..3, f_rest_3..5 green, f_rest_6..8 blue.
    for c in range(3):
        for b in range(3):
            np.testing.assert_allclose(v[f"f_rest_{c * 3 + b}"], g["sh"][:, 1 + b, c])
    np.testing.assert_allclose(v["opacity"], g["opacity_logits"])
    np.testing.assert_allclose(np.stack([v[f"scale_{i}"] for i in range(3)], 1), g["log_scales"])
    np.testing.assert_allclose(np.stack([v[f"rot_{i}"] for i in range(4)], 1), g["quats"])


def test_gaussian_ply_degree3_has_45_rest_coefficients(tmp_path: Path) -> None:
    g = _gaussians(2, 16)
    path = tmp_path / "d3.ply"
    write_gaussian_ply(path, g["means"], g["log_scales"], g["quats"], g["opacity_logits"], g["sh"])
    names = [p.name for p in PlyData.read(str(path))["vertex"].properties]
    assert len(names) == 62
    assert names[-9] == "f_rest_44"


def test_point_ply_roundtrip(tmp_path: Path) -> None:
    pts = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    cols = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 8, 7]], np.uint8)
    write_point_ply(tmp_path / "p.ply", pts, cols)
    v = PlyData.read(str(tmp_path / "p.ply"))["vertex"]
    np.testing.assert_allclose(np.stack([v["x"], v["y"], v["z"]], 1), pts)
    np.testing.assert_array_equal(np.stack([v["red"], v["green"], v["blue"]], 1), cols)


def test_full_disk_raises_storage_full_and_leaves_nothing(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    class Usage:
        total, used, free = 10**9, 10**9, 1024

    monkeypatch.setattr("vidscene.pipeline.export.shutil.disk_usage", lambda _p: Usage())
    g = _gaussians(3, 1)
    path = tmp_path / "x.splat"
    with pytest.raises(StorageFullError):
        write_splat(path, g["means"], g["log_scales"], g["quats"], g["opacity_logits"], g["sh"][:, 0, :])
    assert list(tmp_path.iterdir()) == []


def test_enospc_while_writing_becomes_storage_full(tmp_path: Path) -> None:
    import errno

    target = tmp_path / "y.bin"

    def write() -> None:
        with export_pkg.atomic_write_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageFullError):
        write()
    assert list(tmp_path.iterdir()) == []


# -- .mp4 ---------------------------------------------------------------------------------------------------------

def test_path_video_is_at_the_frames_working_resolution() -> None:
    """The frames' own size (384x288 frames of a standard run), capped by the preset, never upscaled, even."""
    def cams(w: int, h: int) -> list[Camera]:
        return [Camera(w, h, 300.0, 300.0, w / 2, h / 2, np.eye(3), np.zeros(3))]

    assert path_video_size(cams(384, 288), 640) == (384, 288)
    assert path_video_size(cams(384, 288), 320) == (320, 240)
    assert path_video_size(cams(288, 512), 320) == (180, 320)  # portrait keeps its aspect
    assert path_video_size(cams(321, 241), 1280) == (320, 240)  # even for 4:2:0


def test_mp4_decodes_with_frame_count_and_even_size(tmp_path: Path) -> None:
    frames = [np.full((31, 45, 3), i * 20, np.uint8) for i in range(9)]
    path = tmp_path / "v.mp4"
    write_mp4(iter(frames), path, fps=12)
    assert not (tmp_path / "v.mp4.part").exists()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 12
    assert len(decoded) == 9
    assert decoded[0].shape == (30, 44, 3)
    assert abs(float(decoded[5].mean()) - 100) < 3
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart


def test_mp4_accepts_float_frames(tmp_path: Path) -> None:
    write_mp4([np.full((16, 16, 3), 0.5, np.float32)] * 3, tmp_path / "f.mp4", fps=5)
    with av.open(str(tmp_path / "f.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert abs(float(frame.mean()) - 128) < 3


def test_mp4_failure_leaves_no_file(tmp_path: Path) -> None:
    def frames() -> Iterator[np.ndarray]:
        yield np.zeros((16, 16, 3), np.uint8)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_mp4(frames(), tmp_path / "bad.mp4", fps=5)
    with pytest.raises(ValueError, match="no frames"):
        write_mp4([], tmp_path / "empty.mp4", fps=5)
    assert list(tmp_path.iterdir()) == []


# -- camera path --------------------------------------------------------------------------------------------------

def _look_at(center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera (R, t) of a camera at ``center`` looking at the origin."""
    R = look_at_rotation(np.asarray(center, dtype=np.float64), np.zeros(3))
    return R, -R @ center


def _orbit(n: int, jitter: float = 0.0, seed: int = 0) -> list[Camera]:
    rng = np.random.default_rng(seed)
    cams = []
    for i in range(n):
        a = 1.5 * math.pi * i / max(n - 1, 1)
        c = np.array([2 * math.cos(a), -0.5, 2 * math.sin(a)]) + rng.normal(scale=jitter, size=3)
        R, t = _look_at(c)
        cams.append(Camera(320, 240, 300.0, 300.0, 160.0, 120.0, R, t, f"{i:05d}.png"))
    return cams


def test_camera_path_is_smooth_and_follows_the_capture() -> None:
    cams = _orbit(60, jitter=0.03)
    path = smooth_camera_path(cams, 200)
    assert len(path) == 200
    centers = np.stack([c.center for c in path])
    inputs = np.stack([c.center for c in cams])
    # Passes near the input cameras: every path point is close to some capture position and vice versa.
    d = np.linalg.norm(centers[:, None] - inputs[None], axis=2)
    assert d.min(axis=1).max() < 0.15
    assert d.min(axis=0).max() < 0.15
    np.testing.assert_allclose(centers[0], inputs[:3].mean(0), atol=0.15)
    # Smooth: accelerations are small next to the speed; the jittery input is much rougher.
    step = np.linalg.norm(np.diff(centers, axis=0), axis=1).mean()
    accel = np.linalg.norm(np.diff(centers, 2, axis=0), axis=1)
    assert accel.max() < 0.2 * step
    raw_step = np.linalg.norm(np.diff(inputs, axis=0), axis=1).mean()
    raw = np.linalg.norm(np.diff(inputs, 2, axis=0), axis=1).max() / raw_step
    assert raw > 3 * accel.max() / step
    for cam in path:
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(cam.R) == pytest.approx(1.0)
        assert np.linalg.norm(rotation_to_quat(cam.R)) == pytest.approx(1.0)
        assert (cam.width, cam.height) == (320, 240)
    # Orientation changes smoothly too: consecutive frames rotate by a small, steady angle.
    angles = [np.degrees(np.arccos(np.clip((np.trace(a.R @ b.R.T) - 1) / 2, -1, 1)))
              for a, b in itertools.pairwise(path)]
    assert max(angles) < 3 * np.median(angles) + 0.2


def test_camera_path_one_and_two_cameras_and_resizing() -> None:
    one = smooth_camera_path(_orbit(1), 5, width=160)
    assert len(one) == 5
    assert (one[0].width, one[0].height) == (160, 120)
    assert one[0].fx == pytest.approx(150.0)
    np.testing.assert_allclose(one[4].center, one[0].center)

    two = _orbit(2)
    path = smooth_camera_path(two, 11, height=60)
    assert (path[0].width, path[0].height) == (80, 60)
    np.testing.assert_allclose(path[0].center, two[0].center, atol=1e-9)
    np.testing.assert_allclose(path[-1].center, two[1].center, atol=1e-9)
    np.testing.assert_allclose(path[5].center, (two[0].center + two[1].center) / 2, atol=1e-9)
    with pytest.raises(ValueError):
        smooth_camera_path([], 3)


def test_quaternion_roundtrip() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        R = quat_to_rotation(q)
        q2 = rotation_to_quat(R)
        np.testing.assert_allclose(quat_to_rotation(q2), R, atol=1e-9)


# -- images and metrics -------------------------------------------------------------------------------------------

def test_load_training_images_scales_cameras_and_pixels(tmp_path: Path) -> None:
    cams = _orbit(3)
    for i, cam in enumerate(cams):
        arr = np.zeros((240, 320, 3), np.uint8)
        arr[:, :160] = 200 + i
        Image.fromarray(arr).save(tmp_path / cam.image_name)
    scene = SceneData(cameras=cams, images_dir=tmp_path, points=np.zeros((0, 3), np.float32),
                      colors=np.zeros((0, 3), np.uint8))
    out_cams, images = load_training_images(scene, 80)
    assert images.shape == (3, 60, 80, 3)
    assert images.dtype == torch.float32
    assert (out_cams[0].width, out_cams[0].height) == (80, 60)
    assert out_cams[0].fx == pytest.approx(75.0)
    assert out_cams[0].cx == pytest.approx(40.0)
    assert float(images[2, 10, 5, 0]) == pytest.approx(202 / 255)
    assert float(images[0, 10, 70, 0]) == 0.0
    _, full = load_training_images(scene, 1000)  # never upscaled
    assert full.shape == (3, 240, 320, 3)
    # The decoded values as they are, when asked for bytes.
    byte_cams, as_bytes = load_training_images(scene, 80, dtype=torch.uint8)
    assert as_bytes.shape == (3, 60, 80, 3) and as_bytes.dtype == torch.uint8
    assert (byte_cams[1].width, byte_cams[1].height) == (80, 60)
    assert int(as_bytes[2, 10, 5, 0]) == 202


def test_split_train_eval() -> None:
    train, held = split_train_eval(24, 8)
    assert held == [4, 12, 20]
    assert sorted(train + held) == list(range(24))
    assert split_train_eval(10, 8) == (list(range(10)), [])


def test_metrics() -> None:
    a = torch.rand(32, 40, 3, generator=torch.Generator().manual_seed(0))
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-5)
    b = (a + 0.1).clamp(0, 1)
    assert 15 < psnr(a, b) < 25
    assert ssim(a, torch.rand_like(a)) < 0.2


def test_fused_ssim_matches_reference_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 20, 27, generator=gen)
    start = (0.6 * target + 0.4 * torch.rand(1, 3, 20, 27, generator=gen)).requires_grad_(True)
    fused = ssim_mean(start, target)
    fused.backward()
    assert start.grad is not None
    reference_input = start.detach().double().requires_grad_(True)
    reference = ssim_map(reference_input, target.double()).mean()
    reference.backward()
    assert reference_input.grad is not None
    assert float(fused.detach()) == pytest.approx(float(reference.detach()), abs=1e-6)
    torch.testing.assert_close(start.grad.double(), reference_input.grad, atol=1e-8, rtol=1e-4)
