"""Densification reads the opacity the renderer draws (after the 3D filter).

The bug: opacity resets and pruning used the raw opacity. A reset to 0.01 put every gaussian whose filter
coefficient is below 0.39 under the rasterizer's 1/255 cut, where it gets no gradient and can never recover,
while 0.01 stayed above the pruning threshold, so those gaussians filled the budget until the end (standard on
the 10 s portrait clip, bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.antialias import apply_filter
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.model import Gaussians
from vidscene.pipeline.gaussian.project import ALPHA_MIN
from vidscene.pipeline.gaussian.render import render
from vidscene.pipeline.gaussian.render_output import RenderOutput
from vidscene.pipeline.gaussian.strategy import RESET_OPACITY, DensifyStrategy
from vidscene.pipeline.gaussian.train import make_optimizers

CONFIG = replace(GaussianConfig(), iterations=400, densify_start=10, densify_every=10, densify_stop=200,
                 opacity_reset_every=100, max_gaussians=1000)
CAMERA = Camera(width=48, height=40, fx=60.0, fy=60.0, cx=24.0, cy=20.0, R=np.eye(3), t=np.zeros(3))


def _gaussians(scales: list[float], opacities: list[float], variance: float) -> Gaussians:
    """Isotropic gaussians in a row 3 units in front of ``CAMERA``, each with the same 3D filter."""
    n = len(scales)
    xs = torch.linspace(-0.8, 0.8, n)
    params = {
        "means": torch.stack([xs, torch.zeros(n), torch.full((n,), 3.0)], dim=1),
        "scales": torch.log(torch.tensor(scales))[:, None].repeat(1, 3),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        "opacities": torch.logit(torch.tensor(opacities)),
        "sh0": torch.rand(n, 1, 3, generator=torch.Generator().manual_seed(0)),
        "shN": torch.zeros(n, 3, 3),
    }
    return Gaussians({k: v.requires_grad_(True) for k, v in params.items()}, torch.full((n,), variance))


def _render(g: Gaussians) -> torch.Tensor:
    with torch.no_grad():
        return render(*g.activated(), CAMERA, sh_degree=0, background=torch.zeros(3), backend="cpu").image


def _no_render_output(n: int) -> RenderOutput:
    """What ``step_post_backward`` reads after densification stopped: nothing of it (no statistics kept)."""
    return RenderOutput(image=torch.zeros(1, 1, 3), alpha=torch.zeros(1, 1), depth=None,
                        means2d=torch.zeros(n, 2), radii=torch.zeros(n, dtype=torch.int32), width=1, height=1)


def test_drawn_opacity_is_the_filtered_one() -> None:
    g = _gaussians([0.002, 0.2], [0.5, 0.5], variance=1e-4)
    _, expected = apply_filter(torch.exp(g.params["scales"].detach()), torch.full((2,), 0.5), g.filter_variances)
    torch.testing.assert_close(g.drawn_opacities(), expected)
    assert float(g.drawn_opacities()[0]) < 0.05 < float(g.drawn_opacities()[1])  # the small one is dimmed


def test_a_reset_leaves_small_gaussians_drawable() -> None:
    # Filter coefficient of the small gaussian: (0.002^2 / (0.002^2 + 1e-4))^1.5, about 0.008.
    g = _gaussians([0.002, 0.2, 0.2], [0.9, 0.9, 0.005], variance=1e-4)
    before = g.drawn_opacities()
    assert float(before[0]) * RESET_OPACITY / 0.9 < ALPHA_MIN  # what the raw reset did: below the cut
    strategy = DensifyStrategy(CONFIG, 1.0, torch.Generator())
    strategy.reset_opacity(g, make_optimizers(g, CONFIG, 1.0))
    after = g.drawn_opacities()
    torch.testing.assert_close(after, torch.minimum(before, torch.tensor(RESET_OPACITY)), rtol=1e-4, atol=1e-7)
    assert float(after[0]) > ALPHA_MIN  # still drawn, so it can still learn
    # under the cap: untouched
    assert float(g.params["opacities"].detach()[2]) == float(torch.logit(torch.tensor(0.005)))


def test_pruning_reads_the_drawn_opacity() -> None:
    # Both raw opacities are 0.5; the first is drawn at ~0.004, under prune_opacity.
    g = _gaussians([0.002, 0.2], [0.5, 0.5], variance=1e-4)
    strategy = DensifyStrategy(CONFIG, 1.0, torch.Generator())
    state = {"grad2d": torch.zeros(2), "count": torch.ones(2)}
    stats = strategy.refine(g, make_optimizers(g, CONFIG, 1.0), state, step=20)
    assert (stats.pruned, len(g)) == (1, 1)


def test_after_densification_gaussians_that_draw_nothing_go_and_no_pixel_changes() -> None:
    # 0.001 drawn at ~1e-4, 0.003 at ~0.003 (both under 1/255), 0.2 at 0.5.
    g = _gaussians([0.001, 0.003, 0.2, 0.2], [0.9, 0.9, 0.5, 0.5], variance=4e-4)
    drawn = g.drawn_opacities()
    assert int((drawn < ALPHA_MIN).sum()) == 2
    image = _render(g)
    opts = make_optimizers(g, CONFIG, 1.0)
    strategy = DensifyStrategy(CONFIG, 1.0, torch.Generator())
    state = strategy.initial_state(4, torch.device("cpu"))
    assert strategy.step_post_backward(g, opts, state, 205, _no_render_output(4)) is None  # not a refine step
    stats = strategy.step_post_backward(g, opts, state, 210, _no_render_output(4))
    assert stats is not None and (stats.pruned, stats.total) == (2, 2)
    assert state["count"].shape == (2,)
    assert opts["means"].param_groups[0]["params"][0] is g.params["means"]
    g.filter_variances = torch.full((2,), 4e-4)  # as the trainer recomputes it after every change of N
    assert torch.equal(_render(g), image)


def test_a_model_that_draws_nothing_is_left_for_the_collapse_checks() -> None:
    g = _gaussians([0.001, 0.001], [0.9, 0.9], variance=4e-4)
    strategy = DensifyStrategy(CONFIG, 1.0, torch.Generator())
    state = strategy.initial_state(2, torch.device("cpu"))
    assert strategy.step_post_backward(g, make_optimizers(g, CONFIG, 1.0), state, 210, _no_render_output(2)) is None
    assert len(g) == 2


def test_a_reset_in_the_step_that_densified_reads_the_new_filter() -> None:
    """Standard refines and resets at 3000: the reset must see the filter of the new gaussian count (the
    strategy calls ``on_edit`` after every change of N; the first run of this code stopped there)."""
    g = _gaussians([0.002, 0.2, 0.2], [0.9, 0.9, 0.001], variance=1e-4)

    def refilter(gaussians: Gaussians) -> None:
        gaussians.filter_variances = torch.full((len(gaussians),), 1e-4)

    strategy = DensifyStrategy(CONFIG, 1.0, torch.Generator(), on_edit=refilter)
    state = strategy.initial_state(3, torch.device("cpu"))
    state["grad2d"] += 1.0  # every gaussian asks for densification
    stats = strategy.step_post_backward(g, make_optimizers(g, CONFIG, 1.0), state, CONFIG.opacity_reset_every,
                                        _no_render_output(3))
    assert stats is not None and stats.pruned == 1 and len(g) > 2
    assert float(g.drawn_opacities().max()) <= RESET_OPACITY + 1e-6
