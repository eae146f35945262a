"""The ``.sog`` the pipeline writes, read back by PlayCanvas' own splat-transform (npm, run by node), which
converts it to a ``.ply`` that plyfile reads: every attribute must come back within the format's quantisation.

Needs ``node`` and the web app's npm packages (``make web``; ``make test`` builds them): splat-transform is a
pinned devDependency of ``vidscene/web``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData

from tests.support.gaussians import (
    Sample,
    assert_full_disk_leaves_nothing,
    random_gaussians,
    rotation_alignment,
    sigmoid,
)
from vidscene.pipeline.export.compressed_ply import morton_order
from vidscene.pipeline.export.sog import Layout, write_sog

ROOT = Path(__file__).resolve().parents[2]
SPLAT_TRANSFORM = ROOT / "vidscene" / "web" / "node_modules" / "@playcanvas" / "splat-transform" / "bin" / "cli.mjs"
NODE = shutil.which("node")
needs_reader = pytest.mark.skipif(NODE is None or not SPLAT_TRANSFORM.is_file(),
                                  reason="needs node and vidscene/web/node_modules (make web)")


def with_materials(g: Sample, materials: int = 12, seed: int = 0) -> Sample:
    """Higher SH bands as a scene has them: a few distinct looks, each with a little noise (random values
    everywhere would only measure how well a palette clusters noise)."""
    rng = np.random.default_rng(seed)
    looks = rng.uniform(-0.8, 0.8, size=(materials, *g.sh.shape[1:]))
    sh = g.sh.copy()
    sh[:, 1:, :] = (looks[rng.integers(0, materials, len(sh))] + rng.normal(scale=0.005, size=sh.shape))[:, 1:, :]
    return Sample(g.means, g.log_scales, g.quats, g.opacity_logits, sh.astype(np.float32))


def read_back(path: Path, tmp_path: Path) -> np.ndarray:
    assert NODE is not None
    out = tmp_path / "from-splat-transform.ply"
    done = subprocess.run([NODE, str(SPLAT_TRANSFORM), "-w", str(path), str(out)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return np.asarray(PlyData.read(str(out))["vertex"].data)


@needs_reader
@pytest.mark.parametrize("sh_degree", [3, 0])
def test_splat_transform_reads_what_was_written(tmp_path: Path, sh_degree: int) -> None:
    g = with_materials(random_gaussians(3000, sh_degree=3))
    path = tmp_path / "scene.sog"
    write_sog(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh, sh_degree=sh_degree)
    v = read_back(path, tmp_path)
    e = g.take(morton_order(g.means))  # the file's order
    assert len(v) == 3000

    means = np.stack([v["x"], v["y"], v["z"]], axis=1)
    # 16 bits of log(|x| + 1) over the range: an error growing with the distance from the origin.
    np.testing.assert_array_less(np.abs(means - e.means), 1e-4 * (np.abs(e.means) + 1.0) + 1e-6)
    dc = np.stack([v[f"f_dc_{c}"] for c in range(3)], axis=1)
    assert np.abs(dc - e.sh[:, 0, :]).max() < 0.02  # a 256-entry codebook over -1.7..1.7
    assert np.abs(sigmoid(v["opacity"]) - sigmoid(e.opacity_logits)).max() < 0.6 / 255 + 1e-6
    scales = np.stack([v[f"scale_{c}"] for c in range(3)], axis=1)
    assert np.abs(scales - e.log_scales).max() < 0.03  # a codebook over -7..0
    quats = np.stack([v[f"rot_{c}"] for c in range(4)], axis=1)
    assert rotation_alignment(quats, e.quats).min() > 0.999

    rest_names = [n for n in v.dtype.names or () if n.startswith("f_rest_")]
    assert len(rest_names) == 3 * ((sh_degree + 1) ** 2 - 1)
    if sh_degree:
        rest = np.stack([v[n] for n in rest_names], axis=1).reshape(-1, 3, 15)  # the PLY's channel-major order
        written = np.transpose(e.sh[:, 1:, :], (0, 2, 1))
        assert np.abs(rest - written).max() < 0.05  # palette of the 12 looks, then a 256-entry codebook


def test_sog_layout(tmp_path: Path) -> None:
    """What the format fixes beyond the reader's tolerance: image sizes, meta entries, stored zip members."""
    g = random_gaussians(1001, sh_degree=1)
    path = tmp_path / "scene.sog"
    write_sog(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "meta.json"
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
        meta = json.loads(zf.read("meta.json"))
        with Image.open(BytesIO(zf.read("means_l.webp"))) as im:
            assert im.size == (Layout(1001).width, Layout(1001).height) == (32, 32)
            assert im.mode == "RGBA"
    assert meta["version"] == 2 and meta["count"] == 1001
    assert meta["shN"]["bands"] == 1 and len(meta["shN"]["codebook"]) == 256
    assert len(meta["scales"]["codebook"]) == len(meta["sh0"]["codebook"]) == 256
    assert sorted(names) == sorted(["meta.json", "means_l.webp", "means_u.webp", "quats.webp", "scales.webp",
                                    "sh0.webp", "shN_centroids.webp", "shN_labels.webp"])
    first = path.read_bytes()
    write_sog(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    assert path.read_bytes() == first  # the same gaussians give the same file


def test_full_disk_leaves_no_sog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_full_disk_leaves_nothing(write_sog, tmp_path / "out" / "scene.sog", monkeypatch)
