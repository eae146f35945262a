"""Parse each output format back and check it is a real, usable file (not just non-empty bytes)."""

from __future__ import annotations

import io

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
