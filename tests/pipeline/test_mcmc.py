"""The bounded-cost strategy (``gaussian/mcmc.py``) on the tiny scene of known gaussians: the count keeps to the
preset's cap at every step, relocation alone keeps it constant, copies draw what their source drew, and a short
run learns as much as the adaptive strategy's test asks of it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

from tests.support.captures import CONFIG, make_tiny_scene
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.gaussian.mcmc import MCMCStrategy, relocated
from vidscene.pipeline.gaussian.train import GaussianTraining

MCMC = replace(CONFIG, strategy="mcmc")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    return make_tiny_scene(tmp_path_factory.mktemp("tiny_scene"))


def _equation_9_factor(o: float, n: int) -> float:
    """The paper's scale factor written as its double sum, independently of the folded table."""
    new = 1.0 - (1.0 - o) ** (1.0 / n)
    denom = sum(math.comb(i - 1, k) * (-1) ** k * new ** (k + 1) / math.sqrt(k + 1)
                for i in range(1, n + 1) for k in range(i))
    return float(o / denom)


def test_copies_draw_together_what_their_source_drew() -> None:
    opacities = torch.tensor([0.9, 0.5, 0.3, 0.95, 0.2])
    copies = torch.tensor([1, 2, 3, 5, 8])
    new_o, new_s = relocated(opacities, torch.ones(5, 3), copies, min_opacity=0.005)
    # N copies at one place let through what the one did: (1 - o')^N = 1 - o
    assert torch.allclose(1 - (1 - new_o) ** copies, opacities, atol=1e-5)
    expected = torch.tensor([_equation_9_factor(float(o), int(n)) for o, n in zip(opacities, copies, strict=True)])
    assert torch.allclose(new_s[:, 0], expected, rtol=1e-4)
    assert new_o[0] == pytest.approx(0.9) and new_s[0, 0] == pytest.approx(1.0)  # one copy: unchanged


@dataclass
class Run:
    counts: list[int]  # the gaussian count before the first step and after each
    initial: dict[str, float]
    final: dict[str, float]


CAP = 1400  # the tiny scene starts from 1000 gaussians (300 points topped up with random ones)


@pytest.fixture(scope="module")
def run(scene: SceneData, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One short mcmc run, step by step: the count after every step, the held-out scores before and after."""
    training = GaussianTraining(scene, replace(MCMC, max_gaussians=CAP), tmp_path_factory.mktemp("mcmc"),
                                torch.device("cpu"))
    initial = training.evaluate()
    counts = [len(training.gaussians)]
    for _ in range(MCMC.iterations):
        training.train_step()
        counts.append(len(training.gaussians))
    return Run(counts, initial, training.evaluate())


def test_the_count_only_grows_and_reaches_the_cap_at_the_end_of_refinement(run: Run) -> None:
    # That it follows the budget's ramp on the way, as adaptive densification must, is test_budget.py's.
    assert run.counts[0] < CAP
    assert run.counts[MCMC.densify_stop] == CAP == max(run.counts)
    assert run.counts == sorted(run.counts)


def test_a_short_mcmc_run_learns_as_much_as_the_adaptive_tests_ask(run: Run) -> None:
    assert run.final["heldout"] == 1.0
    assert run.final["psnr"] > run.initial["psnr"] + 2.0  # the band of test_train_gaussian's straight run
    assert run.final["ssim"] > run.initial["ssim"]


def test_relocation_alone_keeps_the_count_and_revives_the_dead(scene: SceneData, tmp_path: Path) -> None:
    config = replace(MCMC, mcmc_grow=False)
    training = GaussianTraining(scene, config, tmp_path, torch.device("cpu"))
    for _ in range(3):  # some Adam moments to reset
        training.train_step()
    g = training.gaussians
    n = len(g)
    with torch.no_grad():
        g.params["opacities"][:100] = -20.0  # dead
    strategy = MCMCStrategy(config, training.extent, torch.Generator().manual_seed(1))
    stats = strategy.refine(g, training.optimizers, step=config.densify_every)
    assert len(g) == n
    assert (stats.relocated, stats.cloned) == (100, 0)  # relocated, none added
    assert bool((g.drawn_opacities()[:100] > config.mcmc_min_opacity).all())
    moments = training.optimizers["means"].state[g.params["means"]]["exp_avg"]
    assert bool((moments[:100] == 0).all())  # a relocated gaussian starts afresh


@pytest.mark.parametrize("judge_drawn", [False, True])
def test_a_small_gaussian_the_filter_dims_is_alive_unless_judged_as_drawn(scene: SceneData, tmp_path: Path,
                                                                          judge_drawn: bool) -> None:
    """The 3D filter scales a small gaussian's opacity by about ``(s^2 / (s^2 + v))^1.5``: at opacity 0.9 and
    a coefficient of 0.02 it draws 0.018, under a dead threshold of 0.05 but well above the rasterizer's cut.
    Judged by that drawn figure, healthy small gaussians were relocated every refinement (issue 25)."""
    config = replace(MCMC, mcmc_grow=False, mcmc_min_opacity=0.05, mcmc_judge_drawn=judge_drawn)
    training = GaussianTraining(scene, config, tmp_path, torch.device("cpu"))
    g = training.gaussians
    assert g.filter_variances is not None
    with torch.no_grad():
        g.params["opacities"][:] = math.log(0.9 / 0.1)
        g.params["scales"][:50] = 0.5 * torch.log(0.0796 * g.filter_variances[:50, None])  # coefficient 0.02
    drawn = g.drawn_opacities()[:50]
    assert bool(((drawn > 1 / 255) & (drawn < 0.05)).all()), drawn
    stats = MCMCStrategy(config, training.extent, torch.Generator().manual_seed(1)).refine(
        g, training.optimizers, step=config.densify_every)
    assert stats.relocated == (50 if judge_drawn else 0)
