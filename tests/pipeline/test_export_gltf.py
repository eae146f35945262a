"""The ``.glb`` with ``KHR_gaussian_splatting``, read back by pygltflib: the extension's attributes, the gaussians
turned into glTF's ``+y``-up frame (view-dependent colour included), and the floor of a tilted capture level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pygltflib import GLTF2

from tests.support.gaussians import Sample, assert_full_disk_leaves_nothing, random_gaussians, sigmoid
from tests.support.synthetic import surface_points
from tests.support.tilted import CAPTURES, TRUE_UP, tilted
from vidscene.pipeline.export.gltf import write_gltf
from vidscene.pipeline.gaussian.sh import eval_sh
from vidscene.pipeline.poses import normalizing_similarity
from vidscene.pipeline.upright import find_up

EXT = "KHR_gaussian_splatting"
HALF_TURN_X = np.diag([1.0, -1.0, -1.0])  # the pipeline's -y-up world -> glTF's +y up


def read_attributes(path: Path) -> tuple[GLTF2, dict[str, np.ndarray]]:
    """Every attribute of the one primitive, through pygltflib's accessors, buffer views and binary blob."""
    gltf = GLTF2().load(str(path))
    blob = gltf.binary_blob()
    assert blob is not None
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}
    out = {}
    for name, index in gltf.meshes[0].primitives[0].attributes.__dict__.items():
        if index is None:
            continue
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        assert acc.componentType == 5126  # FLOAT
        raw = np.frombuffer(blob, dtype="<f4", count=acc.count * width[acc.type], offset=view.byteOffset)
        out[name] = raw.reshape(acc.count, width[acc.type])
    return gltf, out


def rotation_matrices(wxyz: np.ndarray) -> np.ndarray:
    q = wxyz / np.linalg.norm(wxyz, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1)], axis=1)


def write(path: Path, g: Sample, **kwargs: int) -> None:
    write_gltf(path, g.means, g.log_scales, g.quats, g.opacity_logits, g.sh, **kwargs)


def test_pygltflib_reads_the_gaussians(tmp_path: Path) -> None:
    g = random_gaussians(500, sh_degree=3)
    path = tmp_path / "scene.glb"
    write(path, g)
    gltf, attrs = read_attributes(path)
    prim = gltf.meshes[0].primitives[0]
    assert gltf.extensionsUsed == [EXT] and not gltf.extensionsRequired
    assert prim.mode == 0  # POINTS
    assert prim.extensions[EXT] == {"kernel": "ellipse", "colorSpace": "srgb_rec709_display",
                                    "projection": "perspective", "sortingMethod": "cameraDistance"}
    sh_names = [f"{EXT}:SH_DEGREE_{d}_COEF_{c}" for d in range(4) for c in range(2 * d + 1)]
    assert set(prim.attributes.__dict__.keys()) >= {"POSITION", "COLOR_0"}
    extra = {k for k in getattr(prim.attributes, "__dict__", {}) if k.startswith(EXT)}
    assert extra == {f"{EXT}:ROTATION", f"{EXT}:SCALE", f"{EXT}:OPACITY", *sh_names}

    np.testing.assert_allclose(attrs["POSITION"], g.means @ HALF_TURN_X, atol=1e-6)
    pos = gltf.accessors[prim.attributes.POSITION]
    np.testing.assert_allclose(pos.min, attrs["POSITION"].min(axis=0), atol=1e-6)
    np.testing.assert_allclose(attrs[f"{EXT}:SCALE"], np.exp(g.log_scales), rtol=1e-6)
    np.testing.assert_allclose(attrs[f"{EXT}:OPACITY"][:, 0], sigmoid(g.opacity_logits), atol=1e-6)
    xyzw = attrs[f"{EXT}:ROTATION"]
    np.testing.assert_allclose(np.linalg.norm(xyzw, axis=1), 1.0, atol=1e-6)  # unit, as the extension demands
    read_r = rotation_matrices(xyzw[:, [3, 0, 1, 2]])
    np.testing.assert_allclose(read_r, HALF_TURN_X @ rotation_matrices(g.quats.astype(np.float64)), atol=1e-5)

    # The colour seen along any direction is the colour seen along the turned direction in the glTF frame.
    sh_read = np.stack([attrs[n] for n in sh_names], axis=1)
    dirs = np.random.default_rng(1).normal(size=(500, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    before = eval_sh(3, torch.as_tensor(g.sh, dtype=torch.float64), torch.as_tensor(dirs))
    after = eval_sh(3, torch.as_tensor(sh_read, dtype=torch.float64), torch.as_tensor(dirs @ HALF_TURN_X))
    np.testing.assert_allclose(after.numpy(), before.numpy(), atol=1e-5)
    assert np.all((attrs["COLOR_0"] >= 0) & (attrs["COLOR_0"] <= 1))


def test_sh_degree_kept(tmp_path: Path) -> None:
    g = random_gaussians(20, sh_degree=3)
    write(tmp_path / "d1.glb", g, sh_degree=1)
    _, attrs = read_attributes(tmp_path / "d1.glb")
    assert sorted(k for k in attrs if "SH_DEGREE" in k) == [
        f"{EXT}:SH_DEGREE_0_COEF_0", f"{EXT}:SH_DEGREE_1_COEF_0", f"{EXT}:SH_DEGREE_1_COEF_1",
        f"{EXT}:SH_DEGREE_1_COEF_2"]
    with pytest.raises(ValueError, match="degree"):
        write(tmp_path / "d4.glb", g, sh_degree=4)


@pytest.mark.parametrize("name", ["table_pitch_45", "table_straight_down"])
def test_tilted_capture_exports_with_a_level_floor(tmp_path: Path, name: str) -> None:
    """SfM's frame tilted at random, the world levelled by the supporting plane, gaussians where the table is:
    in the ``.glb`` the table's normal is within 3 degrees of ``+y`` and the cameras are above it."""
    scene, cameras = CAPTURES[name]()
    truth = surface_points(scene, cameras, 150, seed=7)
    cams, points, _ = tilted(cameras, truth, 7)
    norm = normalizing_similarity(cams, find_up(cams, points).direction)
    table = np.abs(truth[:, 1]) < 1e-6  # the synthetic table is y = 0; points are in the same order
    g = random_gaussians(int(table.sum()), sh_degree=0)
    g.means = norm.apply_points(points[: len(truth)][table]).astype(np.float32)
    write(tmp_path / "scene.glb", g)
    _, attrs = read_attributes(tmp_path / "scene.glb")
    pos = attrs["POSITION"].astype(np.float64)
    _, _, vt = np.linalg.svd(pos - pos.mean(axis=0), full_matrices=False)
    normal = vt[2] * np.sign(vt[2][1])
    assert np.degrees(np.arccos(min(1.0, float(normal @ [0.0, 1.0, 0.0])))) < 3.0
    centres = np.array([norm.apply_camera(c).center for c in cams]) @ HALF_TURN_X
    assert np.all(centres[:, 1] > pos[:, 1].mean())
    assert TRUE_UP[1] == -1.0  # the synthetic worlds are -y up, like the pipeline's


def test_full_disk_leaves_no_glb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_full_disk_leaves_nothing(write_gltf, tmp_path / "out" / "scene.glb", monkeypatch)
