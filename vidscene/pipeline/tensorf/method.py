"""The ``tensorf`` training mode's contract: checkpoint files, and train, export and evaluate with the
signatures every method shares (``training_method``).

Torch is imported inside the functions: the registry imports this module wherever a mode name is checked,
including the API and the job layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.checkpoints import training_seconds
from vidscene.pipeline.config import PipelineConfig
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.tensorf.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.training_method import TrainingMethod

if TYPE_CHECKING:
    from vidscene.pipeline.evaluate import Quality



def train(scene: SceneData, config: PipelineConfig, work_dir: Path, *, save_iterations: Sequence[int],
          progress: ProgressFn = no_progress, on_save: Callable[[int, Path], None] | None = None) -> None:
    from vidscene.pipeline.tensorf.train import train_tensorf

    train_tensorf(scene, config.tensorf, work_dir, save_iterations=save_iterations, device=config.device,
                  progress=progress, on_save=on_save)


def export(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: PipelineConfig, *,
           progress: ProgressFn = no_progress) -> None:
    from vidscene.pipeline.tensorf.outputs import export_outputs

    export_outputs(checkpoint, scene, requests, config.export, device=config.device, progress=progress)


def evaluate(checkpoint: Path, scene: SceneData, config: PipelineConfig) -> Quality:
    from torch import Tensor

    from vidscene.pipeline.cameras import Camera
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

    scores = measure(draw, cameras, images)  # TensoRF trains on every pixel: nothing is left out as moving
    return Quality(psnr=scores.psnr, ssim=scores.ssim, gaussians=None, seconds=training_seconds(loaded.checkpoint),
                   eval_views=len(cameras), heldout=heldout, resolution=(cameras[0].width, cameras[0].height))


METHOD = TrainingMethod(name="tensorf", checkpoints=CHECKPOINTS, train=train, export=export, evaluate=evaluate)
