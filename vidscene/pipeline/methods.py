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
from typing import TYPE_CHECKING, Protocol

from vidscene import catalogue
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.config import GaussianConfig, PipelineConfig, TensorfConfig
from vidscene.pipeline.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from torch import Tensor

    from vidscene.pipeline.evaluate import Quality


class UnknownModeError(ValueError):
    """A training mode that has no method here (a caller bug or a stale row: the API refuses it at upload)."""


class TrainingConfig(Protocol):
    """What the scene driver reads of a method's config section."""

    @property
    def iterations(self) -> int: ...


class Trainer(Protocol):
    def __call__(self, scene: SceneData, config: PipelineConfig, work_dir: Path, *, save_iterations: Sequence[int],
                 progress: ProgressFn = no_progress, on_save: Callable[[int, Path], None] | None = None) -> None: ...


class Evaluator(Protocol):
    def __call__(self, checkpoint: Path, scene: SceneData, config: PipelineConfig) -> Quality: ...


class Exporter(Protocol):
    def __call__(self, checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: PipelineConfig, *,
                 progress: ProgressFn = no_progress) -> None: ...


@dataclass(frozen=True)
class Method:
    name: str
    settings: Callable[[PipelineConfig], TrainingConfig]  # this method's section of the pipeline config
    train: Trainer
    export: Exporter
    evaluate: Evaluator

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


def _evaluate_gaussian(checkpoint: Path, scene: SceneData, config: PipelineConfig) -> Quality:
    import torch

    from vidscene.pipeline.evaluate import Quality, evaluation_views, measure
    from vidscene.pipeline.gaussian.model import Gaussians
    from vidscene.pipeline.gaussian.render import cuda_available, render
    from vidscene.pipeline.gaussian.train import load_checkpoint
    from vidscene.pipeline.training import resolve_device

    device = resolve_device(config.device, cuda_usable=cuda_available)
    ckpt = load_checkpoint(checkpoint)
    gaussians = Gaussians.from_state(ckpt["params"], device)
    degree = min(int(ckpt.get("active_sh_degree", gaussians.max_sh_degree)), gaussians.max_sh_degree)
    means, quats, scales, opacities, sh = gaussians.activated()
    background = torch.zeros(3, device=device)
    cameras, images, heldout = evaluation_views(scene, config.gaussian.eval_every)

    def draw(camera: Camera) -> torch.Tensor:
        return render(means, quats, scales, opacities, sh, camera, sh_degree=degree, background=background).image

    psnr, ssim = measure(draw, cameras, images)
    return Quality(psnr=psnr, ssim=ssim, gaussians=len(gaussians), seconds=float(ckpt.get("seconds", 0.0)),
                   eval_views=len(cameras), heldout=heldout, resolution=(cameras[0].width, cameras[0].height))


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


def _evaluate_tensorf(checkpoint: Path, scene: SceneData, config: PipelineConfig) -> Quality:
    from vidscene.pipeline.evaluate import Quality, evaluation_views, measure
    from vidscene.pipeline.tensorf.render import render_image
    from vidscene.pipeline.tensorf.train import load_model
    from vidscene.pipeline.training import resolve_device

    loaded = load_model(checkpoint, resolve_device(config.device))
    volume = loaded.model.density_volume()
    cameras, images, heldout = evaluation_views(scene, config.tensorf.eval_every)

    def draw(camera: Camera) -> Tensor:
        return render_image(loaded.model, camera, loaded.settings, alpha_mask=loaded.alpha_mask,
                            density_volume=volume)

    psnr, ssim = measure(draw, cameras, images)
    return Quality(psnr=psnr, ssim=ssim, gaussians=None, seconds=float(loaded.checkpoint.get("seconds", 0.0)),
                   eval_views=len(cameras), heldout=heldout, resolution=(cameras[0].width, cameras[0].height))


METHODS: Mapping[str, Method] = MappingProxyType({
    "gaussian": Method("gaussian", _gaussian_settings, _train_gaussian, _export_gaussian, _evaluate_gaussian),
    "tensorf": Method("tensorf", _tensorf_settings, _train_tensorf, _export_tensorf, _evaluate_tensorf),
})
assert set(METHODS) == set(catalogue.TRAINING_MODES), "every catalogue mode needs a method, and no other"


def method(mode: str) -> Method:
    """The method for ``mode``; ``UnknownModeError`` names the modes there are."""
    try:
        return METHODS[mode]
    except KeyError:
        raise UnknownModeError(f"unknown training mode {mode!r}; use one of {', '.join(METHODS)}") from None
