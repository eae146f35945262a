"""The anti-needle term (loss.needle_penalty) lowers the needle share on the synthetic orbit, at no cost in fit."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.support.synthetic import SyntheticScene, orbit_cameras, posed_scene
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.gaussian.loss import needle_penalty, needle_share
from vidscene.pipeline.gaussian.train import GaussianTraining
from vidscene.pipeline.presets import PRESETS


@pytest.fixture(scope="module")
def orbit(tmp_path_factory: pytest.TempPathFactory) -> SceneData:
    root = tmp_path_factory.mktemp("needle-orbit")
    return posed_scene(root / "frames", orbit_cameras(12, 64, 48), SyntheticScene(0), points_per_frame=60)


def test_needle_penalty_counts_only_the_long_axis_against_the_middle_one() -> None:
    scales = torch.tensor([[1.0, 1.0, 1.0], [0.01, 1.0, 1.0], [20.0, 1.0, 1.0], [0.1, 0.1, 5.0]])
    # a ball and a flat disc cost nothing; the needles 20/1 - 10 and 5/0.1 - 10
    assert float(needle_penalty(scales, 10.0)) == pytest.approx((10.0 + 40.0) / 4)
    opacities = torch.tensor([1.0, 1.0, 0.5, 0.5])
    assert needle_share(scales, opacities) == pytest.approx(1.0 / 3.0)
    assert needle_share(torch.zeros(0, 3), torch.zeros(0)) == 0.0


def _needle_share_after(orbit: SceneData, tmp_path: Path, weight: float, steps: int = 60) -> tuple[float, float]:
    cfg = replace(PRESETS["preview"].gaussian.scaled_to(steps), max_long_side=64, max_gaussians=3000,
                  needle_weight=weight, eval_every=8)
    runner = GaussianTraining(orbit, cfg, tmp_path, torch.device("cpu"))
    with torch.no_grad():  # plant needles: every third gaussian 30x longer along one axis, like a fitted streak
        scales = runner.gaussians.params["scales"]
        scales[::3, 0] += math.log(30.0)
    _, _, s, o, _ = runner.gaussians.activated()
    assert needle_share(s, o) > 0.25
    for _ in range(steps):
        runner.train_step()
    _, _, s, o, _ = runner.gaussians.activated()
    return needle_share(s, o), runner.evaluate()["psnr"]


def test_the_anti_needle_term_lowers_the_needle_share_on_the_synthetic_orbit(orbit: SceneData,
                                                                            tmp_path: Path) -> None:
    share_off, psnr_off = _needle_share_after(orbit, tmp_path / "off", 0.0)
    share_on, psnr_on = _needle_share_after(orbit, tmp_path / "on", PRESETS["preview"].gaussian.needle_weight
                                            or 0.05)
    assert share_off > 0.02, share_off  # the photometric loss alone keeps some of them
    assert share_on < 0.5 * share_off, (share_on, share_off)
    assert psnr_on > psnr_off - 0.5, (psnr_on, psnr_off)
