"""TensoRF on captures of both shapes: telling a forward-facing clip from an orbit, NDC rays, and a tiny
forward-facing clip training to a textured render with a point cloud (it used to end flat grey, no points)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from plyfile import PlyData

from tests.support.captures import (
    WIDTH,
    flat_quality_psnr,
    forward_capture,
    orbit_capture,
    tiny_tensorf_config,
    trained_quality,
)
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.tensorf.config import TensorfConfig
from vidscene.pipeline.tensorf.model import FieldShape
from vidscene.pipeline.tensorf.outputs import export_outputs
from vidscene.pipeline.tensorf.render import camera_rays
from vidscene.pipeline.tensorf.space import NdcSpace, capture_shape, ndc_box, ndc_space, space_from_dict
from vidscene.pipeline.tensorf.train import load_model, train_tensorf

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_forward_config(iterations: int = 200) -> TensorfConfig:
    return tiny_tensorf_config(iterations, grid_final=40, batch_rays=512)


@pytest.fixture(scope="module")
def forward_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return forward_capture(tmp_path_factory.mktemp("forward"), texture_size=64)


@pytest.fixture(scope="module")
def orbit_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return orbit_capture(tmp_path_factory.mktemp("orbit"))



# --- capture shape and NDC ---------------------------------------------------------------------------------------


def test_capture_shape_tells_a_forward_clip_from_an_orbit(forward_scene: SceneData, orbit_scene: SceneData) -> None:
    forward = capture_shape(forward_scene.cameras, forward_scene.points)
    orbit = capture_shape(orbit_scene.cameras, orbit_scene.points)
    assert forward.kind == "forward"
    assert 10.0 < forward.axis_spread_deg < 25.0  # a 36-degree sweep: each axis within ~18 degrees of the mean
    assert orbit.kind == "orbit"
    assert orbit.axis_spread_deg > 50.0  # a 120-degree arc
    assert "degrees" in orbit.reason


def test_ndc_rays_are_straight_and_points_map_back(forward_scene: SceneData) -> None:
    space = ndc_space(forward_scene.cameras, forward_scene.points)
    assert space_from_dict(space.to_dict()) == space
    cam = forward_scene.cameras[3]
    origins, dirs = camera_rays(cam.scaled(8, 6), torch.device("cpu"))
    o_ndc, d_ndc, view = space.model_rays(origins, dirs)
    assert torch.allclose(o_ndc[:, 2], torch.full((48,), -1.0))  # every ray starts on the near plane
    assert torch.allclose(d_ndc.norm(dim=-1), torch.ones(48), atol=1e-5)
    assert torch.equal(view, dirs)  # the appearance sees world directions
    for distance in (space.near + 0.5, 4.0, 50.0):
        world = origins + distance * dirs
        ndc = space.from_world(world)
        along = ((ndc - o_ndc) * d_ndc).sum(dim=-1, keepdim=True)
        assert float((ndc - o_ndc - along * d_ndc).norm(dim=-1).max()) < 1e-4  # on the NDC ray
        assert torch.allclose(space.to_world(ndc), world, rtol=1e-4, atol=1e-3)
    box = ndc_box(space, forward_scene.cameras)
    assert box[0, 2] == -1.0 and box[1, 2] == 1.0
    inside = (o_ndc[:, :2] >= torch.tensor(box[0, :2], dtype=torch.float32)).all() and \
        (o_ndc[:, :2] <= torch.tensor(box[1, :2], dtype=torch.float32)).all()
    assert bool(inside)


def test_field_shapes_saved_before_spaces_load_in_world_space() -> None:
    shape = FieldShape(aabb=((-1, -1, -1), (1, 1, 1)), grid_size=(4, 4, 4), density_components=(1, 1, 1),
                       appearance_components=(1, 1, 1), appearance_dim=4, mlp_hidden=8, feature_pe=0, view_pe=0,
                       density_shift=-10.0, distance_scale=25.0)
    old = shape.to_dict()
    del old["space"]
    assert FieldShape.from_dict(old) == shape
    assert shape.space.kind == "world"


# --- a forward-facing clip trains --------------------------------------------------------------------------------


def test_forward_clip_trains_to_a_textured_render_with_points(forward_scene: SceneData, tmp_path: Path) -> None:
    config = tiny_forward_config()
    result = train_tensorf(forward_scene, config, tmp_path / "work", save_iterations=[], device="cpu")
    assert result.metrics["ndc"] == 1.0
    flat = flat_quality_psnr(forward_scene, config.eval_every)
    assert trained_quality(forward_scene, result, config).psnr > flat + 3.0  # clearly above the mean-colour image
    loaded = load_model(result.checkpoint, torch.device("cpu"))
    assert isinstance(loaded.model.space, NdcSpace)

    out = tmp_path / "out"
    requests = {"video": out / "v.mp4", "point_cloud": out / "p.ply"}
    export_outputs(result.checkpoint, forward_scene, requests,
                   ExportConfig(video_frames=6, video_fps=12, video_max_long_side=WIDTH), device="cpu")
    vertex = PlyData.read(str(requests["point_cloud"]))["vertex"]
    assert vertex.count > 100
    # The points are the scene's surfaces in world units: in front of the cameras, where the SfM points are.
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=-1)
    lo, hi = np.percentile(forward_scene.points, 1, axis=0), np.percentile(forward_scene.points, 99, axis=0)
    pad = 0.5 * (hi - lo)
    share_near_scene = np.mean(np.all((xyz >= lo - pad) & (xyz <= hi + pad), axis=1))
    assert share_near_scene > 0.8
    colours = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=-1).astype(np.float64)
    assert colours.std(axis=0).mean() > 10.0

    with av.open(str(requests["video"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 6
    # At the frames' working resolution, along the capture path: textured frames.
    assert frames[0].shape == (forward_scene.cameras[0].height, forward_scene.cameras[0].width, 3)
    assert min(f.reshape(-1, 3).std(axis=0).mean() for f in frames) > 10.0


def test_tensorf_that_masks_everything_out_keeps_training(forward_scene: SceneData, tmp_path: Path) -> None:
    # An alpha mask with nothing in it used to skip every sample for good (grey video, empty point cloud).
    config = replace(tiny_forward_config(), ndc_alpha_mask_threshold=2.0)
    result = train_tensorf(forward_scene, config, tmp_path, save_iterations=[], device="cpu")
    assert trained_quality(forward_scene, result, config).psnr > flat_quality_psnr(forward_scene,
                                                                                   config.eval_every) + 3.0
    assert load_model(result.checkpoint, torch.device("cpu")).alpha_mask is None
