"""Which side of a high residual moved (``gaussian/consensus.py``): over the ray-cast room at its true depth, a
patch in the judged frame alone disagrees with the neighbours (this frame's passer-by: masked), the room
agrees (nothing to mask), and a patch that only some neighbours show does not make the judged frame disagree
(the model's ghost: the judged frame must stay in the loss to correct it). Training ANDs the masks with the
robust loss's blocks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.captures import CONFIG, make_tiny_scene
from tests.support.synthetic import SyntheticScene, orbit_cameras
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.consensus import ConsensusSettings, consensus_mask, neighbour_offsets
from vidscene.pipeline.gaussian.robust import RobustSettings
from vidscene.pipeline.gaussian.train import GaussianTraining

WIDTH, HEIGHT = 160, 90
FRAMES = 25  # the judged frame, MIDDLE, sees neighbours 1, 2 and 3 frames (2 to 6 degrees of orbit) away
MIDDLE = 12
PATCH = (slice(24, 64), slice(16, 48))  # rows, columns (whole 8-pixel blocks): over the wall and a box's edge
Room = tuple[list[Camera], list[torch.Tensor], list[torch.Tensor]]  # cameras, frames, depths


@pytest.fixture(scope="module")
def room() -> Room:
    """Frames 2 degrees apart on the orbit around the room, and the depth of its surface in each."""
    scene = SyntheticScene(0, texture_size=256)
    cameras = orbit_cameras(61, WIDTH, HEIGHT, orbit_degrees=120.0, start_degrees=-60.0)[18:18 + FRAMES]
    images = [torch.from_numpy(scene.render(c).astype(np.float32) / 255.0) for c in cameras]
    depths = [torch.from_numpy(scene.depth(c)) for c in cameras]
    return cameras, images, depths


def _patched(images: list[torch.Tensor], frames: set[int]) -> list[torch.Tensor]:
    """``images`` with a blocky textured patch at the same pixels in ``frames``."""
    rng = np.random.default_rng(3)
    patch = torch.from_numpy(np.kron(rng.uniform(0.1, 0.9, (5, 4, 3)), np.ones((8, 8, 1))).astype(np.float32))
    out = []
    for i, image in enumerate(images):
        copy = image.clone()
        if i in frames:
            copy[PATCH] = patch
        out.append(copy)
    return out


def test_neighbours_reach_a_share_of_the_capture_both_ways() -> None:
    assert neighbour_offsets(FRAMES, ConsensusSettings()) == [-3, -2, -1, 1, 2, 3]
    assert neighbour_offsets(150, ConsensusSettings()) == [-18, -12, -6, 6, 12, 18]
    assert neighbour_offsets(4, ConsensusSettings()) == [-1, 1]


def test_the_room_agrees_with_its_neighbours(room: Room) -> None:
    cameras, images, depths = room
    mask = consensus_mask(MIDDLE, cameras, images.__getitem__, depths)
    assert mask.shape == (HEIGHT, WIDTH)
    # What is flagged are single blocks at depth edges and at the border few neighbours see (3.6%), never a
    # blob: the robust loss's own blocks, which it is ANDed with, must be blobs.
    assert float(mask.float().mean()) < 0.05


def test_something_in_this_frame_alone_disagrees(room: Room) -> None:
    cameras, images, depths = room
    # Exposure differs between frames as a phone's does: the gain per neighbour takes it out.
    frames = [image * (0.8 + 0.04 * (i % 5)) for i, image in enumerate(_patched(images, {MIDDLE}))]
    mask = consensus_mask(MIDDLE, cameras, frames.__getitem__, depths)
    assert float(mask[PATCH].float().mean()) > 0.8
    outside = mask.clone()
    outside[PATCH] = False
    assert float(outside.float().mean()) < 0.05


def test_a_ghost_seen_by_a_few_neighbours_does_not_make_this_frame_disagree(
        room: Room) -> None:
    """Two of the six neighbours show the patch where this frame shows the room: the room is the majority, so
    this frame agrees, and training keeps it in the loss where the model draws the patch."""
    cameras, images, depths = room
    frames = _patched(images, {MIDDLE - 1, MIDDLE + 1})
    mask = consensus_mask(MIDDLE, cameras, frames.__getitem__, depths)
    assert float(mask[PATCH].float().mean()) < 0.1


def test_without_neighbours_the_residual_decides(room: Room) -> None:
    cameras, images, depths = room
    empty = [torch.zeros_like(d) for d in depths]  # the model draws nothing yet
    assert bool(consensus_mask(MIDDLE, cameras, images.__getitem__, empty).all())


def test_training_masks_only_blocks_both_the_residual_and_the_neighbours_flag(tmp_path: Path) -> None:
    scene = make_tiny_scene(tmp_path)
    config = replace(CONFIG, robust_start=1, consensus_start=1, consensus_every=1000)
    training = GaussianTraining(scene, config, tmp_path, torch.device("cpu"))
    training.train_step()
    assert training.consensus_step == 1 and sorted(training.consensus) == training.train_idx
    view = training.train_idx[1]
    height, width = training.images.shape[1:3]
    training.consensus[view] = torch.zeros((height, width), dtype=torch.bool)
    training.consensus[view][:, : width // 2] = True  # the neighbours disagree with the left half only
    training.robust = RobustSettings(factor=4.0, floor=0.1, block=2, max_share=1.0)
    target = training.image(view)
    band = slice(height // 3, 2 * height // 3)
    pred = target.clone()
    pred[band] = (target[band] + 0.5) % 1.0  # the residual flags this band, both halves
    kept = training._static_part(pred, target, view)
    left, right = slice(0, width // 2), slice(width // 2, width)
    assert torch.equal(kept[band, left], pred[band, left])  # both flag it: masked (no residual, no gradient)
    assert torch.equal(kept[band, right], target[band, right])  # the neighbours agree: the frame corrects the model
    training.step = 999  # not yet due again
    assert not training._consensus_due()
    training.step = 1001
    assert training._consensus_due()
