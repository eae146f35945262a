"""People walking through a capture stay out of the scene: the disturbed walk-around of ``bench/capture.py`` at a
tiny size, trained at the true poses with the settings the product picks for it, against the same training
without the robust loss and against the capture filmed without the people.

The capture is ``tests.support.crowd``'s (three people crossing the room, auto-exposure and white-balance
drift, motion blur, noise), filmed at ``WIDTH`` x ``HEIGHT`` over ``FRAMES`` frames of the same 5 s walk. SfM is
left out (true poses, the room's true surface as sparse points: ``posed_scene``) so that its cost and its
randomness do not decide the figures. The training settings are the product's: the preview preset's gaussian
schedule scaled to ``ITERATIONS``, through ``scene.training_config`` with the capture check of these very
frames (which finds the exposure drifting and so turns the per-frame colour maps on), at this capture's size.
The one change in the other arm is ``robust_start=0``, the robust loss off.

Two measures of what a model kept of the people (``tests.support.crowd``):

- **kept share** (what the assertions use): in the frames where people cover at least ``PEOPLE_SHARE`` of the
  pixels, the share of the people's pixels where the model drawn at that frame's pose is nearer the person
  than the room behind. A model of the clean capture keeps 2-4% (chance), one of the disturbed capture without
  the robust loss 52-64% (three seeds);
- **swept opacity** (``bench/capture.py``'s): the opacity of gaussians whose centres lie in the volume the
  people walked through. At this size it does not see the people: without the robust loss it was 0.8-5.6,
  the clean capture's 0.9-4.6 (three seeds; bench/RESULTS.md, "the disturbed capture in the default test
  run"): the gaussians that draw the people are not where they walked. Reported in the messages only.

Issue 21 asks that the product's training leave the people clearly out (here: at most ``ROBUST_SHARE`` of
what training without the robust loss keeps). It does not yet at this size: over three seeds it kept 0.95-1.05x
of what training without the robust loss kept. The robust loss's 8-pixel blocks and its bar of 4x the frame's
median residual flag 0.3-7.5% of a frame on average, while the people cover 15-24% of 19 frames (with a bar of
2.5x: 0.57x on seed 0). That assertion is a strict ``xfail``: it fails the run the day it passes, to be turned
into a plain test.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.crowd import (
    WALK_SECONDS,
    CaptureName,
    Filming,
    PeopleInView,
    SweptOpacity,
    capture_cameras,
    swept_opacity,
)
from tests.support.synthetic import posed_scene, posed_similarity
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.capture_check import CaptureReport, check_frames
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.model import Gaussians
from vidscene.pipeline.gaussian.render import render
from vidscene.pipeline.gaussian.train import train_gaussians
from vidscene.pipeline.poses import Similarity
from vidscene.pipeline.presets import preset_config
from vidscene.pipeline.scene import training_config

WIDTH, HEIGHT, FRAMES = 128, 72, 30
TEXTURE_SIZE = 64  # the room's textures: a 128-pixel frame resolves little of the benchmark's 512
ITERATIONS = 600
MAX_GAUSSIANS = 3000
SEED = 0
PEOPLE_SHARE = 0.05  # frames where the people cover at least this share of the pixels are scored
ROBUST_SHARE = 0.6  # issue 21: the product keeps at most this share of what training without the robust loss keeps
CLEAN_KEPT = 0.1  # the clean capture's model "keeps" people only by chance (2-4% seen)
PLAIN_KEPT = 0.3  # training without the robust loss keeps the people in at least this share of their pixels


@dataclass(frozen=True)
class Filmed:
    """A capture as training receives it, what the capture check said of its frames, the similarity from the
    true world frame into the training frame, and the filming (the truth about where the people are)."""

    scene: SceneData
    report: CaptureReport
    to_model: Similarity
    filming: Filming


@dataclass(frozen=True)
class Kept:
    """What one trained model kept of the people."""

    share: float  # mean kept share over the frames with people (of the disturbed capture)
    swept: SweptOpacity
    masked: float  # mean share of the training frames the robust loss left out at their last step

    def __str__(self) -> str:
        return (f"kept {self.share:.3f}, swept opacity {self.swept.opacity:.2f} {self.swept.by_walker}, "
                f"masked {self.masked:.3f}")


def film(directory: Path, name: CaptureName, seed: int = SEED) -> Filmed:
    """``name``'s frames at the tiny size, posed at the true cameras, and the capture check of those frames."""
    cameras = capture_cameras(FRAMES, WIDTH, HEIGHT)
    filming = Filming(name, cameras, fps=FRAMES / WALK_SECONDS, seed=seed, texture_size=TEXTURE_SIZE)
    scene = posed_scene(directory, cameras, filming.room, frames=filming.frame, seed=seed)
    paths = [scene.images_dir / c.image_name for c in scene.cameras]
    report = check_frames(paths, list(range(FRAMES)), [i / filming.fps for i in range(FRAMES)])
    return Filmed(scene=scene, report=report, to_model=posed_similarity(cameras), filming=filming)


def product_settings(filmed: Filmed, seed: int = SEED) -> GaussianConfig:
    """What the train stage would use on this capture at preview (``scene.training_config``), shortened to
    ``ITERATIONS`` along the preset's own schedule and sized to the capture."""
    config = training_config(preset_config("preview", device="cpu"), filmed.report).gaussian
    return replace(config.scaled_to(ITERATIONS), max_long_side=max(WIDTH, HEIGHT), max_gaussians=MAX_GAUSSIANS,
                   seed=seed)


def people_views(filmed: Filmed) -> list[PeopleInView]:
    """The truth about the people in the frames where they cover at least ``PEOPLE_SHARE`` of the pixels."""
    views = [filmed.filming.people_in_view(i) for i in range(FRAMES)]
    return [v for v in views if v.mask.mean() >= PEOPLE_SHARE]


def train_and_measure(filmed: Filmed, config: GaussianConfig, work_dir: Path, people: list[PeopleInView]) -> Kept:
    """Train on ``filmed`` with ``config``; what the final model kept of the ``people``."""
    result = train_gaussians(filmed.scene, config, work_dir, save_iterations=[], device="cpu")
    checkpoint = CHECKPOINTS.load(result.checkpoint)
    means, quats, scales, opacities, sh = Gaussians.from_state(checkpoint["params"], "cpu").activated()
    shares = []
    with torch.no_grad():
        for view in people:
            drawn = render(means, quats, scales, opacities, sh, filmed.scene.cameras[view.index],
                           sh_degree=checkpoint["active_sh_degree"], background=torch.zeros(3)).image
            shares.append(view.kept_share(drawn.clamp(0.0, 1.0).numpy()))
    swept = swept_opacity(means.detach().numpy(), opacities.detach().numpy(), filmed.to_model)
    return Kept(share=float(np.mean(shares)), swept=swept, masked=float(checkpoint["masked_share"].mean()))


@pytest.fixture(scope="module")
def disturbed(tmp_path_factory: pytest.TempPathFactory) -> Filmed:
    return film(tmp_path_factory.mktemp("disturbed"), "disturbed")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Filmed:
    return film(tmp_path_factory.mktemp("clean"), "clean")


@pytest.fixture(scope="module")
def kept(disturbed: Filmed, clean: Filmed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Kept]:
    """The three trainings: the product's on the disturbed capture, the same without the robust loss, and the
    product's on the clean capture (all measured against the disturbed capture's people)."""
    root = tmp_path_factory.mktemp("trained")
    config = product_settings(disturbed)
    people = people_views(disturbed)
    return {"product": train_and_measure(disturbed, config, root / "product", people),
            "without_robust": train_and_measure(disturbed, replace(config, robust_start=0), root / "plain", people),
            "clean": train_and_measure(clean, product_settings(clean), root / "clean", people)}


def _figures(kept: dict[str, Kept]) -> str:
    return "; ".join(f"{arm}: {figures}" for arm, figures in kept.items())


def test_the_capture_check_sees_the_drift_so_the_product_trains_with_colour_maps_and_the_robust_loss(
        disturbed: Filmed, clean: Filmed) -> None:
    assert "exposure_changes" in {p.code for p in disturbed.report.problems}
    config = product_settings(disturbed)
    assert 0 < config.robust_start < ITERATIONS and config.appearance_lr > 0
    assert product_settings(clean).appearance_lr == 0  # a steady capture trains without the maps


def test_a_model_of_the_disturbed_capture_shows_the_people_and_one_of_the_clean_capture_does_not(
        kept: dict[str, Kept]) -> None:
    """The measure sees ghosts: without the robust loss the people are in the model, without the people not."""
    assert kept["without_robust"].share >= PLAIN_KEPT, _figures(kept)
    assert kept["clean"].share <= CLEAN_KEPT, _figures(kept)
    assert kept["without_robust"].masked == 0.0 and kept["clean"].share < kept["product"].share, _figures(kept)


@pytest.mark.xfail(strict=True, reason="issue 21: at this size the robust loss flags too little of the people "
                                       "to keep them out (bench/RESULTS.md, the disturbed capture in the default "
                                       "test run)")
def test_the_product_keeps_the_people_clearly_out_of_the_scene(kept: dict[str, Kept]) -> None:
    assert kept["product"].masked > 0.0, _figures(kept)  # the robust loss did flag something
    assert kept["product"].share <= ROBUST_SHARE * kept["without_robust"].share, _figures(kept)
