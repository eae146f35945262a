"""Masks of what moves with the camera (``flow_masks``): a patch carried along with the camera over the ray-cast
room is flagged, the room itself (boxes in front of walls: parallax) is not; training leaves the masks out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.captures import CONFIG, make_tiny_scene
from tests.support.synthetic import SyntheticScene, orbit_cameras, surface_points
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.flow_masks import FlowMaskSettings, flow_masks, off_static
from vidscene.pipeline.gaussian.train import GaussianTraining

WIDTH, HEIGHT = 160, 90
MIDDLE = 2  # the frame judged: two neighbours on each side, ``gap`` 2 frames (4 degrees of orbit) apart
PATCH = (slice(24, 64), slice(16, 48))  # rows, columns: over the wall and the boxes' left edge


@pytest.fixture(scope="module")
def room() -> tuple[list[Camera], list[np.ndarray], np.ndarray]:
    """Five frames 2 degrees apart on the orbit around the room, and its surface as SfM would have it."""
    scene = SyntheticScene(0, texture_size=256)
    cameras = orbit_cameras(61, WIDTH, HEIGHT, orbit_degrees=120.0, start_degrees=-60.0)[28:33]
    images = [scene.render(c).astype(np.float32) / 255.0 for c in cameras]
    return cameras, images, surface_points(scene, cameras, 400).astype(np.float32)


def _carried(images: list[np.ndarray]) -> list[np.ndarray]:
    """The frames with the same textured patch at the same pixels in each: something the camera carries."""
    rng = np.random.default_rng(3)
    coarse = rng.uniform(0.1, 0.9, (5, 4, 3)).astype(np.float32)
    patch = np.kron(coarse, np.ones((8, 8, 1), dtype=np.float32))
    out = []
    for image in images:
        copy = image.copy()
        copy[PATCH] = patch
        out.append(copy)
    return out


def test_the_static_room_is_not_flagged(room: tuple[list[Camera], list[np.ndarray], np.ndarray]) -> None:
    cameras, images, points = room
    mask = flow_masks(cameras, images, points, frames=[MIDDLE])[MIDDLE]
    assert mask.shape == (HEIGHT, WIDTH)
    assert float(mask.mean()) < 0.01


def test_a_patch_carried_with_the_camera_is_flagged(room: tuple[list[Camera], list[np.ndarray], np.ndarray]) -> None:
    cameras, images, points = room
    mask = flow_masks(cameras, _carried(images), points, frames=[MIDDLE])[MIDDLE]
    assert float(mask[PATCH].mean()) > 0.6  # most of the patch
    outside = mask.copy()
    outside[8:80, 0:64] = False  # the patch with a margin of one block (and a half) around it
    assert float(outside.mean()) < 0.01


def test_the_first_and_last_frames_are_not_judged(room: tuple[list[Camera], list[np.ndarray], np.ndarray]) -> None:
    cameras, images, points = room
    masks = flow_masks(cameras, _carried(images), points, FlowMaskSettings(), frames=[0, 4])
    assert not masks[0].any() and not masks[4].any()  # one neighbour only: a flow error could not be told


def test_off_static_measures_from_the_nearest_static_landing() -> None:
    near = np.zeros((2, 1, 3))
    far = np.zeros((2, 1, 3))
    far[1] = 10.0  # a static point lands 0 to 10 pixels to the right, as its depth goes from near to far
    measured = np.array([[[0.0, 0.0, 3.0]], [[5.0, 14.0, -2.0]]])  # on the segment; past its end; off the line
    assert np.allclose(off_static(measured, near, far)[0], [0.0, 4.0, np.hypot(3.0, 2.0)])


def test_training_leaves_the_carried_masks_out_of_the_loss(tmp_path: Path) -> None:
    """The masks are found once, when the robust loss starts, for every training frame, and what they cover
    is left out of that frame's loss like the robust loss's own blocks."""
    scene = make_tiny_scene(tmp_path)
    training = GaussianTraining(scene, replace(CONFIG, robust_start=1, flow_masks=True), tmp_path, torch.device("cpu"))
    training.train_step()
    assert training.carried is not None and sorted(training.carried) == training.train_idx
    view = training.train_idx[1]
    height, width = training.images.shape[1:3]
    assert all(m.shape == (height, width) for m in training.carried.values())
    training.carried[view] = torch.zeros((height, width), dtype=torch.bool)
    training.carried[view][:, : width // 2] = True  # as if something rode along on the left half
    pred, target = torch.zeros((height, width, 3)), training.image(view)
    kept = training._static_part(pred, target, view)
    assert torch.equal(kept[:, : width // 2], pred[:, : width // 2])  # left half: no residual, no gradient
    assert torch.equal(kept[:, width // 2:], target[:, width // 2:])
    assert float(training.masked_share[view]) >= 0.5
