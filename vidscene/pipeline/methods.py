"""The training methods: mode name -> its configuration, trainer and exporter.

``pipeline.scene`` and ``vidscene run`` look a mode up here and nowhere else, so an unknown mode fails at
once with ``UnknownModeError`` instead of silently training with another method. A third method is a new
package with a trainer and an exporter, a config section, one entry in ``METHODS`` and its output types in
``vidscene.catalogue``.

Each entry imports its package only when used: importing this module costs nothing (no torch), which the
API and the job layer rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from vidscene import catalogue
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import GaussianConfig, PipelineConfig, TensorfConfig
from vidscene.pipeline.progress import ProgressFn, no_progress


class UnknownModeError(ValueError):
    """A training mode that has no method here (a caller bug or a stale row: the API refuses it at upload)."""


class TrainingConfig(Protocol):
    """What the scene driver reads of a method's config section."""

    @property
    def iterations(self) -> int: ...


class Trainer(Protocol):
    def __call__(self, scene: SceneData, config: PipelineConfig, work_dir: Path, *, save_iterations: Sequence[int],
                 progress: ProgressFn = no_progress, on_save: Callable[[int, Path], None] | None = None) -> None: ...


class Exporter(Protocol):
    def __call__(self, checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: PipelineConfig, *,
                 progress: ProgressFn = no_progress) -> None: ...


@dataclass(frozen=True)
class Method:
    name: str
    settings: Callable[[PipelineConfig], TrainingConfig]  # this method's section of the pipeline config
    train: Trainer
    export: Exporter

    def checkpoint_extension(self) -> str:
        return catalogue.OUTPUT_TYPES["model"].extension(self.name)


# ---- gaussian splatting ---------------------------------------------------------------------------------


def _gaussian_settings(config: PipelineConfig) -> GaussianConfig:
    return config.gaussian


def _train_gaussian(scene: SceneData, config: PipelineConfig, work_dir: Path, *, save_iterations: Sequence[int],
                    progress: ProgressFn = no_progress, on_save: Callable[[int, Path], None] | None = None) -> None:
    from vidscene.pipeline.gaussian.train import train_gaussians

    train_gaussians(scene, config.gaussian, work_dir, save_iterations=save_iterations, device=config.device,
                    progress=progress, on_save=on_save)


def _export_gaussian(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: PipelineConfig, *,
                     progress: ProgressFn = no_progress) -> None:
    from vidscene.pipeline.gaussian.outputs import export_outputs

    export_outputs(checkpoint, scene, requests, config.export, device=config.device, progress=progress)


# ---- TensoRF --------------------------------------------------------------------------------------------


def _tensorf_settings(config: PipelineConfig) -> TensorfConfig:
    return config.tensorf


def _train_tensorf(scene: SceneData, config: PipelineConfig, work_dir: Path, *, save_iterations: Sequence[int],
                   progress: ProgressFn = no_progress, on_save: Callable[[int, Path], None] | None = None) -> None:
    from vidscene.pipeline.tensorf.train import train_tensorf

    train_tensorf(scene, config.tensorf, work_dir, save_iterations=save_iterations, device=config.device,
                  progress=progress, on_save=on_save)


def _export_tensorf(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: PipelineConfig, *,
                    progress: ProgressFn = no_progress) -> None:
    from vidscene.pipeline.tensorf.outputs import export_outputs

    export_outputs(checkpoint, scene, requests, config.export, device=config.device, progress=progress)


METHODS: Mapping[str, Method] = MappingProxyType({
    "gaussian": Method("gaussian", _gaussian_settings, _train_gaussian, _export_gaussian),
    "tensorf": Method("tensorf", _tensorf_settings, _train_tensorf, _export_tensorf),
})
assert set(METHODS) == set(catalogue.TRAINING_MODES), "every catalogue mode needs a method, and no other"


def method(mode: str) -> Method:
    """The method for ``mode``; ``UnknownModeError`` names the modes there are."""
    try:
        return METHODS[mode]
    except KeyError:
        raise UnknownModeError(f"unknown training mode {mode!r}; use one of {', '.join(METHODS)}") from None
