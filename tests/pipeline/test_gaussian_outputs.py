"""``export_outputs`` writes every gaussian output type of the catalogue from a real (tiny) checkpoint, and the
output types only gaussian mode makes are refused for TensoRF before any work starts."""

from __future__ import annotations

import gzip
import json
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import gsply
import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData
from pygltflib import GLTF2

from tests.support.synthetic import orbit_cameras
from vidscene import catalogue
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.model import Gaussians
from vidscene.pipeline.gaussian.outputs import FILE_WRITERS, OUTPUT_TYPES, export_outputs, without_floaters
from vidscene.pipeline.gaussian.train import train_gaussians
from vidscene.pipeline.presets import preset_config
from vidscene.pipeline.scene import SceneWork
from vidscene.storage.local import SceneFiles

NEW_TYPES = ("spz", "compressed_ply", "sog", "gltf", "mesh")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SceneData]:
    """Four training steps on four noise images: a checkpoint of the real format, trained up to SH degree 1
    of 2 (so the writers must drop the band it has not used yet)."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    cameras = orbit_cameras(4, 32, 24)
    (root / "images").mkdir()
    for cam in cameras:
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(root / "images" / cam.image_name,
                                                                                 format="PNG")
    scene = SceneData(cameras=cameras, images_dir=root / "images",
                      points=rng.uniform(-0.5, 0.5, (1000, 3)).astype(np.float32),
                      colors=rng.integers(0, 256, (1000, 3), dtype=np.uint8))
    config = replace(GaussianConfig(), iterations=4, max_long_side=32, sh_degree=2, sh_degree_interval=2,
                     densify_start=100, eval_every=100)
    result = train_gaussians(scene, config, root / "train", save_iterations=[], device="cpu")
    return result.checkpoint, scene


def test_every_gaussian_output_type_has_one_writer() -> None:
    assert set(OUTPUT_TYPES) == set(catalogue.TRAINING_MODES["gaussian"].outputs)
    assert set(FILE_WRITERS) == set(OUTPUT_TYPES) - {"video", "mesh"}
    for name in NEW_TYPES:
        assert catalogue.OUTPUT_TYPES[name].modes == ("gaussian",)
    assert catalogue.OUTPUT_TYPES["spz"].extension("gaussian") == ".spz"
    assert catalogue.OUTPUT_TYPES["compressed_ply"].extension("gaussian") == ".compressed.ply"
    for preset in catalogue.PRESETS.values():
        outputs = preset.outputs_for("gaussian")
        assert outputs.index("spz") < outputs.index("splat_cloud")


def test_export_writes_spz_and_compressed_ply_from_a_checkpoint(tiny_run: tuple[Path, SceneData],
                                                               tmp_path: Path) -> None:
    checkpoint, scene = tiny_run
    ckpt = CHECKPOINTS.load(checkpoint)
    assert (ckpt["sh_degree"], ckpt["active_sh_degree"]) == (2, 1)
    gaussians = without_floaters(Gaussians.from_state(ckpt["params"]), scene, 4)  # what export keeps
    means = gaussians.to_numpy()["means"]
    n = len(gaussians)

    requests = {"spz": tmp_path / "4.spz", "compressed_ply": tmp_path / "4.compressed.ply",
                "point_cloud": tmp_path / "4.ply", "sog": tmp_path / "4.sog", "gltf": tmp_path / "4.glb"}
    steps: list[tuple[int, int, str]] = []
    export_outputs(checkpoint, scene, requests, ExportConfig(), device="cpu",
                   progress=lambda done, total, message="": steps.append((done, total, message)))
    assert steps[-1] == (5, 5, "wrote gltf")
    assert not list(tmp_path.glob("*.part"))

    header = struct.unpack("<IIIBBBB", gzip.decompress(requests["spz"].read_bytes())[:16])
    assert header == (0x5053474E, 3, n, 1, 12, 0, 0)  # SH degree 1: what the checkpoint was trained to
    spz = gsply.read_spz(requests["spz"])
    np.testing.assert_allclose(spz.means, means, atol=0.5 / 4096 + 1e-6)
    assert spz.shN.shape == (n, 3, 3)

    ply = PlyData.read(str(requests["compressed_ply"]))
    assert [e.name for e in ply.elements] == ["chunk", "vertex", "sh"]
    assert len(ply["sh"].properties) == 9 and ply["vertex"].count == n
    compressed = gsply.plyread(str(requests["compressed_ply"]))
    assert compressed.means.shape == (n, 3)
    # The same gaussians, reordered along the Morton curve.
    nearest = np.sort(np.linalg.norm(compressed.means[:, None] - means[None], axis=2).min(axis=1))
    assert nearest[-1] < 0.01
    assert len(PlyData.read(str(requests["point_cloud"]))["vertex"].properties) == 17 + 3 * 8  # all SH kept
    with zipfile.ZipFile(requests["sog"]) as zf:  # the full read-back is test_export_sog's
        meta = json.loads(zf.read("meta.json"))
    assert (meta["count"], meta["shN"]["bands"]) == (n, 1)
    glb = GLTF2().load(str(requests["gltf"]))  # the full read-back is test_export_gltf's
    names = set(glb.meshes[0].primitives[0].attributes.__dict__)
    assert "KHR_gaussian_splatting:SH_DEGREE_1_COEF_2" in names
    assert "KHR_gaussian_splatting:SH_DEGREE_2_COEF_0" not in names
    assert glb.accessors[glb.meshes[0].primitives[0].attributes.POSITION].count == n

    with pytest.raises(ValueError, match="unknown gaussian output types: hologram"):
        export_outputs(checkpoint, scene, {"hologram": tmp_path / "m"}, ExportConfig(), device="cpu")


@pytest.mark.parametrize("output_type", NEW_TYPES)
def test_tensorf_refuses_gaussian_only_outputs(tmp_path: Path, output_type: str) -> None:
    with pytest.raises(ValueError, match=f"'{output_type}'.*not available for training mode tensorf"):
        SceneWork.create(scene_id="s", video=tmp_path / "v.mp4", files=SceneFiles(tmp_path / "s"),
                         training_mode="tensorf", output_types=["video", output_type], save_iterations=[],
                         total_iterations=10, config=preset_config("preview"))
    work = SceneWork.create(scene_id="s", video=tmp_path / "v.mp4", files=SceneFiles(tmp_path / "s"),
                            training_mode="gaussian", output_types=[output_type], save_iterations=[],
                            total_iterations=10, config=preset_config("preview"))
    extension = catalogue.OUTPUT_TYPES[output_type].extension("gaussian")
    assert work.output_path(output_type, 10) == tmp_path / "s" / "outputs" / output_type / f"10{extension}"
