"""Plain configuration objects for each stage, and the named presets users pick from.

Each stage owns its dataclass; ``PipelineConfig.for_preset`` assembles them. Values are tuned for the 2-core
CPU path in ``preview`` and for a CUDA GPU in ``quality``; see bench/RESULTS.md for what they achieve.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from vidscene import catalogue

Preset = str  # a name in ``catalogue.PRESETS``
PRESETS: tuple[str, ...] = tuple(catalogue.PRESETS)
Device = Literal["auto", "cpu", "cuda"]


def _budget(preset: str, mode: str) -> int:
    """The preset's default training length for ``mode``: one number, in the catalogue."""
    return catalogue.PRESETS[preset].iterations[mode]


@dataclass(frozen=True)
class FramesConfig:
    target_count: int = 80  # frames kept for SfM and training
    max_long_side: int = 480  # working resolution (pixels on the long side); frames are never upscaled
    candidates_per_frame: int = 4  # sample this many candidates per kept frame, keep the sharpest
    thumbnail_size: int = 512
    min_frames: int = 8  # fewer usable frames than this: fail with a clear message
    max_decode_frames: int = 20_000  # stop decoding past this many frames (a 10 000-frame video is fine)

    @classmethod
    def for_preset(cls, preset: Preset) -> FramesConfig:
        return {
            "preview": cls(target_count=80, max_long_side=320),
            "standard": cls(target_count=150, max_long_side=640),
            "quality": cls(target_count=250, max_long_side=1280),
        }[preset]


@dataclass(frozen=True)
class SfmConfig:
    matcher: Literal["sequential", "exhaustive", "auto"] = "auto"  # auto: exhaustive for short clips
    exhaustive_below: int = 40  # frames; below this exhaustive matching is cheap and most robust
    sequential_overlap: int = 10
    loop_detection: bool = False  # needs a vocabulary tree file; off unless one is configured
    mapper: Literal["incremental", "global"] = "incremental"
    min_num_inliers: int = 60  # see LAB-NOTES: lower values let repeated textures create false pairs
    max_num_features: int = 4096
    min_registered_fraction: float = 0.5
    max_rotation_jump_deg: float = 30.0  # consecutive frames rotating more than this: a broken model
    num_threads: int = -1

    @classmethod
    def for_preset(cls, preset: Preset) -> SfmConfig:
        return {
            "preview": cls(max_num_features=2048),
            "standard": cls(max_num_features=4096),
            "quality": cls(max_num_features=8192, exhaustive_below=80),
        }[preset]


@dataclass(frozen=True)
class GaussianConfig:
    """3DGS training; learning rates follow the paper, scaled for short CPU budgets (LAB-NOTES)."""

    iterations: int = 3000
    max_long_side: int = 240  # training resolution on the long side
    sh_degree: int = 3
    sh_degree_interval: int = 1000  # iterations between SH degree increases
    lr_means: float = 1.6e-4 * 3
    lr_means_final: float = 1.6e-6 * 3
    lr_scales: float = 5e-3 * 3
    lr_quats: float = 1e-3 * 3
    lr_opacities: float = 5e-2 * 3
    lr_sh0: float = 2.5e-3 * 3
    lr_shN: float = 2.5e-3 / 20 * 3
    # The position learning rate decays from lr_means to lr_means_final over max(iterations, lr_decay_steps)
    # steps: a run shorter than its preset keeps the preset's decay curve (ending early, at a higher rate), as
    # the 3DGS reference's fixed position_lr_max_steps does. Decaying 100x within 300 iterations froze the
    # positions half-way (bench/RESULTS.md: 300 iterations, 29.25 -> 29.94 dB). 0: over the run itself.
    lr_decay_steps: int = 0
    ssim_lambda: float = 0.2
    densify_start: int = 300
    densify_stop: int = 2000
    densify_every: int = 100
    densify_grad_threshold: float = 2e-4
    densify_size_threshold: float = 0.01  # fraction of scene extent splitting instead of cloning
    prune_opacity: float = 0.005
    opacity_reset_every: int = 3000
    max_gaussians: int = 200_000
    eval_every: int = 8  # every Nth frame is held out for evaluation
    random_background: bool = False
    seed: int = 0
    # Mip-Splatting's 3D smoothing filter (gaussian/antialias.py), recomputed from the training cameras every
    # filter_every iterations and after every densification.
    antialias_3d: bool = True
    filter_every: int = 100
    # Anti-needle regulariser (loss.needle_penalty): longest axis beyond needle_ratio x the middle one. Weight by
    # measurement (bench/RESULTS.md, synthetic orbit, 1500 iterations): needle share 3.4% -> 0.01% at 0.05,
    # held-out 32.26 -> 32.13 dB (before the filter and the term: 19.6%, 31.98 dB).
    needle_ratio: float = 10.0
    needle_weight: float = 0.05

    @classmethod
    def for_preset(cls, preset: Preset) -> GaussianConfig:
        shapes = {
            # bench/gaussian.py (10 s 480x360 orbit, SfM poses, 2 cores at load ~8): 2000 it / 60k gaussians gave
            # 34.9 dB held-out in 308 s of training; these settings 34.0 dB in 106 s (163 s end to end).
            "preview": cls(max_long_side=240, max_gaussians=30_000, densify_start=200,
                           densify_stop=1000, sh_degree_interval=500),
            "standard": cls(max_long_side=480, max_gaussians=300_000, densify_stop=5000),
            "quality": cls(max_long_side=1280, max_gaussians=3_000_000, densify_stop=15000,
                           lr_means=1.6e-4, lr_means_final=1.6e-6, lr_scales=5e-3, lr_quats=1e-3,
                           lr_opacities=5e-2, lr_sh0=2.5e-3, lr_shN=2.5e-3 / 20),
        }
        return replace(shapes[preset], iterations=_budget(preset, "gaussian"))

    def scaled_to(self, total: int) -> GaussianConfig:
        """The same schedule over ``total`` iterations instead of ``self.iterations``.

        Every step count scales by the same factor (as gsplat's ``adjust_steps``): densification start, stop
        and interval, SH degree steps, opacity resets. Keeping the preset's numbers for another length would
        either never densify (a short run ends before ``densify_start``) or stop densifying after a few
        percent (a long one). The position learning rate decays over the run when it is at least the preset's
        length, and along the preset's own curve when shorter (``lr_decay_steps``).
        """
        if total == self.iterations:
            return self
        factor = total / self.iterations
        decay = max(self.lr_decay_steps, self.iterations) if total < self.iterations else 0

        def steps(n: int) -> int:
            return max(1, round(n * factor))

        start, stop = steps(self.densify_start), steps(self.densify_stop)
        return replace(self, iterations=total, lr_decay_steps=decay, densify_start=start,
                       densify_stop=max(stop, start + 1),
                       densify_every=steps(self.densify_every), sh_degree_interval=steps(self.sh_degree_interval),
                       opacity_reset_every=steps(self.opacity_reset_every) if self.opacity_reset_every > 0 else 0)


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

    @classmethod
    def for_preset(cls, preset: Preset) -> TensorfConfig:
        shapes = {
            "preview": cls(max_long_side=160, grid_start=48, grid_final=128, batch_rays=1024,
                           upsample_fractions=(0.08, 0.16, 0.26, 0.4), alpha_mask_fractions=(0.08, 0.2, 0.4),
                           density_components=(8, 8, 8), appearance_components=(16, 16, 16),
                           appearance_decoder="sh", step_ratio=1.5, max_samples=256),
            "standard": cls(max_long_side=480, grid_start=96, grid_final=220,
                            upsample_fractions=(0.1, 0.16, 0.22, 0.3), alpha_mask_fractions=(0.1, 0.22)),
            "quality": cls(),
        }
        return replace(shapes[preset], iterations=_budget(preset, "tensorf"))


@dataclass(frozen=True)
class ExportConfig:
    video_frames: int = 120
    video_fps: int = 30
    video_max_long_side: int = 480

    @classmethod
    def for_preset(cls, preset: Preset) -> ExportConfig:
        return {
            "preview": cls(video_frames=90, video_max_long_side=320),
            "standard": cls(video_frames=150, video_max_long_side=640),
            "quality": cls(video_frames=240, video_max_long_side=1280),
        }[preset]


@dataclass(frozen=True)
class PipelineConfig:
    preset: Preset = "preview"
    device: Device = "auto"
    frames: FramesConfig = field(default_factory=FramesConfig)
    sfm: SfmConfig = field(default_factory=SfmConfig)
    gaussian: GaussianConfig = field(default_factory=GaussianConfig)
    tensorf: TensorfConfig = field(default_factory=TensorfConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @classmethod
    def for_preset(cls, preset: Preset, device: Device = "auto") -> PipelineConfig:
        return cls(preset=preset, device=device, frames=FramesConfig.for_preset(preset),
                   sfm=SfmConfig.for_preset(preset), gaussian=GaussianConfig.for_preset(preset),
                   tensorf=TensorfConfig.for_preset(preset), export=ExportConfig.for_preset(preset))

    def with_iterations(self, total: int) -> PipelineConfig:
        """Training length as the user asked, the preset's whole schedule scaled to it (TensoRF's schedule
        points are fractions of its iterations already)."""
        return replace(self, gaussian=self.gaussian.scaled_to(total), tensorf=replace(self.tensorf, iterations=total))
