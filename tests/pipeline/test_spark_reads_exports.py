"""The web viewer's own Spark build reads the ``.spz`` and compressed PLY the pipeline writes.

Spark's decoder runs in Node on each file and Spark's encoder writes what it decoded back out as an SPZ, which
gsply reads: a misread header, section, rotation order or SH layout would show as values far outside the two
formats' quantisation. Needs ``node`` and the web app's npm packages (``make web``; ``make test`` builds them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import gsply
import numpy as np
import pytest

from tests.support.gaussians import Sample, random_gaussians, rotation_alignment, sigmoid
from vidscene.pipeline.export.compressed_ply import morton_order, write_compressed_ply
from vidscene.pipeline.export.spz import write_spz

ROOT = Path(__file__).resolve().parents[2]
SPARK = ROOT / "vidscene" / "web" / "node_modules" / "@sparkjsdev" / "spark" / "dist" / "spark.module.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None or not SPARK.is_file(),
                                reason="needs node and vidscene/web/node_modules (make web)")


def _spz(path: Path, g: Sample) -> None:
    write_spz(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)


def _compressed_ply(path: Path, g: Sample) -> None:
    write_compressed_ply(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)


@pytest.mark.parametrize(("name", "write", "file_type", "position_error"), [
    ("scene.spz", _spz, "spz", 0.5 / 4096),
    ("scene.compressed.ply", _compressed_ply, "ply", 0.01),  # 10-11 bits of a chunk's extent
])
def test_spark_decodes_what_was_written(tmp_path: Path, name: str, write: Callable[[Path, Sample], None],
                                        file_type: str, position_error: float) -> None:
    assert NODE is not None
    g = random_gaussians(2000, sh_degree=3)
    path = tmp_path / name
    write(path, g)
    out = tmp_path / "from-spark.spz"
    done = subprocess.run([NODE, str(Path(__file__).with_name("spark_transcode.mjs")), str(SPARK), str(path),
                           str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"fileType": file_type}

    back = gsply.read_spz(out)  # Spark's own SPZ: version 2 rotations, 12 fractional bits
    e = g if file_type == "spz" else g.take(morton_order(g.means))
    assert back.means.shape == (2000, 3) and back.shN.shape == (2000, 15, 3)
    # Spark's re-encoding adds its own rounding to each format's: bounds are the two together, loosely.
    np.testing.assert_allclose(back.means, e.means, rtol=0, atol=position_error + 0.5 / 4096 + 1e-5)
    np.testing.assert_allclose(back.scales, e.log_scales, rtol=0, atol=0.1)
    assert rotation_alignment(back.quats, e.quats).min() > 0.99
    np.testing.assert_allclose(sigmoid(back.opacities), sigmoid(e.opacity_logits), rtol=0, atol=1.5 / 255)
    np.testing.assert_allclose(back.sh0, e.sh[:, 0], rtol=0, atol=0.03)
    np.testing.assert_allclose(back.shN, e.sh[:, 1:], rtol=0, atol=0.14)
