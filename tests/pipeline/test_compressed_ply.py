"""The compressed PLY writer, read back by gsply (an independent reader) and by plyfile for the layout."""

from __future__ import annotations

from pathlib import Path

import gsply
import numpy as np
import pytest
from plyfile import PlyData

from tests.support.gaussians import (
    assert_full_disk_leaves_nothing,
    random_gaussians,
    rotation_alignment,
    sigmoid,
)
from vidscene.pipeline.export.compressed_ply import (
    CHUNK_PROPERTIES,
    VERTEX_PROPERTIES,
    morton_order,
    pack_rotations,
    write_compressed_ply,
)

SH_C0 = 0.28209479177387814


def _per_gaussian(chunk_values: np.ndarray, n: int) -> np.ndarray:
    """A per-chunk row repeated for each of the chunk's 256 gaussians."""
    return np.repeat(chunk_values, 256, axis=0)[:n]


def test_roundtrip_within_each_chunks_quantisation(tmp_path: Path) -> None:
    n = 3000  # 11 full chunks and a partial one
    g = random_gaussians(n, sh_degree=3)
    path = tmp_path / "scene.compressed.ply"
    write_compressed_ply(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    assert not list(tmp_path.glob("*.part"))

    ply = PlyData.read(str(path))
    assert [e.name for e in ply.elements] == ["chunk", "vertex", "sh"]
    assert [p.name for p in ply["chunk"].properties] == list(CHUNK_PROPERTIES)
    assert {p.val_dtype for p in ply["chunk"].properties} == {"f4"}
    assert [p.name for p in ply["vertex"].properties] == list(VERTEX_PROPERTIES)
    assert {p.val_dtype for p in ply["vertex"].properties} == {"u4"}
    assert [p.name for p in ply["sh"].properties] == [f"f_rest_{i}" for i in range(45)]
    assert {p.val_dtype for p in ply["sh"].properties} == {"u1"}
    assert (ply["chunk"].count, ply["vertex"].count, ply["sh"].count) == (12, n, n)

    e = g.take(morton_order(g.means))  # what was written, in file order
    chunk = {name: np.asarray(ply["chunk"][name], dtype=np.float64) for name in CHUNK_PROPERTIES}
    padded = np.concatenate([e.means, np.repeat(e.means[-1:], 12 * 256 - n, axis=0)]).reshape(12, 256, 3)
    np.testing.assert_array_equal(chunk["min_x"], padded[:, :, 0].min(axis=1))  # the chunk's own bounds
    np.testing.assert_array_equal(chunk["max_z"], padded[:, :, 2].max(axis=1))

    back = gsply.plyread(str(path))
    for axis, (name, bits) in enumerate((("x", 11), ("y", 10), ("z", 11))):
        span = _per_gaussian(chunk[f"max_{name}"] - chunk[f"min_{name}"], n)
        assert (np.abs(back.means[:, axis] - e.means[:, axis]) <= span / (2**bits - 1) / 2 + 1e-5).all()
        span = _per_gaussian(chunk[f"max_scale_{name}"] - chunk[f"min_scale_{name}"], n)
        assert (np.abs(back.scales[:, axis] - e.log_scales[:, axis]) <= span / (2**bits - 1) / 2 + 1e-5).all()
    for c, name in enumerate("rgb"):
        span = _per_gaussian(chunk[f"max_{name}"] - chunk[f"min_{name}"], n)
        rgb = 0.5 + SH_C0 * back.sh0[:, c]
        assert (np.abs(rgb - (0.5 + SH_C0 * e.sh[:, 0, c])) <= span / 255 / 2 + 1e-5).all()
    np.testing.assert_allclose(sigmoid(back.opacities), sigmoid(e.opacity_logits), rtol=0, atol=0.5 / 255 + 1e-4)
    assert rotation_alignment(back.quats, e.quats).min() > 0.9999  # smallest three, 10 bits a component
    assert back.shN.shape == (n, 15, 3)
    np.testing.assert_allclose(back.shN, e.sh[:, 1:], rtol=0, atol=1 / 64 + 1e-6)  # -4..4 in 1/32 steps


def test_morton_order_makes_chunks_compact() -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, size=(256 * 64, 3))
    order = morton_order(points)
    assert sorted(order.tolist()) == list(range(len(points)))

    def mean_chunk_extent(p: np.ndarray) -> float:
        chunks = p.reshape(-1, 256, 3)
        return float(np.linalg.norm(chunks.max(axis=1) - chunks.min(axis=1), axis=1).mean())

    assert mean_chunk_extent(points[order]) < 0.4 * mean_chunk_extent(points)
    assert morton_order(np.zeros((0, 3))).shape == (0,)
    assert morton_order(np.full((5, 3), np.nan)).tolist() == [0, 1, 2, 3, 4]  # degenerate: stable, no error


def test_sh_element_follows_the_trained_degree(tmp_path: Path) -> None:
    g = random_gaussians(40, sh_degree=3)
    write_compressed_ply(tmp_path / "d0.compressed.ply", g.means, g.log_scales, g.quats, g.opacity_logits, g.sh,
                         sh_degree=0)
    assert [e.name for e in PlyData.read(str(tmp_path / "d0.compressed.ply")).elements] == ["chunk", "vertex"]
    assert gsply.plyread(str(tmp_path / "d0.compressed.ply")).shN.shape[1] == 0
    write_compressed_ply(tmp_path / "d1.compressed.ply", g.means, g.log_scales, g.quats, g.opacity_logits, g.sh,
                         sh_degree=1)
    assert len(PlyData.read(str(tmp_path / "d1.compressed.ply"))["sh"].properties) == 9
    with pytest.raises(ValueError, match="SH degree 0 to 3"):
        write_compressed_ply(tmp_path / "x.ply", g.means, g.log_scales, g.quats, g.opacity_logits, g.sh,
                             sh_degree=4)


def test_one_gaussian_is_its_own_chunk(tmp_path: Path) -> None:
    g = random_gaussians(1, sh_degree=1)
    path = tmp_path / "one.compressed.ply"
    write_compressed_ply(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    back = gsply.plyread(str(path))
    np.testing.assert_allclose(back.means, g.means, atol=1e-6)  # an empty range reads back as its minimum
    np.testing.assert_allclose(back.scales, g.log_scales, atol=1e-6)
    np.testing.assert_allclose(back.sh0, g.sh[:, 0], atol=1e-5)


def test_rotation_codes_follow_the_reference_layout() -> None:
    """rot_0..3 (w, x, y, z) order; largest index in the top 2 bits; then the others, 10 bits of q/sqrt(2)+0.5."""
    mid = 512  # 0.5 * 1023 rounded
    w06 = round((0.6 * np.sqrt(0.5) + 0.5) * 1023)
    codes = pack_rotations(np.array([[2.0, 0, 0, 0], [0, 0, -1.0, 0], [0.6, 0, 0, 0.8], [-0.6, 0, 0, -0.8]]))
    assert codes.tolist() == [
        (mid << 20) | (mid << 10) | mid,  # identity: w largest (index 0)
        (2 << 30) | (mid << 20) | (mid << 10) | mid,  # y = -1 flipped to +1: index 2
        (3 << 30) | (w06 << 20) | (mid << 10) | mid,  # z largest (index 3); then w, x, y
        (3 << 30) | (w06 << 20) | (mid << 10) | mid,  # -q: the same rotation, the same code
    ]


def test_full_disk_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_full_disk_leaves_nothing(write_compressed_ply, tmp_path / "x.compressed.ply", monkeypatch)
