"""The output formats: small sample files of each (for seeding scenes without training), and checks that parse
a real output back as a usable file (not just non-empty bytes)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import torch
from plyfile import PlyData


def check_splat(data: bytes) -> int:
    assert len(data) > 0 and len(data) % 32 == 0
    rec = np.frombuffer(data, dtype=np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4),
                                              ("rot", "u1", 4)]))
    assert np.isfinite(rec["pos"]).all() and (rec["scale"] > 0).all() and np.isfinite(rec["scale"]).all()
    q = (rec["rot"].astype(np.float32) - 128) / 128
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=0.05)
    return len(rec)


def check_ply(data: bytes, *, gaussian: bool) -> int:
    ply = PlyData.read(io.BytesIO(data))
    vertex = ply["vertex"]
    names = {p.name for p in vertex.properties}
    expected = ({"x", "y", "z", "f_dc_0", "opacity", "scale_0", "rot_0"} if gaussian
                else {"x", "y", "z", "red", "green", "blue"})
    assert expected <= names, names
    assert vertex.count > 0
    assert np.isfinite(np.asarray(vertex["x"])).all()
    return int(vertex.count)


def check_mp4(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
    assert frames > 0
    return frames


def check_model(data: bytes) -> int:
    ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    assert isinstance(ckpt, dict) and int(ckpt["iteration"]) > 0
    return int(ckpt["iteration"])


def check_output(output_type: str, data: bytes, *, mode: str) -> int:
    if output_type == "splat_cloud":
        return check_splat(data)
    if output_type == "point_cloud":
        return check_ply(data, gaussian=mode == "gaussian")
    if output_type == "video":
        return check_mp4(data)
    if output_type == "model":
        return check_model(data)
    raise AssertionError(output_type)


def make_splat(n: int, seed: int = 0) -> bytes:
    """A real antimatter15 ``.splat``: a colourful ball of gaussians around the origin plus a floor.

    32 bytes per gaussian: position 3 x f32, scale 3 x f32, RGBA u8, rotation quaternion (w, x, y, z) as
    u8 ``q * 128 + 128``. Positions use the pipeline's world (-y up), so the floor is at +y.
    """
    rng = np.random.default_rng(seed)
    n_ball = n * 3 // 4
    n_floor = n - n_ball
    direction = rng.normal(size=(n_ball, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    ball = direction * rng.uniform(0.9, 1.0, size=(n_ball, 1))
    floor = np.column_stack([rng.uniform(-2.5, 2.5, n_floor), np.full(n_floor, 1.05), rng.uniform(-2.5, 2.5, n_floor)])
    position = np.concatenate([ball, floor]).astype(np.float32)
    scale = np.full((n, 3), 0.045, dtype=np.float32)
    scale[n_ball:, 1] = 0.005
    ball_rgb = np.clip(0.5 + 0.5 * direction, 0, 1) * 255
    checker = ((np.floor(floor[:, 0] * 2) + np.floor(floor[:, 2] * 2)) % 2)[:, None]
    floor_rgb = np.where(checker > 0, [[230, 230, 230]], [[60, 60, 70]])
    rgba = np.concatenate([np.concatenate([ball_rgb, floor_rgb]), np.full((n, 1), 235)], axis=1)
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    rec = np.empty(n, dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("q", "u1", 4)])
    rec["p"] = position
    rec["s"] = scale
    rec["c"] = np.clip(rgba, 0, 255).astype(np.uint8)
    rec["q"] = np.clip(quat * 128 + 128, 0, 255).astype(np.uint8)
    data = rec.tobytes()
    assert len(data) == 32 * n
    return data


def splat_as_spz(splat: bytes, path: Path) -> bytes:
    """The same gaussians as a ``.splat``, written by the pipeline's SPZ writer (SH degree 0, as the ``.splat``
    has no more), so a page can be checked on both formats of one scene."""
    from vidscene.pipeline.export.spz import write_spz

    rec = np.frombuffer(splat, dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("q", "u1", 4)])
    rgba = rec["c"].astype(np.float64) / 255
    alpha = np.clip(rgba[:, 3], 1 / 512, 1 - 1 / 512)
    sh_dc = (rgba[:, :3] - 0.5) / 0.28209479177387814  # the 3DGS colour of SH band 0
    write_spz(path, rec["p"].astype(np.float64), np.log(np.maximum(rec["s"].astype(np.float64), 1e-8)),
              (rec["q"].astype(np.float64) - 128) / 128, np.log(alpha / (1 - alpha)), sh_dc[:, None, :])
    return path.read_bytes()


def make_point_ply(n: int, seed: int = 1) -> bytes:
    """A plain coloured point cloud PLY (what a TensoRF scene exports), not gaussians."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    colors = np.clip((0.5 + 0.5 * pts) * 255, 0, 255).astype(np.uint8)
    rec = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    rec["r"], rec["g"], rec["b"] = colors[:, 0], colors[:, 1], colors[:, 2]
    header = "\n".join([
        "ply", "format binary_little_endian 1.0", f"element vertex {n}",
        "property float x", "property float y", "property float z",
        "property uchar red", "property uchar green", "property uchar blue", "end_header",
    ]) + "\n"
    return header.encode("ascii") + rec.tobytes()


def make_jpeg(path: Path) -> None:
    from PIL import Image

    yy, xx = np.mgrid[0:180, 0:320]
    img = np.stack([xx * 255 // 320, yy * 255 // 180, np.full_like(xx, 160)], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=85)
