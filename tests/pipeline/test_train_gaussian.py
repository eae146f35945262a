"""Gaussian splatting training end to end on a tiny synthetic scene: checkpoints, resume, export.

The scene is made of known gaussians rendered with the package's own ``render`` from cameras on an arc, so
the ground truth is exactly representable and a few dozen iterations must visibly improve the fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from plyfile import PlyData

from tests.support.captures import CONFIG, make_tiny_scene, trained_quality
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.errors import TrainingError
from vidscene.pipeline.gaussian import pixel_budget
from vidscene.pipeline.gaussian import train as train_module
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.gaussian.model import Gaussians, init_from_points, knn_mean_distance
from vidscene.pipeline.gaussian.outputs import export_outputs, without_floaters
from vidscene.pipeline.gaussian.strategy import DensifyStrategy
from vidscene.pipeline.gaussian.train import (
    CADENCE,
    GaussianTraining,
    TrainResult,
    make_optimizers,
    train_gaussians,
)
from vidscene.pipeline.presets import PRESETS
from vidscene.pipeline.progress import Cancelled

SAVE = [10, 20]


@dataclass
class Run:
    result: TrainResult
    work_dir: Path
    positions: list[int]
    messages: list[str]
    saved: list[tuple[int, Path]]


def _recorder(run_positions: list[int], messages: list[str],
              stop_at: int | None = None) -> Callable[..., None]:
    def progress(position: int, total: int, message: str = "") -> None:
        if stop_at is not None and position >= stop_at:
            raise Cancelled("stopped by the test")
        run_positions.append(position)
        messages.append(message)

    return progress


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return make_tiny_scene(tmp_path_factory.mktemp("tiny_scene"))


@pytest.fixture(scope="module")
def straight_run(scene: SceneData, tmp_path_factory: pytest.TempPathFactory) -> Run:
    work = tmp_path_factory.mktemp("straight")
    positions: list[int] = []
    messages: list[str] = []
    saved: list[tuple[int, Path]] = []
    result = train_gaussians(scene, CONFIG, work, save_iterations=SAVE, device="cpu",
                             progress=_recorder(positions, messages),
                             on_save=lambda it, p: saved.append((it, p)))
    return Run(result, work, positions, messages, saved)


def _losses(messages: list[str]) -> list[float]:
    return [float(m.group(1)) for msg in messages if (m := re.search(r"loss ([0-9.]+)", msg))]


def test_training_improves_and_saves_requested_checkpoints(scene: SceneData, straight_run: Run) -> None:
    run = straight_run
    assert run.result.iteration == 30
    assert [it for it, _ in run.saved] == [10, 20, 30]
    for it, path in run.saved:
        assert path == CHECKPOINTS.path(run.work_dir, it)
        assert path.is_file()
        assert CHECKPOINTS.load(path)["iteration"] == it
    assert run.result.checkpoint == CHECKPOINTS.path(run.work_dir, 30)
    assert not (run.work_dir / CHECKPOINTS.resume_file).exists()
    assert not list(run.work_dir.rglob("*.part"))

    # Progress: starts at 0, ends at the total, reported at least every 10 iterations.
    assert run.positions[0] == 0
    assert run.positions[-1] == 30
    assert max(np.diff(run.positions)) <= 10
    losses = _losses(run.messages)
    assert losses[-1] < 0.8 * losses[0]

    m = run.result.metrics
    assert 0 < m["n_gaussians"] <= CONFIG.max_gaussians
    assert m["seconds"] > 0
    assert m["s_per_it"] == pytest.approx(m["seconds"] / 30)
    quality = trained_quality(scene, run.result, CONFIG)
    assert quality.heldout and quality.eval_views == 3
    # The tiny scene's frames are no larger than CONFIG's training size, so the untrained model's in-memory
    # figures are on the same frames at the same size as the checkpoint's.
    initial = GaussianTraining(scene, CONFIG, run.work_dir, torch.device("cpu")).evaluate()
    assert quality.psnr > initial["psnr"] + 2.0
    assert quality.ssim > initial["ssim"]


def test_a_pixel_budget_draws_part_of_each_frame_and_trains_as_well(scene: SceneData, straight_run: Run,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames of 64x48 under a budget of two thirds of that: every step draws two of the three rows of
    tiles (a different one left out each time), and the model comes out about as good as one trained on
    whole frames (the figures of the same tiny run: within 1 dB)."""
    drawn: list[torch.Tensor | None] = []
    real = pixel_budget.drawn_tiles

    def recording(width: int, height: int, budget: int, generator: torch.Generator) -> torch.Tensor | None:
        tiles = real(width, height, budget, generator)
        drawn.append(tiles)
        return tiles

    monkeypatch.setattr(train_module, "drawn_tiles", recording)
    config = replace(CONFIG, step_pixels=64 * 32)
    result = train_gaussians(scene, config, tmp_path, save_iterations=[], device="cpu")
    assert len(drawn) == 30 and all(t is not None and int(t.any(dim=1).sum()) == 2 for t in drawn)
    assert len({int(t.any(dim=1).logical_not().nonzero()) for t in drawn if t is not None}) == 3
    budgeted = trained_quality(scene, result, config)
    whole = trained_quality(scene, straight_run.result, CONFIG)
    assert budgeted.psnr > whole.psnr - 1.0, (budgeted.psnr, whole.psnr)


def test_rerun_after_completion_returns_without_training(scene: SceneData, straight_run: Run) -> None:
    reported: list[tuple[int, int]] = []

    def must_not_train(position: int, total: int, message: str = "") -> None:
        reported.append((position, total))
        if position != total:
            raise AssertionError("training ran again")

    again = train_gaussians(scene, CONFIG, straight_run.work_dir, save_iterations=SAVE, device="cpu",
                            progress=must_not_train)
    assert reported == [(30, 30)]
    assert again.metrics == straight_run.result.metrics
    assert again.checkpoint == straight_run.result.checkpoint


def test_killed_run_resumes_at_next_iteration_with_optimizer_state(scene: SceneData, straight_run: Run,
                                                                   tmp_path: Path) -> None:
    positions: list[int] = []
    with pytest.raises(Cancelled):  # progress every iteration: stop exactly at iteration 15
        train_gaussians(scene, CONFIG, tmp_path, save_iterations=SAVE, device="cpu",
                        progress=_recorder(positions, [], stop_at=15),
                        cadence=replace(CADENCE, progress_every_iterations=1))
    assert CHECKPOINTS.path(tmp_path, 10).is_file()
    assert not CHECKPOINTS.path(tmp_path, 20).exists()

    positions = []
    messages: list[str] = []
    resumed = train_gaussians(scene, CONFIG, tmp_path, save_iterations=SAVE, device="cpu",
                              progress=_recorder(positions, messages))
    assert positions[0] == 10
    assert "resuming" in messages[0]
    assert positions[1] == 11
    assert resumed.metrics["resumed_from"] == 10

    a = CHECKPOINTS.load(straight_run.result.checkpoint)
    b = CHECKPOINTS.load(resumed.checkpoint)
    assert b["optimizers"]["means"]["state"][0]["step"] == 30
    for name, value in a["params"].items():
        # Same RNG stream, same Adam moments: the resumed run reproduces the uninterrupted one.
        torch.testing.assert_close(b["params"][name], value, atol=1e-4, rtol=1e-4)
    assert trained_quality(scene, resumed, CONFIG).psnr == pytest.approx(
        trained_quality(scene, straight_run.result, CONFIG).psnr, abs=0.05)


def test_resume_uses_the_newer_periodic_resume_file(scene: SceneData, tmp_path: Path) -> None:
    cfg = replace(CONFIG, iterations=16)
    with pytest.raises(Cancelled):
        train_gaussians(scene, cfg, tmp_path, save_iterations=[6], device="cpu",
                        progress=_recorder([], [], stop_at=13),
                        cadence=replace(CADENCE, resume_every_iterations=4, progress_every_iterations=1))
    # Checkpoint at 6, then resume.ckpt every 4 iterations: 10; the run stops at 13.
    assert CHECKPOINTS.load(tmp_path / CHECKPOINTS.resume_file)["iteration"] == 10
    positions: list[int] = []
    train_gaussians(scene, cfg, tmp_path, save_iterations=[6], device="cpu",
                    progress=_recorder(positions, []))
    assert positions[:2] == [10, 11]
    assert not (tmp_path / CHECKPOINTS.resume_file).exists()


def test_export_from_every_checkpoint(scene: SceneData, straight_run: Run, tmp_path: Path) -> None:
    cfg = ExportConfig(video_frames=6, video_fps=10, video_max_long_side=40)
    for it, ckpt_path in straight_run.saved:
        out = tmp_path / str(it)
        requests = {"splat_cloud": out / "s.splat", "point_cloud": out / "p.ply", "video": out / "v.mp4",
                    "model": out / "m.ckpt"}
        steps: list[int] = []
        export_outputs(ckpt_path, scene, requests, cfg, device="cpu",
                       progress=lambda pos, total, msg="", steps=steps: steps.append(pos))
        # what is exported: the checkpoint's gaussians less the floaters (never all of them)
        exported = without_floaters(Gaussians.from_state(CHECKPOINTS.load(ckpt_path)["params"]), scene, it)
        n = len(exported)
        assert 0 < n <= CHECKPOINTS.load(ckpt_path)["params"]["means"].shape[0]
        assert requests["splat_cloud"].stat().st_size == 32 * n
        vertex = PlyData.read(str(requests["point_cloud"]))["vertex"]
        assert vertex.count == n
        assert len(vertex.properties) == 17 + 3 * 3  # SH degree 1
        with av.open(str(requests["video"])) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 6
        assert frames[0].shape == (30, 40, 3)
        assert max(float(f.mean()) for f in frames) > 5  # the scene is visible, not a black video
        assert requests["model"].read_bytes() == ckpt_path.read_bytes()
        assert steps[-1] == 6 + 3
        assert not list(out.glob("*.part"))
    with pytest.raises(ValueError, match="unknown"):
        export_outputs(straight_run.result.checkpoint, scene, {"hologram": tmp_path / "x"}, cfg, device="cpu")


def test_divergence_raises_training_error(scene: SceneData, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def nan_loss(pred: torch.Tensor, target: torch.Tensor,
                 ssim_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
        loss = (pred * float("nan")).mean()
        return loss, loss.detach()

    monkeypatch.setattr(train_module, "photometric_loss", nan_loss)
    with pytest.raises(TrainingError, match="diverged"):
        train_gaussians(scene, replace(CONFIG, iterations=3), tmp_path, save_iterations=[], device="cpu")


# -- model initialisation and densification -------------------------------------------------------------------

def test_knn_mean_distance_on_a_grid() -> None:
    grid = torch.stack(torch.meshgrid(*[torch.arange(5.0)] * 3, indexing="ij"), -1).reshape(-1, 3) * 0.5
    d = knn_mean_distance(grid, chunk_elems=1000)  # force several chunks
    assert torch.allclose(d, torch.full_like(d, 0.5))


def test_init_tops_up_sparse_points(scene: SceneData) -> None:
    g = init_from_points(scene.points[:10], scene.colors[:10], scene.cameras, sh_degree=2,
                         generator=torch.Generator().manual_seed(0), min_points=40, random_points=50)
    assert len(g) == 50
    assert g.params["shN"].shape == (50, 8, 3)
    assert torch.allclose(torch.sigmoid(g.params["opacities"]), torch.tensor(0.1))
    assert torch.allclose(g.params["means"][:10], torch.as_tensor(scene.points[:10]))


def _four_gaussians() -> Gaussians:
    params = {
        "means": torch.zeros(4, 3),
        "scales": torch.log(torch.tensor([[0.001] * 3, [0.5] * 3, [0.001] * 3, [0.001] * 3])),
        "quats": torch.tensor([[1.0, 0, 0, 0]]).repeat(4, 1),
        "opacities": torch.logit(torch.tensor([0.5, 0.5, 0.001, 0.5])),
        "sh0": torch.zeros(4, 1, 3),
        "shN": torch.zeros(4, 3, 3),
    }
    return Gaussians({k: v.requires_grad_(True) for k, v in params.items()})


def test_densify_clones_small_splits_large_prunes_transparent() -> None:
    cfg = replace(CONFIG, max_gaussians=100)
    g = _four_gaussians()
    opts = make_optimizers(g, cfg, 1.0)
    # One real Adam step so there are moments to carry over.
    sum(p.sum() for p in g.params.values()).backward()  # type: ignore[union-attr]
    for o in opts.values():
        o.step()
    before_split = torch.exp(g.params["scales"][1].detach()).max()
    strategy = DensifyStrategy(cfg, 1.0, torch.Generator().manual_seed(0))
    state = {"grad2d": torch.tensor([1.0, 1.0, 1.0, 0.0]), "count": torch.ones(4)}
    stats = strategy.refine(g, opts, state, step=10)
    # 0 small+high grad -> cloned, 1 large+high grad -> split in two, 2 transparent -> pruned, 3 kept.
    assert (stats.cloned, stats.split, stats.pruned) == (1, 1, 1)
    assert len(g) == 5
    assert state["grad2d"].shape == (5,)
    scales = torch.exp(g.params["scales"]).max(1).values
    assert torch.allclose(scales[-2:], before_split / 1.6)
    moments = opts["means"].state[g.params["means"]]["exp_avg"]
    assert moments.shape == (5, 3)
    assert bool((moments[:2] != 0).all())  # survivors (gaussians 0 and 3) keep their moments
    assert bool((moments[2:] == 0).all())  # new ones start from zero
    assert opts["means"].param_groups[0]["params"][0] is g.params["means"]


def test_densify_respects_the_cap() -> None:
    cfg = replace(CONFIG, max_gaussians=4)
    g = _four_gaussians()
    opts = make_optimizers(g, cfg, 1.0)
    strategy = DensifyStrategy(cfg, 1.0, torch.Generator().manual_seed(0))
    state = {"grad2d": torch.tensor([1.0, 2.0, 1.0, 0.5]), "count": torch.ones(4)}
    strategy.refine(g, opts, state, step=10)
    assert len(g) <= 4


@pytest.mark.slow
def test_short_preview_training_on_a_reconstructed_synthetic_orbit(tmp_path: Path) -> None:
    """The whole chain this stage sits in: video -> frames -> SfM -> training -> export, held-out quality."""
    from tests.support.videos import make_orbit_video
    from vidscene.pipeline.config import FramesConfig, SfmConfig
    from vidscene.pipeline.frames import extract_frames
    from vidscene.pipeline.sfm import reconstruct

    video = make_orbit_video(tmp_path / "orbit.mp4", width=240, height=180, n_frames=48, fps=12)
    frames = extract_frames(video.path, tmp_path / "frames", tmp_path / "thumb.jpg",
                            FramesConfig(target_count=40, max_long_side=240))
    scene = reconstruct(frames, tmp_path / "sfm", SfmConfig())
    cfg = replace(PRESETS["preview"].gaussian, iterations=600, max_long_side=160, densify_start=100,
                  densify_stop=450, max_gaussians=15_000)
    result = train_gaussians(scene, cfg, tmp_path / "train", save_iterations=[300], device="cpu")
    quality = trained_quality(scene, result, cfg)
    assert quality.heldout
    assert quality.psnr >= 25.0
    assert quality.ssim >= 0.75
    out = tmp_path / "out"
    requests = {"splat_cloud": out / "s.splat", "point_cloud": out / "p.ply", "video": out / "v.mp4",
                "model": out / "m.ckpt"}
    export_outputs(result.checkpoint, scene, requests, ExportConfig(video_frames=30, video_max_long_side=160),
                   device="cpu")
    assert all(p.stat().st_size > 0 for p in requests.values())


def test_a_checkpoint_from_before_fused_adam_resumes_with_the_fused_kernel() -> None:
    """``load_state_dict`` takes the saved groups' flags: an old checkpoint (``fused: False``) would turn the
    fused kernel off for the rest of the run, the for-loop Adam that cost 53 ms a step at 300k gaussians."""
    g = _four_gaussians()
    old = torch.optim.Adam([g.params["means"]], lr=1e-3, eps=1e-15)  # what checkpoints held until session 5
    g.params["means"].sum().backward()
    old.step()
    saved = old.state_dict()
    assert saved["param_groups"][0]["fused"] in (False, None)
    fresh = make_optimizers(g, CONFIG, 1.0)["means"]
    train_module.load_optimizer_state(fresh, saved)
    assert fresh.param_groups[0]["fused"] is True
    state = fresh.state[g.params["means"]]
    torch.testing.assert_close(state["exp_avg"], old.state[g.params["means"]]["exp_avg"])
    assert float(state["step"]) == 1.0
    fresh.step()  # the fused kernel accepts the loaded moments and step count
    assert float(fresh.state[g.params["means"]]["step"]) == 2.0
