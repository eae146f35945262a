"""Quality of a saved model, measured the same way for every method: PSNR and SSIM on the held-out frames
(every ``eval_every``-th), rendered at the frames' working resolution rather than the training downscale,
because that is closer to what a person sees in the viewer.

The numbers of one iteration are written as ``<scene>/metrics/<iteration>.json`` (atomically) and read
back by whoever shows them (``SceneFiles.read_metrics``: the API, ``vidscene run``): computed once, even
when the export stage runs again after a crash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.export import atomic_write_path
from vidscene.pipeline.images import load_training_images, psnr, split_train_eval, ssim, ssim_map, unit_float

MAX_EVAL_VIEWS = 10  # spread over the held-out frames: enough for a stable mean, cheap on a CPU
WORKING_RESOLUTION = 1 << 30  # "no downscale": the frames are stored at the preset's working size


@dataclass(frozen=True)
class Quality:
    psnr: float  # see ``measure``: colour-fitted, moving content left out
    ssim: float
    gaussians: int | None  # gaussian mode: how many the model has
    seconds: float  # training time up to this iteration
    eval_views: int
    heldout: bool  # False for captures too short to hold frames out (then measured on training frames)
    resolution: tuple[int, int]  # (width, height)
    masked: float = 0.0  # mean share of the measured pixels left out as moving content

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["resolution"] = list(self.resolution)
        out["psnr"], out["ssim"], out["seconds"] = round(self.psnr, 3), round(self.ssim, 4), round(self.seconds, 1)
        out["masked"] = round(self.masked, 4)
        return out


def evaluation_views(scene: SceneData, eval_every: int) -> tuple[list[Camera], torch.Tensor, bool]:
    """The cameras and images to measure on, at working resolution: the held-out frames (at most
    ``MAX_EVAL_VIEWS``, evenly picked), or all frames when none is held out."""
    cameras, images = load_training_images(scene, WORKING_RESOLUTION, dtype=torch.uint8)
    _, held = split_train_eval(len(cameras), eval_every)
    heldout = bool(held)
    picked = held or list(range(len(cameras)))
    if len(picked) > MAX_EVAL_VIEWS:
        step = len(picked) / MAX_EVAL_VIEWS
        picked = [picked[int(i * step)] for i in range(MAX_EVAL_VIEWS)]
    return [cameras[i] for i in picked], unit_float(images[picked]), heldout


class Scores(NamedTuple):
    psnr: float  # dB, mean over the views
    ssim: float
    masked: float  # mean share of each view's pixels left out as moving content


MovingMask = Callable[[Camera, torch.Tensor, torch.Tensor], torch.Tensor]
"""``(camera, pred, target) -> (H, W) bool``: the pixels of ``target`` where something moved through the shot."""


def measure(render: Callable[[Camera], torch.Tensor], cameras: Sequence[Camera], images: torch.Tensor, *,
            moving: MovingMask | None = None, fit_colours: bool = True) -> Scores:
    """Mean PSNR and SSIM of ``render(camera)`` (H, W, 3 in 0..1) against ``images``.

    What the figure is meant to say is how well the model shows the scene, so two things that are not the
    model's fault are left out. A held-out frame's exposure and white balance are the phone's choice of the
    moment, which no model of the scene can predict: with ``fit_colours`` each render first gets the gain and
    offset per channel that best match its frame (6 numbers against thousands of pixels; NeRF-W and the
    robust-NeRF benchmarks score the same way). And people or cars passing through a held-out frame are not
    in the scene the model should show: the pixels ``moving`` flags are not counted.
    """
    psnrs, ssims, masked = [], [], []
    with torch.no_grad():
        for cam, target in zip(cameras, images, strict=True):
            pred = render(cam).clamp(0.0, 1.0).cpu()
            keep = torch.ones(target.shape[:2], dtype=torch.bool)
            if moving is not None:
                keep = ~moving(cam, pred, target).cpu()
                if not bool(keep.any()):
                    keep = torch.ones_like(keep)
            if fit_colours:
                pred = _colour_fitted(pred, target, keep)
            psnrs.append(_masked_psnr(pred, target, keep))
            ssims.append(_masked_ssim(pred, target, keep))
            masked.append(1.0 - float(keep.float().mean()))
    return Scores(sum(psnrs) / len(psnrs), sum(ssims) / len(ssims), sum(masked) / len(masked))


def _colour_fitted(pred: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``pred`` with the least-squares gain and offset per channel towards ``target`` (over ``keep``)."""
    p, t = pred[keep].double(), target[keep].double()  # (K, 3)
    p_mean, t_mean = p.mean(dim=0), t.mean(dim=0)
    var = ((p - p_mean) ** 2).mean(dim=0)
    cov = ((p - p_mean) * (t - t_mean)).mean(dim=0)
    gain = torch.where(var > 1e-12, cov / var.clamp_min(1e-12), torch.ones_like(var))
    offset = t_mean - gain * p_mean
    return (pred * gain.float() + offset.float()).clamp(0.0, 1.0)


def _masked_psnr(pred: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> float:
    if bool(keep.all()):
        return psnr(pred, target)
    mse = float(((pred - target) ** 2)[keep].mean())
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def _masked_ssim(pred: torch.Tensor, target: torch.Tensor, keep: torch.Tensor) -> float:
    if bool(keep.all()):
        return ssim(pred, target)
    per_pixel = ssim_map(pred.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None])[0].mean(dim=0)
    return float(per_pixel[keep].mean())


def metrics_path(metrics_dir: Path, iteration: int) -> Path:
    return metrics_dir / f"{iteration}.json"


def write_quality(metrics_dir: Path, iteration: int, quality: Quality) -> Path:
    path = metrics_path(metrics_dir, iteration)
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(quality.to_json()))
    return path
