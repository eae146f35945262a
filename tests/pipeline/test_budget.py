"""The gaussian budget (``gaussian/budget.py``) on the tiny scene of known gaussians: whatever the strategy and
however much the content asks for, the count never passes the preset's ramp at any iteration, and where
growth is wanted (a gradient threshold of 0 makes adaptive densification want every gaussian doubled) it
follows the ramp exactly, so a step's cost is a function of the preset and the iteration."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.support.captures import CONFIG, make_tiny_scene
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.gaussian.budget import count_cap
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.train import GaussianTraining

CAP = 1400  # the tiny scene starts from 1000 gaussians (300 points topped up with random ones)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return make_tiny_scene(tmp_path_factory.mktemp("tiny_scene"))


def test_the_ramp_runs_from_the_initial_count_to_the_cap() -> None:
    cfg = replace(CONFIG, max_gaussians=2000, densify_start=10, densify_stop=30)
    assert [count_cap(cfg, step, 1000) for step in (1, 10, 15, 20, 30, 31, 500)] == [
        1000, 1000, 1250, 1500, 2000, 2000, 2000]
    assert count_cap(cfg, 20, 2500) == 2000  # never above the cap, even for a run that started above it
    assert count_cap(replace(cfg, max_gaussians=500), 20, 800) == 500


@pytest.mark.parametrize("config", [replace(CONFIG, strategy="adaptive", densify_grad_threshold=0.0),
                                    replace(CONFIG, strategy="mcmc")], ids=["adaptive", "mcmc"])
def test_the_count_never_passes_the_ramp_and_follows_it_where_growth_is_wanted(
        scene: SceneData, config: GaussianConfig, tmp_path_factory: pytest.TempPathFactory) -> None:
    config = replace(config, max_gaussians=CAP)
    training = GaussianTraining(scene, config, tmp_path_factory.mktemp(config.strategy), torch.device("cpu"))
    initial = len(training.gaussians)
    assert initial < CAP
    counts = []
    for _ in range(config.iterations):
        training.train_step()
        counts.append(len(training.gaussians))
    ramp = [count_cap(config, step, initial) for step in range(1, config.iterations + 1)]
    assert all(n <= r for n, r in zip(counts, ramp, strict=True)), list(zip(counts, ramp, strict=True))
    refinements = range(config.densify_start + config.densify_every, config.densify_stop + 1, config.densify_every)
    assert [counts[step - 1] for step in refinements] == [ramp[step - 1] for step in refinements]
    assert counts[config.densify_stop - 1] == CAP
