"""Settings of TensoRF training: the tensorf method's section of ``PipelineConfig``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TensorfConfig:
    """TensoRF (VM decomposition) training; defaults follow the paper, presets shrink grid and batch for CPUs.

    Schedule points (grid upsampling, alpha-mask updates) are fractions of ``iterations`` so that a user's
    ``total_iterations`` keeps the coarse-to-fine schedule in proportion. Measured with bench/tensorf.py on the
    synthetic orbit (SfM poses, held-out frames): preview on 2 shared CPU cores 26.5 dB in 270-590 s of
    training (load average 4-11); quality cut to 5000 iterations at 320 px on an H200 32.7 dB in 170 s. On the
    forward-facing clip (``--shape forward``, an NDC field): preview 31.6 dB in 285 s (load 3).
    Forward-facing captures train in NDC (``space``); the ``ndc_*`` fields replace their world counterparts there.
    """

    iterations: int = 30000
    max_long_side: int = 800  # training resolution on the long side
    grid_start: int = 128  # voxels per axis at the start (cube root of the initial voxel count)
    grid_final: int = 300  # voxels per axis after the last upsample
    upsample_fractions: tuple[float, ...] = (2000 / 30000, 3000 / 30000, 4000 / 30000, 5500 / 30000,
                                             7000 / 30000)
    alpha_mask_fractions: tuple[float, ...] = (2000 / 30000, 4000 / 30000)
    density_components: tuple[int, int, int] = (16, 16, 16)
    appearance_components: tuple[int, int, int] = (48, 48, 48)
    appearance_decoder: Literal["mlp", "sh"] = "mlp"  # sh: features are SH coefficients, no network (fast)
    appearance_dim: int = 27  # features fed to the appearance MLP
    mlp_hidden: int = 128
    feature_pe: int = 2  # positional-encoding frequencies on appearance features
    view_pe: int = 2  # positional-encoding frequencies on view directions
    batch_rays: int = 4096
    step_ratio: float = 0.5  # ray-marching step in voxels
    max_samples: int = 1024  # per ray, whatever the grid size
    lr_grid: float = 0.02
    lr_network: float = 1e-3
    lr_decay_ratio: float = 0.1  # learning rates decay exponentially to this fraction at the last iteration
    l1_weight_initial: float = 8e-5  # density sparsity, before the first alpha mask
    l1_weight_rest: float = 4e-5
    tv_weight_density: float = 0.0  # total variation on the density planes (helps real, sparse-view scenes)
    tv_weight_appearance: float = 0.0
    alpha_mask_threshold: float = 1e-4  # voxels whose opacity is below this are skipped while marching
    density_shift: float = -10.0  # softplus shift so that a fresh grid starts nearly empty
    # In NDC (forward-facing captures) fields start denser: with -10 the density never grew there, and the
    # alpha mask must sit above what empty space keeps of that start (an opacity of 0.006-0.016 per preview
    # step; at 1e-4 the mask kept 99.95% of the box). See bench/RESULTS.md.
    ndc_density_shift: float = -5.0
    ndc_alpha_mask_threshold: float = 0.02
    distance_scale: float = 25.0
    eval_every: int = 8  # every Nth frame is held out for evaluation
    seed: int = 0
    # Where the field lives: "auto" picks NDC for forward-facing captures and the world elsewhere (tensorf/space.py).
    space: Literal["auto", "world", "ndc"] = "auto"
