"""The tiny captures and the TensoRF config the capture-shape and collapse tests train on in seconds."""

from __future__ import annotations

from pathlib import Path

from tests.support.synthetic import SyntheticScene, TabletopScene, forward_cameras, orbit_cameras, posed_scene
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import TensorfConfig

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
