"""What every view flags is the model's failure (``gaussian/left_out.py``): a patch of wall flagged in every view
that sees it stays in the loss; the same wall flagged in a few views only (a passer-by stood in front of it
there) stays left out; too few views judged say nothing; and the verdicts read the same from a frame of
another size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tests.support.captures import CONFIG, make_tiny_scene
from tests.support.synthetic import LOOK_AT, orbit_cameras
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.left_out import LeftOutHistory
from vidscene.pipeline.gaussian.method import _moving_content
from vidscene.pipeline.gaussian.model import init_from_points
from vidscene.pipeline.gaussian.render import render
from vidscene.pipeline.gaussian.robust import RobustSettings, block_any, block_pixels
from vidscene.pipeline.gaussian.train import GaussianTraining

WIDTH, HEIGHT, BLOCK = 160, 96, 8
CAMERAS = orbit_cameras(12, WIDTH, HEIGHT, orbit_degrees=60.0)
JUDGED = 6


def _wall() -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian centres on a small square around the point every camera looks at, and their opacities."""
    grid = torch.linspace(-0.3, 0.3, 16)
    u, v = torch.meshgrid(grid, grid, indexing="ij")
    centre = torch.as_tensor(LOOK_AT, dtype=torch.float32)
    means = centre + torch.stack([u.reshape(-1), v.reshape(-1), torch.zeros(u.numel())], dim=-1)
    return means, torch.full((means.shape[0],), 0.8)


def _where(means: torch.Tensor, camera: Camera) -> torch.Tensor:
    """The blocks of ``camera`` the centres land in."""
    cam = means.double().numpy() @ camera.R.T + camera.t
    u = cam[:, 0] / cam[:, 2] * camera.fx + camera.cx
    v = cam[:, 1] / cam[:, 2] * camera.fy + camera.cy
    blocks = torch.zeros(((camera.height + BLOCK - 1) // BLOCK, (camera.width + BLOCK - 1) // BLOCK), dtype=torch.bool)
    blocks[torch.as_tensor(v // (camera.height / blocks.shape[0])).long(),
           torch.as_tensor(u // (camera.width / blocks.shape[1])).long()] = True
    return blocks


def _history(flagging: set[int]) -> LeftOutHistory:
    """Every view but the judged one recorded, the wall flagged in ``flagging``."""
    means, _ = _wall()
    history = LeftOutHistory()
    for j, camera in enumerate(CAMERAS):
        if j != JUDGED:
            wall = _where(means, camera)
            history.record(j, wall if j in flagging else torch.zeros_like(wall))
    return history


def test_what_every_view_flags_stays_in_the_loss() -> None:
    means, opacities = _wall()
    flagged = _where(means, CAMERAS[JUDGED])
    failed = _history(set(range(len(CAMERAS)))).failed(flagged, CAMERAS[JUDGED], means, opacities, CAMERAS,
                                                       view=JUDGED)
    assert torch.equal(failed, flagged)


def test_what_a_few_views_flag_stays_left_out() -> None:
    means, opacities = _wall()
    flagged = _where(means, CAMERAS[JUDGED])
    history = _history({2, 3, 9})  # a passer-by in front of the wall in three of the eleven other views
    assert not history.failed(flagged, CAMERAS[JUDGED], means, opacities, CAMERAS, view=JUDGED).any()


def test_faint_gaussians_and_too_few_views_say_nothing() -> None:
    means, opacities = _wall()
    flagged = _where(means, CAMERAS[JUDGED])
    everywhere = _history(set(range(len(CAMERAS))))
    assert not everywhere.failed(flagged, CAMERAS[JUDGED], means, torch.full_like(opacities, 0.01), CAMERAS).any()
    few = LeftOutHistory()
    for j in (0, 1, 2):
        few.record(j, _where(means, CAMERAS[j]))
    assert not few.failed(flagged, CAMERAS[JUDGED], means, opacities, CAMERAS, view=JUDGED).any()


def test_a_frame_of_another_size_reads_the_same_verdicts() -> None:
    means, opacities = _wall()
    larger = CAMERAS[JUDGED].scaled(WIDTH * 2, HEIGHT * 2)  # the quality figure's frames, blocks twice as large
    flagged = torch.zeros(((HEIGHT + BLOCK - 1) // BLOCK, (WIDTH + BLOCK - 1) // BLOCK), dtype=torch.bool)
    flagged |= _where(means, CAMERAS[JUDGED])
    failed = _history(set(range(len(CAMERAS)))).failed(flagged, larger, means, opacities, CAMERAS)
    assert torch.equal(failed, flagged)


def test_the_quality_figure_counts_what_every_training_view_flagged() -> None:
    """A held-out frame where the model got the wall wrong: with every training view flagging the wall too,
    the figure counts it; with a few (a passer-by there), it leaves it out."""
    means, _ = _wall()
    gaussians = init_from_points(means.numpy(), np.full((means.shape[0], 3), 128, np.uint8), CAMERAS, sh_degree=0,
                                 generator=torch.Generator(), min_points=1)
    camera = CAMERAS[JUDGED]
    target = torch.from_numpy(np.random.default_rng(0).uniform(0.3, 0.7, (HEIGHT, WIDTH, 3)).astype(np.float32))
    wall = block_pixels(_where(means, camera), BLOCK, (HEIGHT, WIDTH))
    pred = target.clone()
    pred[wall] = 1.0 - pred[wall] * 0.2
    masks = {}
    for name, flagging in (("everywhere", set(range(len(CAMERAS)))), ("passer-by", {2, 3, 9})):
        moving = _moving_content(GaussianConfig(), camera, {"left_out": _history(flagging).state()}, gaussians,
                                 CAMERAS)
        assert moving is not None
        masks[name] = moving(camera, pred, target)
    assert not masks["everywhere"].any()
    assert bool(masks["passer-by"][wall].all())


def test_the_renders_screen_positions_read_the_same_blocks() -> None:
    """Training passes the centres where the render put them rather than projecting every gaussian again."""
    means, opacities = _wall()
    gaussians = init_from_points(means.numpy(), np.full((means.shape[0], 3), 128, np.uint8), CAMERAS, sh_degree=0,
                                 generator=torch.Generator(), min_points=1)
    camera = CAMERAS[JUDGED]
    out = render(*gaussians.activated(), camera, sh_degree=0, background=torch.zeros(3))
    history = _history(set(range(len(CAMERAS))))
    flagged = _where(means, camera)
    projected = history.failed(flagged, camera, means, opacities, CAMERAS)
    screen = torch.where(out.visible[:, None], out.means2d.detach(), -1.0)
    assert projected.any() and torch.equal(history.failed(flagged, camera, means, opacities, CAMERAS,
                                                          screen=screen), projected)
    culled = torch.full_like(screen, -1.0)
    assert not history.failed(flagged, camera, means, opacities, CAMERAS, screen=culled).any()


def test_blocks_not_judged_keep_their_last_verdict() -> None:
    history = LeftOutHistory()
    first = torch.zeros((4, 6), dtype=torch.bool)
    first[0, 0] = first[3, 5] = True
    history.record(0, first)
    judged = torch.zeros_like(first)
    judged[2:] = True  # this step drew the lower half only
    history.record(0, torch.zeros_like(first), judged)
    assert bool(history.verdicts[0][0, 0] == 1) and bool(history.verdicts[0][3, 5] == 0)
    partial = LeftOutHistory()
    partial.record(1, first, judged)
    assert bool(partial.verdicts[1][0, 0] == -1) and bool(partial.verdicts[1][3, 5] == 1)


def test_block_any_rounds_partial_blocks_up() -> None:
    mask = torch.zeros((10, 17), dtype=torch.bool)
    mask[9, 16] = True
    blocks = block_any(mask, 8)
    assert blocks.shape == (2, 3) and bool(blocks[1, 2]) and int(blocks.sum()) == 1


def test_training_keeps_in_the_loss_what_every_view_flags(tmp_path: Path) -> None:
    """The trainer's wiring: a band the residual flags is left out while the other views do not flag it; once
    they all do, it stays in the loss, and the verdicts travel in the checkpoint."""
    scene = make_tiny_scene(tmp_path)
    training = GaussianTraining(scene, replace(CONFIG, robust_start=1), tmp_path, torch.device("cpu"))
    training.train_step()
    training.robust = RobustSettings(factor=4.0, floor=0.1, block=2, max_share=1.0)
    assert training.left_out is not None
    view = training.train_idx[1]
    target = training.image(view)
    height, width = target.shape[:2]
    band = slice(height // 3, 2 * height // 3)
    pred = target.clone()
    pred[band] = (target[band] + 0.5) % 1.0
    quiet = torch.zeros(((height + 1) // 2, (width + 1) // 2), dtype=torch.bool)
    for j in training.train_idx:
        training.left_out.record(j, quiet)
    left_out = training._static_part(pred, target, view)
    assert torch.equal(left_out[band], pred[band])  # nobody else flags it: this frame's own passer-by
    flagged_everywhere = torch.ones_like(quiet)
    for j in training.train_idx:
        if j != view:
            training.left_out.record(j, flagged_everywhere)
    kept = training._static_part(pred, target, view)
    centre = slice(width // 4, 3 * width // 4)  # the gaussians near the frame's edges may land outside others
    assert torch.equal(kept[band, centre], target[band, centre])  # everyone flags it: the model's failure
    assert float(np.mean([float(training.masked_share[view])])) < 0.2
    restored = GaussianTraining(scene, replace(CONFIG, robust_start=1), tmp_path, torch.device("cpu"))
    restored.restore({**training.checkpoint(), "iteration": training.step, "seconds": 0.0})
    assert restored.left_out is not None
    assert sorted(restored.left_out.verdicts) == sorted(training.left_out.verdicts)
    assert torch.equal(restored.left_out.verdicts[view], training.left_out.verdicts[view])
