"""Plain configuration objects for each stage, assembled into one ``PipelineConfig``.

The stage sections that belong to no training method live here; each method's own section lives in its
package (``gaussian/config.py``, ``tensorf/config.py``). The named presets are complete ``PipelineConfig``
literals in ``pipeline.presets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.tensorf.config import TensorfConfig

Device = Literal["auto", "cpu", "cuda"]


class TrainingConfig(Protocol):
    """What every training method's section has: the training length."""

    @property
    def iterations(self) -> int: ...


@dataclass(frozen=True)
class FramesConfig:
    target_count: int = 80  # frames kept for SfM and training
    max_long_side: int = 480  # working resolution (pixels on the long side); frames are never upscaled
    candidates_per_frame: int = 4  # sample this many candidates per kept frame, keep the sharpest
    thumbnail_size: int = 512
    min_frames: int = 8  # fewer usable frames than this: fail with a clear message
    max_decode_frames: int = 20_000  # stop decoding past this many frames (a 10 000-frame video is fine)


@dataclass(frozen=True)
class SfmConfig:
    matcher: Literal["sequential", "exhaustive", "auto"] = "auto"  # auto: exhaustive for short clips
    exhaustive_below: int = 40  # frames; below this exhaustive matching is cheap and most robust
    sequential_overlap: int = 10
    loop_detection: bool = False  # needs a vocabulary tree file; off unless one is configured
    mapper: Literal["incremental", "global"] = "incremental"
    # Lower values let repeated textures create false verified pairs that break the model (docs/measured.md).
    min_num_inliers: int = 60
    max_num_features: int = 4096
    min_registered_fraction: float = 0.5
    max_rotation_jump_deg: float = 30.0  # consecutive frames rotating more than this: a broken model
    num_threads: int = -1


@dataclass(frozen=True)
class ExportConfig:
    video_frames: int = 120
    video_fps: int = 30
    video_max_long_side: int = 480
    # The mesh: the TSDF grid's voxels on its long side, and the capture views rendered for it (at most that
    # many, evenly spread, each at most that many pixels on its long side).
    mesh_resolution: int = 192
    mesh_views: int = 60
    mesh_long_side: int = 320


@dataclass(frozen=True)
class PipelineConfig:
    preset: str = "preview"  # a name in ``catalogue.PRESETS``
    device: Device = "auto"
    frames: FramesConfig = field(default_factory=FramesConfig)
    sfm: SfmConfig = field(default_factory=SfmConfig)
    gaussian: GaussianConfig = field(default_factory=GaussianConfig)
    tensorf: TensorfConfig = field(default_factory=TensorfConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def training(self, mode: str) -> TrainingConfig:
        """The section of training ``mode`` (a name in ``catalogue.TRAINING_MODES``); ``KeyError`` otherwise."""
        sections: dict[str, TrainingConfig] = {"gaussian": self.gaussian, "tensorf": self.tensorf}
        return sections[mode]

    def with_iterations(self, total: int) -> PipelineConfig:
        """Training length as the user asked, the preset's whole schedule scaled to it (TensoRF's schedule
        points are fractions of its iterations already)."""
        return replace(self, gaussian=self.gaussian.scaled_to(total), tensorf=replace(self.tensorf, iterations=total))
