"""The ``gaussian`` training mode's contract: checkpoint files, and train, export and evaluate with the
signatures every method shares (``training_method``).

Torch and the renderer are imported inside the functions: the registry imports this module wherever a mode
name is checked, including the API and the job layer, which must not pay for torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.checkpoints import training_seconds
from vidscene.pipeline.config import PipelineConfig
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.training_method import TrainingMethod

if TYPE_CHECKING:
    from torch import Tensor

    from vidscene.pipeline.evaluate import MovingMask, Quality
    from vidscene.pipeline.gaussian.model import Gaussians
    from vidscene.pipeline.gaussian.robust import RobustSettings



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
    from vidscene.pipeline.evaluate import Quality, evaluation_views, measure

    draw, ckpt, gaussians = drawing(checkpoint, config)
    cameras, images, heldout = evaluation_views(scene, config.gaussian.eval_every)
    moving = _moving_content(config.gaussian, cameras[0], ckpt, gaussians, scene.cameras)
    scores = measure(draw, cameras, images, moving=moving)
    return Quality(psnr=scores.psnr, ssim=scores.ssim, gaussians=len(gaussians), seconds=training_seconds(ckpt),
                   eval_views=len(cameras), heldout=heldout, resolution=(cameras[0].width, cameras[0].height),
                   masked=scores.masked)


def drawing(checkpoint: Path, config: PipelineConfig) -> tuple[Callable[[Camera], Tensor], dict[str, Any], Gaussians]:
    """``(draw, checkpoint, gaussians)``: a function that renders the saved model from a camera (as exports show
    it: black background, the SH degree reached), the loaded checkpoint, and its gaussians."""
    import torch

    from vidscene.pipeline.gaussian.model import Gaussians
    from vidscene.pipeline.gaussian.render import cuda_available, render
    from vidscene.pipeline.training import resolve_device

    device = resolve_device(config.device, cuda_usable=cuda_available)
    ckpt = CHECKPOINTS.load(checkpoint)
    gaussians = Gaussians.from_state(ckpt["params"], device)
    degree = min(int(ckpt.get("active_sh_degree", gaussians.max_sh_degree)), gaussians.max_sh_degree)
    means, quats, scales, opacities, sh = gaussians.activated()
    background = torch.zeros(3, device=device)

    def draw(camera: Camera) -> Tensor:
        return render(means, quats, scales, opacities, sh, camera, sh_degree=degree, background=background).image

    return draw, ckpt, gaussians


def _moving_content(config: GaussianConfig, camera: Camera, ckpt: dict[str, Any], gaussians: Gaussians,
                    trained: Sequence[Camera]) -> MovingMask | None:
    """What training leaves out as moving content, found the same way in the frames quality is measured on
    (``camera``'s size), or None when training keeps everything. What the training views flagged as well
    (``left_out.py``, their verdicts in ``ckpt``; ``trained``: the scene's cameras) is the model's failure and
    counts: a region the model never learned must not hide behind a good number."""
    import torch

    from vidscene.pipeline.gaussian.left_out import LeftOutHistory, LeftOutSettings
    from vidscene.pipeline.gaussian.robust import block_pixels, transient_blocks

    settings = moving_settings(config, camera)
    if settings is None:
        return None
    history = None
    if config.robust_failed_share > 0 and "left_out" in ckpt:
        history = LeftOutHistory(LeftOutSettings(share=config.robust_failed_share))
        history.restore(ckpt["left_out"], torch.device("cpu"))  # where ``measure`` compares the frames
    means, opacities = gaussians.params["means"].detach().cpu(), gaussians.drawn_opacities().cpu()

    def moving(view: Camera, pred: Tensor, target: Tensor) -> Tensor:
        flagged = transient_blocks(pred.cpu(), target.cpu(), settings)
        if history is not None:
            flagged = flagged & ~history.failed(flagged, view, means, opacities, trained)
        return block_pixels(flagged, settings.block, target.shape[:2])

    return moving


def moving_settings(config: GaussianConfig, camera: Camera) -> RobustSettings | None:
    """The robust loss's settings for frames of ``camera``'s size. Training drew the frames at
    ``training_size`` (never above their own size), so a block covers the same part of the picture here only
    when it grows by the frames' size over that one: frames no larger than ``max_long_side`` keep the
    training block."""
    from vidscene.pipeline.gaussian.robust import RobustSettings
    from vidscene.pipeline.images import training_size

    if not config.robust_start:
        return None
    long_side = max(camera.width, camera.height)
    trained = max(training_size(camera.width, camera.height, config.max_long_side))
    block = max(1, round(config.robust_block * long_side / trained))
    return RobustSettings(config.robust_factor, config.robust_floor, block, config.robust_max_share)


def transients(checkpoint: Path, scene: SceneData) -> Mapping[str, float]:
    """What the robust loss (``gaussian/robust.py``) left out of each frame the last time it trained on it."""
    shares = CHECKPOINTS.load(checkpoint).get("masked_share")
    if shares is None:
        return {}
    return {camera.image_name: float(share) for camera, share in zip(scene.cameras, shares.tolist(), strict=True)}


METHOD = TrainingMethod(name="gaussian", checkpoints=CHECKPOINTS, train=train, export=export, evaluate=evaluate,
                        transients=transients)
