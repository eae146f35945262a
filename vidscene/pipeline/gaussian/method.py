"""The ``gaussian`` training mode's contract: checkpoint files, and train, export and evaluate with the
signatures every method shares (``training_method``).

Torch and the renderer are imported inside the functions: the registry imports this module wherever a mode
name is checked, including the API and the job layer, which must not pay for torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.checkpoints import training_seconds
from vidscene.pipeline.config import PipelineConfig
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.training_method import TrainingMethod

if TYPE_CHECKING:
    from vidscene.pipeline.evaluate import Quality



def train(scene: SceneData, config: PipelineConfig, work_dir: Path, *, save_iterations: Sequence[int],
          progress: ProgressFn = no_progress, on_save: Callable[[int, Path], None] | None = None) -> None:
    from vidscene.pipeline.gaussian.train import train_gaussians

    train_gaussians(scene, config.gaussian, work_dir, save_iterations=save_iterations, device=config.device,
                    progress=progress, on_save=on_save)


def export(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: PipelineConfig, *,
           progress: ProgressFn = no_progress) -> None:
    from vidscene.pipeline.gaussian.outputs import export_outputs

    export_outputs(checkpoint, scene, requests, config.export, device=config.device, progress=progress)


def evaluate(checkpoint: Path, scene: SceneData, config: PipelineConfig) -> Quality:
    import torch

    from vidscene.pipeline.cameras import Camera
    from vidscene.pipeline.evaluate import Quality, evaluation_views, measure
    from vidscene.pipeline.gaussian.model import Gaussians
    from vidscene.pipeline.gaussian.render import cuda_available, render
    from vidscene.pipeline.training import resolve_device

    device = resolve_device(config.device, cuda_usable=cuda_available)
    ckpt = CHECKPOINTS.load(checkpoint)
    gaussians = Gaussians.from_state(ckpt["params"], device)
    degree = min(int(ckpt.get("active_sh_degree", gaussians.max_sh_degree)), gaussians.max_sh_degree)
    means, quats, scales, opacities, sh = gaussians.activated()
    background = torch.zeros(3, device=device)
    cameras, images, heldout = evaluation_views(scene, config.gaussian.eval_every)

    def draw(camera: Camera) -> torch.Tensor:
        return render(means, quats, scales, opacities, sh, camera, sh_degree=degree, background=background).image

    psnr, ssim = measure(draw, cameras, images)
    return Quality(psnr=psnr, ssim=ssim, gaussians=len(gaussians), seconds=training_seconds(ckpt),
                   eval_views=len(cameras), heldout=heldout, resolution=(cameras[0].width, cameras[0].height))


def transients(checkpoint: Path, scene: SceneData) -> Mapping[str, float]:
    """What the robust loss (``gaussian/robust.py``) left out of each frame the last time it trained on it."""
    shares = CHECKPOINTS.load(checkpoint).get("masked_share")
    if shares is None:
        return {}
    return {camera.image_name: float(share) for camera, share in zip(scene.cameras, shares.tolist(), strict=True)}


METHOD = TrainingMethod(name="gaussian", checkpoints=CHECKPOINTS, train=train, export=export, evaluate=evaluate,
                        transients=transients)
