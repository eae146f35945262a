"""Quality of a saved model, measured the same way for every method: PSNR and SSIM on the held-out frames
(every ``eval_every``-th), rendered at the frames' working resolution rather than the training downscale,
because that is closer to what a person sees in the viewer.

The numbers of one iteration are written as ``<scene>/metrics/<iteration>.json`` (atomically) and read
back by whoever shows them (``SceneFiles.read_metrics``: the API, ``vidscene run``): computed once, even
when the export stage runs again after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.export import atomic_write_path
from vidscene.pipeline.images import load_training_images, psnr, split_train_eval, ssim

MAX_EVAL_VIEWS = 10  # spread over the held-out frames: enough for a stable mean, cheap on a CPU
WORKING_RESOLUTION = 1 << 30  # "no downscale": the frames are stored at the preset's working size


@dataclass(frozen=True)
class Quality:
    psnr: float
    ssim: float
    gaussians: int | None  # gaussian mode: how many the model has
    seconds: float  # training time up to this iteration
    eval_views: int
    heldout: bool  # False for captures too short to hold frames out (then measured on training frames)
    resolution: tuple[int, int]  # (width, height)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["resolution"] = list(self.resolution)
        out["psnr"], out["ssim"], out["seconds"] = round(self.psnr, 3), round(self.ssim, 4), round(self.seconds, 1)
        return out


def evaluation_views(scene: SceneData, eval_every: int) -> tuple[list[Camera], torch.Tensor, bool]:
    """The cameras and images to measure on, at working resolution: the held-out frames (at most
    ``MAX_EVAL_VIEWS``, evenly picked), or all frames when none is held out."""
    cameras, images = load_training_images(scene, WORKING_RESOLUTION)
    _, held = split_train_eval(len(cameras), eval_every)
    heldout = bool(held)
    picked = held or list(range(len(cameras)))
    if len(picked) > MAX_EVAL_VIEWS:
        step = len(picked) / MAX_EVAL_VIEWS
        picked = [picked[int(i * step)] for i in range(MAX_EVAL_VIEWS)]
    return [cameras[i] for i in picked], images[picked], heldout


def measure(render: Callable[[Camera], torch.Tensor], cameras: Sequence[Camera],
            images: torch.Tensor) -> tuple[float, float]:
    """Mean (PSNR, SSIM) of ``render(camera)`` (H, W, 3 in 0..1) against ``images``."""
    psnrs, ssims = [], []
    with torch.no_grad():
        for cam, target in zip(cameras, images, strict=True):
            pred = render(cam).clamp(0.0, 1.0).cpu()
            psnrs.append(psnr(pred, target))
            ssims.append(ssim(pred, target))
    return sum(psnrs) / len(psnrs), sum(ssims) / len(ssims)


def metrics_path(metrics_dir: Path, iteration: int) -> Path:
    return metrics_dir / f"{iteration}.json"


def write_quality(metrics_dir: Path, iteration: int, quality: Quality) -> Path:
    path = metrics_path(metrics_dir, iteration)
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(quality.to_json()))
    return path
