"""Tiny captures and configs that training tests run in seconds: the TensoRF captures and config of the
capture-shape and collapse tests, and the gaussian config and scene of known gaussians that the gaussian
training, evaluation and schedule tests share; and the working-size quality of what they train."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.support.synthetic import (
    SyntheticScene,
    TabletopScene,
    forward_cameras,
    look_at_rotation,
    orbit_cameras,
    posed_scene,
)
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.collapse import flat_image_psnr, mean_colour
from vidscene.pipeline.config import PipelineConfig
from vidscene.pipeline.evaluate import Quality, evaluation_views
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.render import render
from vidscene.pipeline.gaussian.sh import rgb_to_sh0
from vidscene.pipeline.methods import METHODS
from vidscene.pipeline.tensorf.config import TensorfConfig
from vidscene.pipeline.training import TrainResult

WIDTH, HEIGHT, FRAMES = 48, 36, 20


def tiny_tensorf_config(iterations: int, *, grid_final: int, batch_rays: int) -> TensorfConfig:
    """The preview shape shrunk to seconds: SH appearance, a 16 -> ``grid_final`` grid, every schedule
    event (upsampling, alpha masks) inside the run."""
    return TensorfConfig(iterations=iterations, max_long_side=WIDTH, grid_start=16, grid_final=grid_final,
                         upsample_fractions=(0.2, 0.45), alpha_mask_fractions=(0.3, 0.6),
                         density_components=(4, 4, 4), appearance_components=(8, 8, 8), appearance_decoder="sh",
                         batch_rays=batch_rays, step_ratio=1.0, max_samples=96, eval_every=5)


def forward_capture(directory: Path, *, texture_size: int) -> SceneData:
    """A hand-held sweep over a table: the forward-facing shape."""
    return posed_scene(directory, forward_cameras(FRAMES, WIDTH, HEIGHT), TabletopScene(0, texture_size=texture_size))


def orbit_capture(directory: Path) -> SceneData:
    """A small orbit round the synthetic room."""
    return posed_scene(directory, orbit_cameras(16, 32, 24), SyntheticScene(0, texture_size=64))


CONFIG = replace(GaussianConfig(), iterations=30, max_long_side=64, sh_degree=1, sh_degree_interval=10,
                 densify_start=5, densify_every=5, densify_stop=25, max_gaussians=2000, eval_every=4)


def _look_at(center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera (R, t) of a camera at ``center`` looking at the origin."""
    R = look_at_rotation(np.asarray(center, dtype=np.float64), np.zeros(3))
    return R, -R @ center


def make_tiny_scene(root: Path, n_cams: int = 12, width: int = 64, height: int = 48, n: int = 300) -> SceneData:
    g = torch.Generator().manual_seed(0)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 1.2
    rgb = torch.rand(n, 3, generator=g)
    quats = torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1)
    scales = torch.full((n, 3), 0.06)
    opacities = torch.full((n,), 0.8)
    sh = rgb_to_sh0(rgb)[:, None, :]
    images = root / "images"
    images.mkdir(parents=True)
    cameras = []
    for i in range(n_cams):
        a = math.pi * i / n_cams
        R, t = _look_at(np.array([2.5 * math.sin(a), -0.5, -2.5 * math.cos(a)]))
        cam = Camera(width, height, 60.0, 60.0, width / 2, height / 2, R, t, f"{i:05d}.png")
        out = render(means, quats, scales, opacities, sh, cam, sh_degree=0, background=torch.zeros(3))
        Image.fromarray((out.image.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)).save(images / cam.image_name)
        cameras.append(cam)
    points = (means + 0.03 * torch.randn(n, 3, generator=g)).numpy().astype(np.float32)
    return SceneData(cameras=cameras, images_dir=images, points=points, colors=(rgb.numpy() * 255).astype(np.uint8))


def trained_quality(scene: SceneData, result: TrainResult, method_config: GaussianConfig | TensorfConfig) -> Quality:
    """The quality the product reports for a training result: its final checkpoint measured at working size by
    the method's own evaluation (what ``metrics/<iteration>.json`` records), the one PSNR a checkpoint has."""
    mode = "gaussian" if isinstance(method_config, GaussianConfig) else "tensorf"
    config = replace(PipelineConfig(device="cpu"), **{mode: method_config})
    return METHODS[mode].evaluate(result.checkpoint, scene, config)


def flat_quality_psnr(scene: SceneData, eval_every: int) -> float:
    """PSNR of the best flat image (the frames' own mean colour) on the frames ``trained_quality`` measures on:
    the figure a model that learned nothing would reach."""
    _, images, _ = evaluation_views(scene, eval_every)
    return flat_image_psnr(mean_colour(images), list(images))
