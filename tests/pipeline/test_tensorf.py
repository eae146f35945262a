"""TensoRF: compositing against a hand-worked ray, end to end on a tiny scene, checkpoints and resume."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Literal

import av
import numpy as np
import pytest
import torch
from PIL import Image
from plyfile import PlyData

from tests.support.captures import trained_quality
from tests.support.synthetic import SyntheticScene, orbit_cameras
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.errors import TrainingError
from vidscene.pipeline.progress import Cancelled
from vidscene.pipeline.tensorf.bounds import scene_aabb
from vidscene.pipeline.tensorf.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.tensorf.config import TensorfConfig
from vidscene.pipeline.tensorf.model import FieldShape, TensorVM, compute_alpha_mask
from vidscene.pipeline.tensorf.outputs import export_outputs
from vidscene.pipeline.tensorf.render import (
    RenderSettings,
    camera_rays,
    composite,
    ray_box_interval,
    render_rays,
)
from vidscene.pipeline.tensorf.train import load_model, train_tensorf
from vidscene.pipeline.training import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WIDTH, HEIGHT, FRAMES = 32, 24, 16


def tiny_config(iterations: int = 30, decoder: Literal["mlp", "sh"] = "mlp") -> TensorfConfig:
    """Small enough for a few seconds on a busy CPU, but with every schedule event inside the run."""
    return TensorfConfig(iterations=iterations, max_long_side=WIDTH, grid_start=16, grid_final=32,
                         upsample_fractions=(0.2, 0.6), alpha_mask_fractions=(0.3, 0.7),
                         density_components=(2, 2, 2), appearance_components=(4, 4, 4), appearance_dim=8,
                         mlp_hidden=16, batch_rays=256, step_ratio=1.0, max_samples=64, lr_grid=0.05,
                         l1_weight_initial=0.0, l1_weight_rest=0.0, density_shift=-2.0, appearance_decoder=decoder)


def _scene_from_renders(directory: Path, cameras: list[Camera], scene: SyntheticScene) -> SceneData:
    """Posed images plus SfM-like points (true surface points under random pixels)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    points = []
    named = []
    for cam in cameras:
        name = f"{cam.image_name}.png"
        Image.fromarray(scene.render(cam)).save(directory / name)
        depth = scene.depth(cam)
        v, u = rng.integers(0, cam.height, 40), rng.integers(0, cam.width, 40)
        z = depth[v, u]
        x_cam = np.stack([(u + 0.5 - cam.cx) / cam.fx * z, (v + 0.5 - cam.cy) / cam.fy * z, z], axis=-1)
        points.append((x_cam - cam.t) @ cam.R)
        named.append(replace(cam, image_name=name))
    pts = np.concatenate(points).astype(np.float32)
    return SceneData(cameras=named, images_dir=directory, points=pts, colors=np.full_like(pts, 128, np.uint8))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return _scene_from_renders(tmp_path_factory.mktemp("frames"), orbit_cameras(FRAMES, WIDTH, HEIGHT),
                               SyntheticScene(0, texture_size=64))


# --- compositing and rays --------------------------------------------------------------------------------------


def test_composite_matches_hand_computed_ray() -> None:
    sigma = torch.tensor([[1.0, 2.0, 0.0, 4.0]])
    deltas = torch.tensor([[0.5, 0.5, 0.5, 0.25]])
    rgb = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.4, 0.6]]])
    background = torch.tensor([1.0, 1.0, 1.0])
    # By hand: opacities 1 - e^-0.5, 1 - e^-1, 0, 1 - e^-1; transmittance 1, e^-0.5, e^-1.5, e^-1.5.
    a0, a1, a3 = 1 - math.exp(-0.5), 1 - math.exp(-1.0), 1 - math.exp(-1.0)
    w = [a0, math.exp(-0.5) * a1, 0.0, math.exp(-1.5) * a3]
    left = math.exp(-2.5)
    expected = [w[0] + 0.2 * w[3] + left, w[1] + 0.4 * w[3] + left, 0.6 * w[3] + left]

    color, acc, weights = composite(sigma, rgb, deltas, background)

    assert weights[0].tolist() == pytest.approx(w, abs=1e-6)
    assert float(acc[0]) == pytest.approx(1 - left, abs=1e-6)
    assert color[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_composite_of_empty_ray_is_background() -> None:
    color, acc, _ = composite(torch.zeros(2, 5), torch.rand(2, 5, 3), torch.full((2, 5), 0.1),
                              torch.tensor([0.1, 0.2, 0.3]))
    assert torch.allclose(color, torch.tensor([[0.1, 0.2, 0.3]] * 2))
    assert torch.all(acc == 0)


def test_camera_rays_go_through_pixel_centres() -> None:
    R = np.eye(3)
    cam = Camera(width=4, height=2, fx=2.0, fy=2.0, cx=2.0, cy=1.0, R=R, t=np.array([0.0, 0.0, -3.0]))
    origins, dirs = camera_rays(cam, torch.device("cpu"))
    assert origins[0].tolist() == pytest.approx([0.0, 0.0, 3.0])
    # Pixel (u=0, v=0) has its centre at (0.5, 0.5): camera direction ((0.5-2)/2, (0.5-1)/2, 1).
    d = np.array([-0.75, -0.25, 1.0])
    assert dirs[0].tolist() == pytest.approx((d / np.linalg.norm(d)).tolist(), abs=1e-6)
    # The ray through (u=2, v=1)'s centre is off-axis by half a pixel in each direction, to the right and down.
    assert dirs[1 * 4 + 2].tolist() == pytest.approx((np.array([0.25, 0.25, 1.0]) / math.sqrt(1.125)).tolist(),
                                                     abs=1e-6)


def test_ray_box_interval_hits_and_misses() -> None:
    aabb = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    origins = torch.tensor([[0.0, 0.0, -5.0], [0.0, 3.0, -5.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far = ray_box_interval(origins, dirs, aabb)
    assert near[0].item() == pytest.approx(4.0)
    assert far[0].item() == pytest.approx(6.0)
    assert near[1] > far[1]


def _constant_field(density_feature: float) -> TensorVM:
    """A field with the same density everywhere: planes constant, lines all ones."""
    shape = FieldShape(aabb=((-1, -1, -1), (1, 1, 1)), grid_size=(8, 8, 8), density_components=(1, 1, 1),
                       appearance_components=(1, 1, 1), appearance_dim=4, mlp_hidden=8, feature_pe=0, view_pe=0,
                       density_shift=0.0, distance_scale=1.0)
    model = TensorVM(shape)
    with torch.no_grad():
        for p in model.density_planes:
            p.fill_(density_feature / 3.0)
        for ln in model.density_lines:
            ln.fill_(1.0)
    return model


def test_render_rays_matches_analytic_transmittance() -> None:
    # softplus(x) = 1 at x = log(e - 1): density 1 everywhere inside a box 2 units deep.
    model = _constant_field(math.log(math.e - 1.0))
    settings = RenderSettings(step=0.01, n_samples=400)
    origins = torch.tensor([[0.0, 0.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0]])
    with torch.no_grad():
        _, acc, depth = render_rays(model, origins, dirs, settings)
    # Opacity after 2 units of density 1 is 1 - e^-2; expected depth = 2 + integral of t e^-(t-2) over [2, 4].
    assert float(acc[0]) == pytest.approx(1 - math.exp(-2.0), abs=2e-3)
    expected_depth = 2.0 * (1 - math.exp(-2.0)) + (1 - 3.0 * math.exp(-2.0))
    assert float(depth[0]) == pytest.approx(expected_depth, abs=1e-2)


def test_early_terminating_renderer_matches_training_renderer() -> None:
    torch.manual_seed(0)
    shape = FieldShape(aabb=((-1, -1, -1), (1, 1, 1)), grid_size=(12, 9, 7), density_components=(2, 2, 2),
                       appearance_components=(3, 3, 3), appearance_dim=6, mlp_hidden=8, feature_pe=1, view_pe=1,
                       density_shift=0.0, distance_scale=1.0)
    model = TensorVM(shape)
    with torch.no_grad():
        for p in model.density_planes:
            p.mul_(30.0)  # a mix of thin and opaque rays, so some terminate early and some do not
    origins = torch.randn(64, 3) * 0.2 + torch.tensor([0.0, 0.0, -3.0])
    dirs = torch.nn.functional.normalize(torch.randn(64, 3) * 0.2 + torch.tensor([0.0, 0.0, 1.0]), dim=-1)
    settings = RenderSettings(step=0.02, n_samples=200)
    with torch.no_grad():
        unmasked = render_rays(model, origins, dirs, settings)
        mask, _ = compute_alpha_mask(model, step=0.02, threshold=1e-4)
    with torch.enable_grad():
        training = render_rays(model, origins, dirs, settings, alpha_mask=mask)
    with torch.no_grad():
        terminating = render_rays(model, origins, dirs, settings, alpha_mask=mask)
        cached = render_rays(model, origins, dirs, settings, alpha_mask=mask, density_volume=model.density_volume())
        probe = torch.rand(500, 3) * 2 - 1
        assert torch.allclose(model.density_from_volume(model.density_volume(), probe), model.density(probe),
                              rtol=1e-4, atol=1e-5)
    for a, b in zip(terminating, cached, strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    acc = training[1].detach()
    assert float(acc.min()) < 0.5 < float(acc.max())
    for a, b in zip(training, terminating, strict=True):
        assert torch.allclose(a.detach(), b, atol=2e-3)
    assert torch.allclose(unmasked[0], terminating[0], atol=2e-3)


def test_alpha_mask_keeps_dense_region_and_shrink_preserves_field() -> None:
    torch.manual_seed(0)
    shape = FieldShape(aabb=((-1, -1, -1), (1, 1, 1)), grid_size=(17, 17, 17), density_components=(2, 2, 2),
                       appearance_components=(2, 2, 2), appearance_dim=4, mlp_hidden=8, feature_pe=1, view_pe=1,
                       density_shift=-10.0, distance_scale=25.0)
    model = TensorVM(shape)
    with torch.no_grad():
        for p in model.density_planes:
            p.zero_()
        # Density only where x > 0.5 (x is the width axis of the XY and XZ planes).
        model.density_planes[0][..., 13:] = 20.0
        model.density_lines[0].fill_(1.0)
    points = torch.tensor([[0.9, 0.0, 0.0], [-0.9, 0.0, 0.0]])
    with torch.no_grad():
        before = model.density(model.normalize(points))
    mask, tight = compute_alpha_mask(model, step=0.05, threshold=1e-4)
    assert mask.contains(points).tolist() == [True, False]
    assert float(tight[0, 0]) > 0.3
    model.shrink(tight)
    assert float(model.aabb[0, 0]) > 0.3
    assert model.grid_size[0] < 17
    with torch.no_grad():
        after = model.density(model.normalize(points[:1]))
    assert torch.allclose(after, before[:1], rtol=1e-4)


def test_scene_aabb_ignores_outlier_points() -> None:
    cams = orbit_cameras(12, 64, 48)
    rng = np.random.default_rng(1)
    pts = rng.uniform(-2.0, 2.0, (2000, 3)) * np.array([1.0, 0.5, 1.0]) + np.array([0.0, -1.0, 0.0])
    pts = np.concatenate([pts, [[500.0, 0.0, 0.0], [0.0, -800.0, 0.0]]])
    box = scene_aabb(cams, pts)
    assert np.all(box[1] - box[0] < 6.0)
    assert np.all(box[0] < box[1])


# --- training, outputs, resume ----------------------------------------------------------------------------------


def test_train_and_export_all_outputs(scene: SceneData, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    saved: list[int] = []
    config = tiny_config(40)
    result = train_tensorf(scene, config, tmp_path / "work", save_iterations=[15], device="cpu",
                           progress=lambda pos, total, msg="": seen.append((pos, total)),
                           on_save=lambda it, path: saved.append(it))
    assert saved == [15, 40]
    assert result.iteration == 40
    assert result.checkpoint == tmp_path / "work" / "checkpoints" / "40.th"
    assert (tmp_path / "work" / "checkpoints" / "15.th").is_file()
    assert not (tmp_path / "work" / CHECKPOINTS.resume_file).exists()
    assert {"seconds", "s_per_it"} <= set(result.metrics)
    assert math.isfinite(trained_quality(scene, result, config).psnr)
    assert seen[-1][0] == seen[-1][1] == 40
    positions = [p for p, _ in seen]
    assert positions == sorted(positions)

    out = tmp_path / "out"
    requests = {"video": out / "v.mp4", "model": out / "m.th", "point_cloud": out / "p.ply"}
    export_outputs(result.checkpoint, scene, requests, ExportConfig(video_frames=6, video_fps=12,
                                                                    video_max_long_side=32), device="cpu")
    assert sorted(p.name for p in out.iterdir()) == ["m.th", "p.ply", "v.mp4"]  # no .part left behind

    with av.open(str(requests["video"])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 6
    assert frames[0].shape == (24, 32, 3)

    loaded = load_model(requests["model"], torch.device("cpu"))
    assert loaded.iteration == 40
    assert loaded.checkpoint["optimizer"]["state"]

    ply = PlyData.read(str(requests["point_cloud"]))
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == ["x", "y", "z", "red", "green", "blue"]
    assert vertex.count > 0
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=-1)
    aabb = loaded.model.aabb.numpy()
    assert np.all(xyz >= aabb[0] - 1e-4) and np.all(xyz <= aabb[1] + 1e-4)


def test_unknown_output_is_refused(scene: SceneData, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="splat_cloud"):
        export_outputs(tmp_path / "missing.th", scene, {"splat_cloud": tmp_path / "x.splat"}, ExportConfig())


def test_resume_continues_exactly_and_finished_run_returns_at_once(scene: SceneData, tmp_path: Path) -> None:
    config = replace(tiny_config(30, decoder="sh"), eval_every=0)  # no held-out rendering: faster
    straight = train_tensorf(scene, config, tmp_path / "a", save_iterations=[], device="cpu")

    def cancel_after_12(position: int, total: int, message: str = "") -> None:
        if position >= 12:
            raise Cancelled

    with pytest.raises(Cancelled):
        train_tensorf(scene, config, tmp_path / "b", save_iterations=[10], device="cpu", progress=cancel_after_12)
    assert CHECKPOINTS.find_resume(tmp_path / "b", 30) == (10, tmp_path / "b" / "checkpoints" / "10.th")

    positions: list[int] = []
    resumed = train_tensorf(scene, config, tmp_path / "b", save_iterations=[10], device="cpu",
                            progress=lambda pos, total, msg="": positions.append(pos))
    assert min(p for p in positions if p > 0) > 10  # continued after the checkpoint, did not restart
    a = load_model(straight.checkpoint, torch.device("cpu"))
    b = load_model(resumed.checkpoint, torch.device("cpu"))
    assert a.model.grid_size == b.model.grid_size
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-5), name

    again: list[int] = []
    result = train_tensorf(scene, config, tmp_path / "b", save_iterations=[10], device="cpu",
                           progress=lambda pos, total, msg="": again.append(pos))
    assert again == []
    assert result.metrics == resumed.metrics


def test_resume_ignores_checkpoints_past_the_requested_length(tmp_path: Path) -> None:
    save_checkpoint({"format": CHECKPOINTS.format, "iteration": 50}, tmp_path / "checkpoints" / "50.th")
    save_checkpoint({"format": CHECKPOINTS.format, "iteration": 20}, tmp_path / "checkpoints" / "20.th")
    save_checkpoint({"format": CHECKPOINTS.format, "iteration": 25}, tmp_path / CHECKPOINTS.resume_file)
    assert CHECKPOINTS.find_resume(tmp_path, 40) == (25, tmp_path / CHECKPOINTS.resume_file)
    assert CHECKPOINTS.find_resume(tmp_path, 22) == (20, tmp_path / "checkpoints" / "20.th")
    assert CHECKPOINTS.find_resume(tmp_path, 10) is None


def test_diverging_loss_raises_training_error(scene: SceneData, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="diverged"):
        train_tensorf(scene, replace(tiny_config(5), lr_grid=float("nan")), tmp_path, save_iterations=[],
                      device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_train_cancel_resume_and_render(scene: SceneData, tmp_path: Path) -> None:
    config = replace(tiny_config(30, decoder="mlp"), eval_every=0)

    def cancel_after_12(position: int, total: int, message: str = "") -> None:
        if position >= 12:
            raise Cancelled

    with pytest.raises(Cancelled):
        train_tensorf(scene, config, tmp_path, save_iterations=[10], device="cuda", progress=cancel_after_12)
    result = train_tensorf(scene, config, tmp_path, save_iterations=[10], device="cuda")
    loaded = load_model(result.checkpoint, torch.device("cuda"))
    assert loaded.model.aabb.is_cuda
    assert loaded.iteration == 30
    cam = scene.cameras[0]
    with torch.no_grad():
        origins, dirs = camera_rays(cam, torch.device("cuda"))
        color, acc, _ = render_rays(loaded.model, origins, dirs, loaded.settings, alpha_mask=loaded.alpha_mask,
                                    density_volume=loaded.model.density_volume())
    assert color.shape == (cam.width * cam.height, 3)
    assert bool(torch.isfinite(color).all()) and bool(((acc >= 0) & (acc <= 1 + 1e-5)).all())
