"""Runs that learned nothing fail with a ``TrainingError`` instead of ending "done" with a grey video and an
empty point cloud: TensoRF and gaussian splatting, on a flat video and on configs that cannot fit anything."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.captures import FRAMES, HEIGHT, WIDTH, forward_capture, orbit_capture, tiny_tensorf_config
from tests.support.synthetic import TabletopScene, forward_cameras, posed_scene
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.collapse import MIN_JUDGED_ITERATIONS, check_not_flat, flat_image_psnr, mean_colour
from vidscene.pipeline.errors import TrainingError
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.train import train_gaussians
from vidscene.pipeline.tensorf.config import TensorfConfig
from vidscene.pipeline.tensorf.train import train_tensorf

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(iterations: int = MIN_JUDGED_ITERATIONS) -> TensorfConfig:
    """Long enough to be judged, small enough for seconds."""
    return tiny_tensorf_config(iterations, grid_final=32, batch_rays=256)


# --- the rule -------------------------------------------------------------------------------------------------


def test_a_flat_render_no_better_than_the_mean_colour_fails() -> None:
    # The forward-facing run: held-out 16.87 dB, the mean-colour image 16.87 dB, a grey render.
    with pytest.raises(TrainingError, match=r"one flat colour, no closer .* \(16\.9 dB against 16\.9 dB\)"):
        check_not_flat(16.87, 16.87, 0.0, 0.13, iterations=2000)


def test_renders_that_vary_or_beat_the_mean_colour_pass() -> None:
    check_not_flat(24.0, 16.9, 0.0, 0.13, iterations=2000)  # better than flat by far
    check_not_flat(11.8, 13.2, 0.1, 0.13, iterations=2000)  # worse than flat, but textured: learned something
    check_not_flat(11.8, 13.2, 0.0, 0.13, iterations=MIN_JUDGED_ITERATIONS - 1)  # too short to judge


def test_a_video_of_one_flat_colour_has_nothing_to_learn() -> None:
    with pytest.raises(TrainingError, match="every frame is one flat colour"):
        check_not_flat(45.0, 42.0, 0.0, 0.008, iterations=2000)


def test_flat_image_psnr_uses_the_mean_colour() -> None:
    frames = [torch.zeros(4, 4, 3), torch.ones(4, 4, 3)]
    colour = mean_colour(frames)
    assert colour.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert mean_colour([torch.full((2, 2, 3), 255, dtype=torch.uint8)]).tolist() == pytest.approx([1.0] * 3)
    assert flat_image_psnr(colour, frames) == pytest.approx(-10 * np.log10(0.25))


# --- training runs -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forward_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return forward_capture(tmp_path_factory.mktemp("forward"), texture_size=32)


@pytest.fixture(scope="module")
def orbit_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return orbit_capture(tmp_path_factory.mktemp("orbit"))


@pytest.fixture(scope="module")
def flat_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    """A video of one grey wall with a little sensor noise, posed as the forward-facing clip."""
    rng = np.random.default_rng(3)
    noisy = np.clip(128 + rng.normal(0, 2.0, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    return posed_scene(tmp_path_factory.mktemp("flat"), forward_cameras(FRAMES, WIDTH, HEIGHT),
                       TabletopScene(0, texture_size=16), image=noisy)


def test_tensorf_on_a_flat_video_fails_instead_of_finishing(flat_scene: SceneData, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="learned nothing from this video"):
        train_tensorf(flat_scene, tiny_config(), tmp_path, save_iterations=[], device="cpu")
    assert not (tmp_path / "checkpoints" / f"{MIN_JUDGED_ITERATIONS}.th").exists()  # never "done"


def test_tensorf_that_cannot_grow_density_fails(forward_scene: SceneData, tmp_path: Path) -> None:
    # Grid frozen at its near-empty start: what the real clip ended as (no density above the threshold).
    config = replace(tiny_config(), lr_grid=0.0, ndc_density_shift=-10.0)
    with pytest.raises(TrainingError, match="no part of the scene became solid"):
        train_tensorf(forward_scene, config, tmp_path, save_iterations=[], device="cpu")


def test_gaussians_all_pruned_fail_with_the_learned_nothing_message(orbit_scene: SceneData, tmp_path: Path) -> None:
    config = replace(GaussianConfig(), iterations=MIN_JUDGED_ITERATIONS, max_long_side=32, sh_degree=0,
                     densify_start=5, densify_every=5, densify_stop=50, prune_opacity=1.0, max_gaussians=2000)
    with pytest.raises(TrainingError, match="learned nothing from this video: training removed every gaussian"):
        train_gaussians(orbit_scene, config, tmp_path, save_iterations=[], device="cpu")


def test_gaussians_on_a_flat_video_fail(flat_scene: SceneData, tmp_path: Path) -> None:
    config = replace(GaussianConfig(), iterations=MIN_JUDGED_ITERATIONS, max_long_side=WIDTH, sh_degree=0,
                     densify_start=50, densify_every=50, densify_stop=150, max_gaussians=2000, eval_every=5)
    with pytest.raises(TrainingError, match="learned nothing from this video"):
        train_gaussians(flat_scene, config, tmp_path, save_iterations=[], device="cpu")


def test_a_run_too_short_to_judge_blames_its_length(forward_scene: SceneData, tmp_path: Path) -> None:
    config = replace(tiny_config(20), lr_grid=0.0, ndc_density_shift=-10.0)
    with pytest.raises(TrainingError, match="learned nothing in 20 iterations"):
        train_tensorf(forward_scene, config, tmp_path, save_iterations=[], device="cpu")
