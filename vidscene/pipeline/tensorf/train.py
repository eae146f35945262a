"""TensoRF training: random rays from the training frames, coarse-to-fine grids, alpha-mask space skipping.

The schedule is a pure function of the iteration number (learning rates decay exponentially; upsamples and
alpha-mask updates happen at fixed fractions of ``iterations``), so a resumed run continues exactly where the
checkpoint left off: the checkpoint holds the grid shape, box, alpha mask, optimizer state and random state.
The loop around the step (save points, resume file, progress) is the shared ``train_loop.TrainLoop``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.checkpoints import training_seconds
from vidscene.pipeline.collapse import check_not_flat, flat_image_psnr, image_std, learned_nothing, mean_colour
from vidscene.pipeline.errors import TrainingError
from vidscene.pipeline.images import load_training_images, psnr, split_train_eval, ssim
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.tensorf.bounds import scene_aabb
from vidscene.pipeline.tensorf.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.tensorf.config import TensorfConfig
from vidscene.pipeline.tensorf.model import (
    AlphaMask,
    FieldShape,
    TensorVM,
    compute_alpha_mask,
    grid_size_for_voxels,
    make_shape,
    solid_nodes,
    upsample_schedule,
)
from vidscene.pipeline.tensorf.render import (
    CameraTensors,
    RenderSettings,
    render_image,
    render_rays,
    render_settings,
)
from vidscene.pipeline.tensorf.space import (
    WORLD,
    CaptureShape,
    FieldSpace,
    NdcSpace,
    capture_shape,
    ndc_box,
    ndc_space,
)
from vidscene.pipeline.train_loop import TrainLoop
from vidscene.pipeline.training import TrainResult, resolve_device

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
MAX_CHECK_VIEWS = 8  # frames the collapse check renders when none are held out


@dataclass
class Schedule:
    """Iterations at which the grid grows or the alpha mask is rebuilt, and the voxel counts to grow to."""

    upsample: dict[int, int]  # iteration -> voxel count after upsampling
    alpha_mask: list[int]

    @classmethod
    def for_config(cls, config: TensorfConfig) -> Schedule:
        n = config.iterations
        ups = sorted({max(1, round(f * n)) for f in config.upsample_fractions if 0.0 < f < 1.0})
        voxels = upsample_schedule(config.grid_start, config.grid_final, len(ups))
        masks = sorted({max(1, round(f * n)) for f in config.alpha_mask_fractions if 0.0 < f < 1.0})
        return cls(upsample=dict(zip(ups, voxels, strict=True)), alpha_mask=masks)

    def l1_weight(self, config: TensorfConfig, iteration: int) -> float:
        """Stronger sparsity until the first alpha mask has carved out empty space, as in the paper."""
        first = self.alpha_mask[0] if self.alpha_mask else math.inf
        return config.l1_weight_initial if iteration <= first else config.l1_weight_rest


def lr_scale(config: TensorfConfig, iteration: int) -> float:
    """Exponential decay from 1 to ``lr_decay_ratio`` over the run (also right after a grid change)."""
    return float(config.lr_decay_ratio ** (iteration / max(1, config.iterations)))


def make_optimizer(model: TensorVM, config: TensorfConfig, iteration: int) -> torch.optim.Adam:
    s = lr_scale(config, iteration)
    return torch.optim.Adam([
        {"params": model.grid_parameters(), "lr": config.lr_grid * s, "base_lr": config.lr_grid},
        {"params": model.network_parameters(), "lr": config.lr_network * s, "base_lr": config.lr_network},
    ], betas=(0.9, 0.99))


def field_space(scene: SceneData, config: TensorfConfig) -> tuple[FieldSpace, NDArray[np.float64], CaptureShape]:
    """The space and box a new field lives in, from the capture's shape (``space.capture_shape``) unless
    ``config.space`` names one: NDC of the average camera for forward-facing captures, the SfM world
    elsewhere."""
    shape = capture_shape(scene.cameras, scene.points)
    kind = config.space if config.space != "auto" else ("ndc" if shape.kind == "forward" else "world")
    if kind == "ndc":
        ndc = ndc_space(scene.cameras, scene.points)
        return ndc, ndc_box(ndc, scene.cameras), shape
    return WORLD, scene_aabb(scene.cameras, scene.points), shape


def new_model(scene: SceneData, config: TensorfConfig, device: torch.device) -> TensorVM:
    space, box, capture = field_space(scene, config)
    log.info("tensorf field space", extra={"space": space.kind, "capture": capture.to_dict()})
    aabb = torch.tensor(box, dtype=torch.float32)
    grid = grid_size_for_voxels(aabb, config.grid_start**3)
    shape = make_shape(aabb, grid, density_components=config.density_components,
                       appearance_components=config.appearance_components, appearance_dim=config.appearance_dim,
                       mlp_hidden=config.mlp_hidden, feature_pe=config.feature_pe, view_pe=config.view_pe,
                       density_shift=config.ndc_density_shift if isinstance(space, NdcSpace)
                       else config.density_shift, distance_scale=config.distance_scale,
                       decoder=config.appearance_decoder, space=space)
    return TensorVM(shape).to(device)


@dataclass
class LoadedModel:
    """A model restored from a checkpoint, with what rendering needs."""

    model: TensorVM
    alpha_mask: AlphaMask | None
    settings: RenderSettings
    iteration: int
    checkpoint: dict[str, Any]


def load_model(path: Path, device: torch.device) -> LoadedModel:
    """Rebuild the field (and alpha mask) saved in a tensorf checkpoint, ready to render or keep training."""
    # Read onto the CPU: the optimizer state then follows each parameter to its device when loaded, while
    # Adam's step counters and the random state stay CPU tensors as PyTorch requires.
    ckpt = CHECKPOINTS.load(path, "cpu")
    model = TensorVM(FieldShape.from_dict(ckpt["field"]))
    model.load_state_dict(ckpt["model"])
    model = model.to(device)
    mask_state = ckpt.get("alpha_mask")
    mask = AlphaMask.from_state(mask_state).to(device) if mask_state is not None else None
    r = ckpt["render"]
    settings = render_settings(model, float(r["step_ratio"]), int(r["max_samples"]))
    return LoadedModel(model, mask, settings, int(ckpt["iteration"]), ckpt)


def _checkpoint(model: TensorVM, mask: AlphaMask | None, optimizer: torch.optim.Optimizer,
                config: TensorfConfig) -> dict[str, Any]:
    """The run's own state; the training loop adds the keys every checkpoint has (``checkpoints``)."""
    return {"version": CHECKPOINT_VERSION,
            "field": model.shape.to_dict(), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "alpha_mask": mask.to_state() if mask is not None else None, "optimizer": optimizer.state_dict(),
            "config": dataclasses.asdict(config), "rng": torch.get_rng_state(),
            "render": {"step_ratio": config.step_ratio, "max_samples": config.max_samples}}


@torch.no_grad()
def evaluate(model: TensorVM, cameras: Sequence[Camera], images: torch.Tensor, settings: RenderSettings,
             alpha_mask: AlphaMask | None) -> dict[str, float]:
    """The collapse check's figures: mean PSNR/SSIM over the given frames at the training size, and the mean
    spatial standard deviation of the renders and of the frames (``render_std``, ``frame_std``: a flat render has 0)."""
    if len(cameras) == 0:
        return {}
    psnrs, ssims, render_stds, frame_stds = [], [], [], []
    volume = model.density_volume()
    for cam, gt in zip(cameras, images, strict=True):
        pred = render_image(model, cam, settings, alpha_mask=alpha_mask, density_volume=volume).cpu()
        psnrs.append(psnr(pred, gt))
        ssims.append(ssim(pred, gt))
        render_stds.append(image_std(pred))
        frame_stds.append(image_std(gt))
    n = len(psnrs)
    return {"psnr": float(sum(psnrs) / n), "ssim": float(sum(ssims) / n), "render_std": sum(render_stds) / n,
            "frame_std": sum(frame_stds) / n}


def train_tensorf(scene: SceneData, config: TensorfConfig, work_dir: Path, *, save_iterations: Sequence[int],
                  device: str = "auto", progress: ProgressFn = no_progress,
                  on_save: Callable[[int, Path], None] | None = None) -> TrainResult:
    """Train a TensoRF model on ``scene`` and save ``work_dir/checkpoints/{iteration}.th`` for each requested
    iteration (and always the last), calling ``on_save(iteration, path)`` after each.

    Resumes from the newest checkpoint (or ``work_dir/resume.th``, written every minute) at or below
    ``config.iterations``; returns at once if the final checkpoint exists. ``progress`` may raise to cancel.
    Raises ``TrainingError`` when there is nothing to train on or the loss diverges.
    """
    started = time.monotonic()
    dev = resolve_device(device)
    total = config.iterations
    loop = TrainLoop(work_dir, CHECKPOINTS, total, mode="tensorf", save_iterations=save_iterations,
                     progress=progress, on_save=on_save)
    done = loop.finished()
    if done is not None:
        return done

    progress(0, total, "loading frames")
    cameras, images = load_training_images(scene, config.max_long_side)
    train_idx, eval_idx = split_train_eval(len(cameras), config.eval_every)
    if not train_idx:
        raise TrainingError("There are no frames to train on.")

    resume = loop.resume_point()
    torch.manual_seed(config.seed)
    mask: AlphaMask | None
    if resume is not None:
        loaded = load_model(resume[1], dev)
        model, mask, start = loaded.model, loaded.alpha_mask, loaded.iteration
        optimizer = make_optimizer(model, config, start)
        optimizer.load_state_dict(loaded.checkpoint["optimizer"])
        torch.set_rng_state(loaded.checkpoint["rng"])
        train_seconds = training_seconds(loaded.checkpoint)
        log.info("resuming tensorf training", extra={**loop.log_extra, "iteration": start, "path": str(resume[1])})
    else:
        model, mask, start = new_model(scene, config, dev), None, 0
        optimizer = make_optimizer(model, config, 0)
        train_seconds = 0.0
        log.info("starting tensorf training", extra={**loop.log_extra, "grid": model.grid_size,
                                                     "aabb": model.aabb.tolist(), "frames": len(train_idx)})
    run = _TensorfRun(config, model, mask, optimizer, device=dev, cameras=cameras, images=images,
                      train_idx=train_idx, eval_idx=eval_idx, start=start, started=started,
                      train_seconds=train_seconds, log_extra=loop.log_extra)
    result = loop.run(run, start=start)
    log.info("tensorf training finished", extra={**loop.log_extra, **result.metrics})
    return result


class _TensorfRun:
    """One run's field, alpha mask, optimizer and schedule, stepped by the shared loop.

    Wall time (``train_seconds``) counts from the start of ``train_tensorf`` (frame loading included) and sums
    over resumed runs; ``s_per_it`` covers this run's iterations only.
    """

    def __init__(self, config: TensorfConfig, model: TensorVM, mask: AlphaMask | None,
                 optimizer: torch.optim.Adam, *, device: torch.device, cameras: Sequence[Camera],
                 images: torch.Tensor,
                 train_idx: list[int], eval_idx: list[int], start: int, started: float, train_seconds: float,
                 log_extra: dict[str, Any]) -> None:
        self.config = config
        self.model = model
        self.mask = mask
        self.optimizer = optimizer
        self.settings = render_settings(model, config.step_ratio, config.max_samples)
        self.schedule = Schedule.for_config(config)
        self.device = device
        self.train_images = images[train_idx].to(device)
        self.train_cams = CameraTensors.from_cameras([cameras[i] for i in train_idx], device)
        self.n_train = len(train_idx)
        self.height, self.width = images.shape[1], images.shape[2]
        self.cameras, self.images, self.train_idx, self.eval_idx = cameras, images, train_idx, eval_idx
        self.start = start
        self.started = started
        self.seconds_before = train_seconds
        self.train_seconds = train_seconds
        self.loop_started = time.monotonic()
        self.log_extra = log_extra
        self.mse: torch.Tensor | None = None

    def run_iteration(self, iteration: int) -> None:
        config, model, dev = self.config, self.model, self.device
        scale = lr_scale(config, iteration)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
        # Rays are drawn on the CPU generator so a run is reproducible whatever the device.
        frame = torch.randint(0, self.n_train, (config.batch_rays,)).to(dev)
        u = torch.randint(0, self.width, (config.batch_rays,)).to(dev)
        v = torch.randint(0, self.height, (config.batch_rays,)).to(dev)
        origins, dirs = self.train_cams.rays(frame, u, v)
        target = self.train_images[frame, v, u]
        color, _, _ = render_rays(model, origins, dirs, self.settings, alpha_mask=self.mask, jitter=True)
        mse = torch.mean((color - target) ** 2)
        loss = mse + self.schedule.l1_weight(config, iteration) * model.density_l1()
        if config.tv_weight_density > 0:
            loss = loss + config.tv_weight_density * model.density_tv()
        if config.tv_weight_appearance > 0:
            loss = loss + config.tv_weight_appearance * model.appearance_tv()
        if not torch.isfinite(loss):
            raise TrainingError("Training diverged (the loss became NaN) and was stopped; "
                                "try a shorter or lower-quality preset.")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.mse = mse.detach()
        self._follow_schedule(iteration)
        self.train_seconds = self.seconds_before + time.monotonic() - self.started

    def _follow_schedule(self, iteration: int) -> None:
        """Rebuild the alpha mask or grow the grid where the schedule says; both need a new optimizer."""
        config, model, extra = self.config, self.model, self.log_extra
        changed = False
        if iteration in self.schedule.alpha_mask:
            threshold = (config.ndc_alpha_mask_threshold if isinstance(model.space, NdcSpace)
                         else config.alpha_mask_threshold)
            mask, tight = compute_alpha_mask(model, self.settings.step, threshold)
            occupied = float(mask.occupied.float().mean())
            if occupied > 0.0:
                self.mask = mask
                if iteration == self.schedule.alpha_mask[0]:
                    model.shrink(tight)
            else:
                # A mask with nothing in it would skip every sample from now on: no gradient could ever bring
                # density back (the forward-facing clip of bench/RESULTS.md stayed grey that way). March
                # without one; the final check fails the run if the field never fills in.
                self.mask = None
                log.warning("alpha mask empty: training on without one", extra={**extra, "iteration": iteration})
            changed = True
            log.info("alpha mask updated", extra={**extra, "iteration": iteration, "aabb": model.aabb.tolist(),
                                                  "occupied": occupied})
        if iteration in self.schedule.upsample:
            model.upsample(grid_size_for_voxels(model.aabb, self.schedule.upsample[iteration]))
            changed = True
            log.info("grid upsampled", extra={**extra, "iteration": iteration, "grid": model.grid_size})
        if changed:
            self.settings = render_settings(model, config.step_ratio, config.max_samples)
            self.optimizer = make_optimizer(model, config, iteration)

    def checkpoint_state(self, iteration: int) -> dict[str, Any]:
        return _checkpoint(self.model, self.mask, self.optimizer, self.config)

    def seconds(self) -> float:
        return self.train_seconds

    def final_metrics(self) -> dict[str, float]:
        loop_seconds = time.monotonic() - self.loop_started
        metrics = self._check_learned()
        self.train_seconds = self.seconds_before + time.monotonic() - self.started
        iterations_run = self.config.iterations - self.start
        metrics.update({"seconds": self.train_seconds, "iterations_run": float(iterations_run),
                        "s_per_it": loop_seconds / iterations_run if iterations_run else 0.0,
                        "grid_voxels": float(math.prod(self.model.grid_size))})
        return metrics

    def _check_learned(self) -> dict[str, float]:
        """Raise ``TrainingError`` when the field came out empty (no solid node: a flat video, an empty point
        cloud) or renders a flat image no better than the mean-colour one (``collapse.check_not_flat``); else
        the shape of the field. The check's training-size PSNRs decide and are dropped: the quality is measured
        at working size from the checkpoint (``method.evaluate``).

        Compared on the held-out frames, or on up to ``MAX_CHECK_VIEWS`` training frames when none are held out.
        """
        solid, _ = solid_nodes(self.model, self.mask)
        if solid.shape[0] == 0:
            raise learned_nothing("no part of the scene became solid, so its video would show one flat colour "
                                  "and its point cloud would be empty", iterations=self.config.iterations)
        views = self.eval_idx or self.train_idx[:: max(1, len(self.train_idx) // MAX_CHECK_VIEWS)][:MAX_CHECK_VIEWS]
        fit = evaluate(self.model, [self.cameras[i] for i in views], self.images[views], self.settings, self.mask)
        flat = flat_image_psnr(mean_colour(self.train_images), [self.images[i] for i in views])
        check_not_flat(fit["psnr"], flat, fit["render_std"], fit["frame_std"], iterations=self.config.iterations)
        return {"solid_nodes": float(solid.shape[0]), "ndc": float(isinstance(self.model.space, NdcSpace))}

    def progress_message(self, iteration: int) -> str:
        mse = float(self.mse) if self.mse is not None else 0.0  # set by the iteration just run
        batch_psnr = -10.0 * math.log10(max(mse, 1e-10))
        return f"iteration {iteration}/{self.config.iterations}, PSNR {batch_psnr:.1f} dB"
