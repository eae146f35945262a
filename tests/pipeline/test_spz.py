"""The ``.spz`` writer, read back by gsply (an independent reader) and checked byte by byte where the layout is
easy to get subtly wrong (header, rotations)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import gsply
import numpy as np
import pytest

from tests.support.gaussians import (
    assert_full_disk_leaves_nothing,
    random_gaussians,
    rotation_alignment,
    sigmoid,
)
from vidscene.pipeline.export.spz import pack_rotations, spz_payload, write_spz

SH_C0 = 0.28209479177387814


def _header(path: Path) -> tuple[int, ...]:
    return struct.unpack("<IIIBBBB", gzip.decompress(path.read_bytes())[:16])


def test_roundtrip_within_the_format_quantisation(tmp_path: Path) -> None:
    g = random_gaussians(3000, sh_degree=3)
    path = tmp_path / "scene.spz"
    write_spz(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # a gzip stream, as versions 1-3 are
    assert _header(path) == (0x5053474E, 3, 3000, 3, 12, 0, 0)
    assert not list(tmp_path.glob("*.part"))

    back = gsply.read_spz(path)  # same order: SPZ keeps the gaussians as given
    np.testing.assert_allclose(back.means, g.means, rtol=0, atol=0.5 / 4096 + 1e-6)
    np.testing.assert_allclose(back.scales, g.log_scales, rtol=0, atol=0.5 / 16 + 1e-5)
    assert rotation_alignment(back.quats, g.quats).min() > 0.99995  # smallest three, 9 bits a component
    np.testing.assert_allclose(sigmoid(back.opacities), sigmoid(g.opacity_logits), rtol=0, atol=0.5 / 255 + 1e-4)
    # Colours: u8 of DC * 0.15 (the format's scale), so a step is 1 / (0.15 * 255) in DC units.
    np.testing.assert_allclose(back.sh0, g.sh[:, 0, :], rtol=0, atol=0.5 / (0.15 * 255) + 1e-5)
    assert back.shN.shape == (3000, 15, 3)
    # Higher SH: 1/128 steps rounded to buckets of 8 (degree 1) and 16 (degrees 2, 3), plus half a step.
    np.testing.assert_allclose(back.shN[:, :3], g.sh[:, 1:4], rtol=0, atol=4.5 / 128 + 1e-6)
    np.testing.assert_allclose(back.shN[:, 3:], g.sh[:, 4:], rtol=0, atol=8.5 / 128 + 1e-6)


def test_sh_stops_at_the_trained_degree(tmp_path: Path) -> None:
    g = random_gaussians(50, sh_degree=3)
    for degree, rest in ((0, 0), (1, 3), (2, 8)):
        path = tmp_path / f"d{degree}.spz"
        write_spz(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh, sh_degree=degree)
        assert _header(path)[3] == degree
        raw = gzip.decompress(path.read_bytes())
        assert len(raw) == 16 + 50 * (9 + 1 + 3 + 3 + 4 + 3 * rest)
        back = gsply.read_spz(path)
        if rest:
            np.testing.assert_allclose(back.shN, g.sh[:, 1:1 + rest], rtol=0, atol=8.5 / 128 + 1e-6)
    with pytest.raises(ValueError, match="SH degree 0 to 3"):
        spz_payload(g.means, g.log_scales, g.quats, g.opacity_logits, g.sh, sh_degree=4)
    with pytest.raises(ValueError, match="SH degree 0 to 1"):
        spz_payload(g.means, g.log_scales, g.quats, g.opacity_logits, g.sh[:, :4], sh_degree=2)


def test_far_gaussians_lower_the_fixed_point_precision_only_as_far_as_needed(tmp_path: Path) -> None:
    g = random_gaussians(20)
    g.means[0] = [3000.0, -1.0, 0.5]  # needs 12 integer bits + sign: 11 fractional bits are left
    write_spz(tmp_path / "a.spz", g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    assert _header(tmp_path / "a.spz")[4] == 11
    np.testing.assert_allclose(gsply.read_spz(tmp_path / "a.spz").means, g.means, atol=0.5 / 2048 + 1e-4)

    g.means[0] = [1e6, -1e6, np.inf]  # a stray floater: clamped to the box at the floor of 8 bits
    write_spz(tmp_path / "b.spz", g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    assert _header(tmp_path / "b.spz")[4] == 8
    back = gsply.read_spz(tmp_path / "b.spz").means
    edge = (2**23 - 1) / 256
    np.testing.assert_allclose(back[0], [edge, -edge, 0.0])  # non-finite becomes 0 rather than garbage
    np.testing.assert_allclose(back[1:], g.means[1:], atol=0.5 / 256 + 1e-6)


def test_rotation_codes_follow_the_reference_layout() -> None:
    """xyzw order; largest index in the top 2 bits; the others in index order, the last in the low 10 bits."""
    codes = pack_rotations(np.array([
        [1.0, 0.0, 0.0, 0.0],  # identity: w (index 3) largest, the rest 0
        [-2.0, 0.0, 0.0, 0.0],  # unnormalised and negative: the same rotation
        [0.6, 0.8, 0.0, 0.0],  # x largest (index 0); then y, z, w = 0.6 in the low bits
        [-0.6, -0.8, 0.0, 0.0],  # -q: flipped so the largest is positive, so the same code
        [0.6, 0.0, 0.8, 0.0],  # y largest (1); x = 0, z = 0, w = 0.6
        [0.6, 0.0, 0.0, -0.8],  # z largest, negative: flipped, so w = -0.6 carries the sign bit
        [0.0, 0.0, 0.0, 0.0],  # degenerate: written as the identity
    ]))
    w06 = round(0.6 / np.sqrt(0.5) * 511)
    assert codes.tolist() == [3 << 30, 3 << 30, w06, w06, (1 << 30) | w06, (2 << 30) | (1 << 9) | w06, 3 << 30]


def test_opacity_colour_and_scale_bytes() -> None:
    n = 4
    logits = np.array([-50.0, 0.0, 50.0, np.nan])
    sh = np.zeros((n, 1, 3), np.float32)
    sh[:, 0, 0] = [0.0, 1.0, -10.0, 10.0]  # grey, a little brighter, clamped low, clamped high
    log_scales = np.array([[-10.0, 5.9375, -20.0]] * n, np.float32)
    raw = spz_payload(np.zeros((n, 3), np.float32), log_scales, np.tile([1.0, 0, 0, 0], (n, 1)), logits, sh)
    alphas = raw[16 + 9 * n:16 + 10 * n]
    colours = raw[16 + 10 * n:16 + 13 * n]
    scales = raw[16 + 13 * n:16 + 16 * n]
    assert list(alphas) == [0, 128, 255, 0]
    assert list(colours[0::3]) == [128, 166, 0, 255]  # DC * 0.15 * 255 + 127.5, rounded to even
    assert list(scales[:3]) == [0, 255, 0]  # (log + 10) * 16, clamped


def test_full_disk_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_full_disk_leaves_nothing(write_spz, tmp_path / "x.spz", monkeypatch)
