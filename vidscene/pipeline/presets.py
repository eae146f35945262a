"""The presets a person picks from, each one literal with every stage's settings on one screen.

A preset is a complete ``PipelineConfig``: what is not written here is the stage's default in
``pipeline.config``. The catalogue (``vidscene.catalogue``) is what the API shows about a preset (its label,
its training budgets, the outputs a form ticks); the check at the bottom of this module refuses to import when
the two disagree on a name or a budget, so a preset cannot be half-added.

The figures behind each choice are in ``docs/measured.md`` and ``bench/RESULTS.md``: ``preview`` is sized for
a few minutes on two CPU cores, ``standard`` for about ten, ``quality`` runs the papers' full schedules and
wants a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from vidscene import catalogue
from vidscene.pipeline.config import Device, ExportConfig, FramesConfig, PipelineConfig, SfmConfig
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.tensorf.config import TensorfConfig

PREVIEW = PipelineConfig(
    preset="preview",
    frames=FramesConfig(target_count=80, max_long_side=320),
    sfm=SfmConfig(max_num_features=2048),
    # bench/gaussian.py (10 s 480x360 orbit, SfM poses, 2 busy cores): 2000 iterations and 60k gaussians gave
    # 34.9 dB held-out in 308 s of training; these settings 34.0 dB in 106 s.
    # No pixel budget: at 30k gaussians a step's cost is mostly per gaussian, and drawing the 4:3 orbit's
    # frames at 240x135's pixels saved nothing (training 42.0 against 42.4 s, bench/RESULTS.md "Cost: session
    # 10").
    gaussian=GaussianConfig(iterations=1500, max_long_side=240, max_gaussians=30_000,
                            densify_start=200, densify_stop=1000, sh_degree_interval=500, robust_start=30),
    # SH appearance (no network), a coarse grid and few samples per ray: minutes on two cores.
    tensorf=TensorfConfig(iterations=2000, max_long_side=160, grid_start=48, grid_final=128, batch_rays=1024,
                          upsample_fractions=(0.08, 0.16, 0.26, 0.4), alpha_mask_fractions=(0.08, 0.2, 0.4),
                          density_components=(8, 8, 8), appearance_components=(16, 16, 16),
                          appearance_decoder="sh", step_ratio=1.5, max_samples=256),
    export=ExportConfig(video_frames=90, video_max_long_side=320),
)

STANDARD = PipelineConfig(
    preset="standard",
    frames=FramesConfig(target_count=150, max_long_side=640),
    sfm=SfmConfig(max_num_features=4096),
    # 100k gaussians: a 10 s clip in 10-13 min on two quiet cores whatever it shows (34.1-34.5 dB on the rich
    # portrait, 35.5 on the orbit); 300k took 25.7 min for 35.0 dB on the portrait (bench/RESULTS.md, "Cost:
    # session 9"). The quality preset is the one for more.
    # A step draws at most a 16:9 frame's pixels at that long side (gaussian/pixel_budget.py): the 4:3 orbit
    # trained in 630 s instead of 697 s (12.3 -> 11.1 min end to end), 34.83 against 35.23 dB on one run each
    # (bench/RESULTS.md, "Cost: session 10").
    gaussian=GaussianConfig(iterations=7000, max_long_side=480, max_gaussians=100_000, densify_stop=5000,
                            step_pixels=480 * 270),
    tensorf=TensorfConfig(iterations=15000, max_long_side=480, grid_start=96, grid_final=220,
                          upsample_fractions=(0.1, 0.16, 0.22, 0.3), alpha_mask_fractions=(0.1, 0.22)),
    export=ExportConfig(video_frames=150, video_max_long_side=640),
)

QUALITY = PipelineConfig(
    preset="quality",
    frames=FramesConfig(target_count=250, max_long_side=1280),
    sfm=SfmConfig(max_num_features=8192, exhaustive_below=80),
    # The paper's learning rates: the CPU presets keep GaussianConfig's 3x ones, best for short budgets.
    gaussian=GaussianConfig(iterations=30000, max_long_side=1280, max_gaussians=3_000_000,
                            densify_stop=15000, lr_means=1.6e-4, lr_means_final=1.6e-6, lr_scales=5e-3, lr_quats=1e-3,
                            lr_opacities=5e-2, lr_sh0=2.5e-3, lr_shN=2.5e-3 / 20),
    tensorf=TensorfConfig(iterations=30000),
    export=ExportConfig(video_frames=240, video_max_long_side=1280),
)

PRESETS: Mapping[str, PipelineConfig] = MappingProxyType({p.preset: p for p in (PREVIEW, STANDARD, QUALITY)})


def preset_config(name: str, *, device: Device = "auto") -> PipelineConfig:
    """The pipeline settings of preset ``name`` on ``device``; ``KeyError`` for a name the catalogue lacks."""
    return replace(PRESETS[name], device=device)


def _check_against_catalogue() -> None:
    """Refuse a preset table and catalogue that disagree: a preset the API offers must run, at the budget the
    API shows."""
    if set(PRESETS) != set(catalogue.PRESETS):
        raise RuntimeError(f"presets {sorted(PRESETS)} differ from the catalogue's {sorted(catalogue.PRESETS)}")
    for name, config in PRESETS.items():
        if config.frames.target_count != catalogue.PRESETS[name].frames:
            raise RuntimeError(f"preset {name}: keeps {config.frames.target_count} frames here and "
                               f"{catalogue.PRESETS[name].frames} in the catalogue")
        for mode, budget in catalogue.PRESETS[name].iterations.items():
            if config.training(mode).iterations != budget:
                raise RuntimeError(f"preset {name}: {mode} trains {config.training(mode).iterations} iterations "
                                   f"here and {budget} in the catalogue")


_check_against_catalogue()
