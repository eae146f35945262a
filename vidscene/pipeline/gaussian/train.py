"""3D Gaussian Splatting training: the optimisation step, evaluation on held-out frames, checkpoints and resume.

Shaped like gsplat's ``simple_trainer``: a plain config (``GaussianConfig``), a ``GaussianTraining`` holding the
state of one run, and densification delegated to a strategy object with ``step_pre_backward``/``step_post_backward``
hooks so the step itself stays short. The loop around it (save points, resume file, progress) is the one
``train_loop.TrainLoop`` runs for every method.

Checkpoints (``work_dir/checkpoints/{iteration}.ckpt`` at every requested iteration, plus
``work_dir/resume.ckpt`` every minute or 500 iterations) hold everything needed to continue exactly: parameters,
Adam moments, densification statistics, the random generator and the position in the view order. A killed
worker's job therefore restarts at the iteration after its newest checkpoint, not at 0.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidscene.pipeline import train_loop
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.checkpoints import training_seconds
from vidscene.pipeline.collapse import check_not_flat, flat_image_psnr, image_std, learned_nothing, mean_colour
from vidscene.pipeline.errors import TrainingError
from vidscene.pipeline.gaussian.antialias import filter_variances
from vidscene.pipeline.gaussian.appearance import FrameColours
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.consensus import ConsensusSettings, consensus_mask, masks_share
from vidscene.pipeline.gaussian.left_out import LeftOutHistory, LeftOutSettings
from vidscene.pipeline.gaussian.loss import needle_penalty, photometric_loss
from vidscene.pipeline.gaussian.mcmc import MCMCStrategy
from vidscene.pipeline.gaussian.model import (
    PARAM_NAMES,
    RANDOM_INIT_POINTS,
    Gaussians,
    init_from_points,
    scene_extent,
)
from vidscene.pipeline.gaussian.pixel_budget import drawn_tiles
from vidscene.pipeline.gaussian.render import cuda_available, render, tile_pixels
from vidscene.pipeline.gaussian.render_output import RenderOutput
from vidscene.pipeline.gaussian.robust import RobustSettings, block_any, block_pixels, transient_mask, without_masked
from vidscene.pipeline.gaussian.strategy import DensifyStrategy, Optimizers, Strategy
from vidscene.pipeline.images import load_training_images, psnr, split_train_eval, ssim, unit_float
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.train_loop import Cadence, TrainLoop
from vidscene.pipeline.training import TrainResult as TrainResult  # re-exported: one result type for both trainers
from vidscene.pipeline.training import resolve_device

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
# Besides every minute, gaussian runs write the resume file every 500 iterations.
CADENCE = Cadence(resume_every_iterations=500, progress_every_iterations=train_loop.PROGRESS_EVERY_ITERATIONS)
MAX_TRAIN_EVAL_VIEWS = 8  # when nothing is held out, report the fit on this many training views
MIN_VISIBLE_OPACITY = 1.0 / 255.0  # a model whose most opaque gaussian is fainter than this shows nothing


def configure_cpu_threads() -> None:
    """Use every core this process may run on (containers often allow fewer than ``os.cpu_count()``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if torch.get_num_threads() != cores:
        torch.set_num_threads(cores)


def make_optimizers(gaussians: Gaussians, config: GaussianConfig, extent: float) -> Optimizers:
    """One Adam per parameter (densification replaces them one by one). Position learning rate scales with
    the scene extent so that it means the same in every reconstruction's units.
    """
    lrs = {"means": config.lr_means * extent, "scales": config.lr_scales, "quats": config.lr_quats,
           "opacities": config.lr_opacities, "sh0": config.lr_sh0, "shN": config.lr_shN}
    # fused: one pass over each tensor and its moments (torch has the kernel for CPU as well as CUDA). The
    # default for-loop implementation walks them about ten times, and at standard's 300k gaussians (59 floats
    # each) that was the largest single cost of a CPU step (bench/train_step.py, bench/RESULTS.md).
    return {name: torch.optim.Adam([gaussians.params[name]], lr=lrs[name], eps=1e-15, fused=True)
            for name in PARAM_NAMES}


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: Mapping[str, Any]) -> None:
    """Moments and step counts from a checkpoint, keeping this optimizer's implementation flags.

    ``load_state_dict`` takes the saved groups' options as they were, so a checkpoint from before fused Adam
    (``fused: False``) would silently turn the fused kernel off for the rest of a resumed run. The flags are
    set on the saved groups before loading because torch places the step counters by them.
    """
    flags = {key: optimizer.param_groups[0][key] for key in ("fused", "foreach") if key in optimizer.param_groups[0]}
    groups = [{**group, **flags} for group in saved["param_groups"]]
    optimizer.load_state_dict({**saved, "param_groups": groups})


def means_lr(config: GaussianConfig, extent: float, step: int) -> float:
    """Exponential decay from ``lr_means`` to ``lr_means_final`` (both times the extent) over
    ``max(iterations, lr_decay_steps)`` steps."""
    frac = min(max(step / max(config.iterations, config.lr_decay_steps, 1), 0.0), 1.0)
    lr0, lr1 = config.lr_means * extent, config.lr_means_final * extent
    return math.exp(math.log(lr0) * (1 - frac) + math.log(lr1) * frac)


def sh_degree_at(config: GaussianConfig, step: int) -> int:
    """The SH degree used at 1-based ``step``: starts at 0, +1 every ``sh_degree_interval`` iterations."""
    interval = max(config.sh_degree_interval, 1)
    return min((step - 1) // interval, config.sh_degree)


class GaussianTraining:
    """One training run (fresh or resumed) of a scene into ``work_dir``."""

    def __init__(self, scene: SceneData, config: GaussianConfig, work_dir: Path, device: torch.device) -> None:
        self.config = config
        self.work_dir = work_dir
        self.device = device
        # Kept as uint8 (exactly the decoded values) and converted per step: a quarter of the memory, which
        # matters for hundreds of full-HD frames on a GPU.
        self.cameras, images = load_training_images(scene, config.max_long_side, dtype=torch.uint8)
        self.images = images.to(device)
        self.train_idx, self.eval_idx = split_train_eval(len(self.cameras), config.eval_every)
        if not self.train_idx:
            raise TrainingError("There are no frames to train on.")
        self.extent = scene_extent(self.cameras)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.seconds = 0.0
        self.view_order = torch.empty(0, dtype=torch.long)
        self.view_pos = 0
        # Random top-up for sparse SfM output stays within half the cap so densification keeps room to work.
        self.gaussians = init_from_points(scene.points, scene.colors, self.cameras, sh_degree=config.sh_degree,
                                          generator=self.generator,
                                          random_points=min(RANDOM_INIT_POINTS, config.max_gaussians // 2))
        self.gaussians = Gaussians.from_state(self.gaussians.params, device, requires_grad=True)
        # The budget's ramp starts from the initial count (the same on a resume: same points, same seed).
        self.strategy: Strategy = (MCMCStrategy if config.strategy == "mcmc" else DensifyStrategy)(
            config, self.extent, self.generator, on_edit=lambda _: self.update_filter(),
            initial=len(self.gaussians))
        self.filter_step = -1  # the step the 3D filter was last computed at
        self.update_filter()
        self.optimizers = make_optimizers(self.gaussians, config, self.extent)
        self.strategy_state = self.strategy.initial_state(len(self.gaussians), device)
        self.colours = (FrameColours(len(self.cameras), device, config.appearance_lr, self.train_idx)
                        if config.appearance_lr else None)
        self.robust = RobustSettings(config.robust_factor, config.robust_floor, config.robust_block,
                                     config.robust_max_share)
        # Share of each frame the last step on it left out as transient content (0 for held-out frames).
        self.masked_share = torch.zeros(len(self.cameras))
        # Each view's last verdict of the robust loss, read to keep what every view flags (left_out.py).
        self.left_out = (LeftOutHistory(LeftOutSettings(share=config.robust_failed_share))
                         if config.robust_failed_share > 0 else None)
        self.points = scene.points
        # What moves with the camera (flow_masks.py), per training frame: found once, when the robust loss starts.
        self.carried: dict[int, Tensor] | None = None
        # What the neighbouring frames disagree with (consensus.py), per training frame, and the step it was
        # found at (None: not yet in this process; a resumed run finds it again at once).
        self.consensus: dict[int, Tensor] = {}
        self.consensus_step: int | None = None
        self.consensus_settings = ConsensusSettings(block=config.robust_block)

    def update_filter(self) -> None:
        """Recompute every gaussian's 3D filter from the training cameras (at the training resolution: their
        sampling rate is the one the model was fitted at)."""
        self.filter_step = self.step
        if not self.config.antialias_3d:
            return
        cams = [self.cameras[i] for i in self.train_idx]
        self.gaussians.filter_variances = filter_variances(self.gaussians.params["means"], cams).to(self.device)

    # -- checkpoints -------------------------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """This run's state; the training loop adds the keys every checkpoint has (``checkpoints``)."""
        return {
            "version": CHECKPOINT_VERSION,
            "params": self.gaussians.state(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "strategy": self.strategy.state_dict(self.strategy_state),
            "config": dataclasses.asdict(self.config),
            "sh_degree": self.config.sh_degree,
            "active_sh_degree": sh_degree_at(self.config, max(self.step, 1)),
            "extent": self.extent,
            "rng": self.generator.get_state(),
            "view_order": self.view_order.clone(),
            "view_pos": self.view_pos,
            "masked_share": self.masked_share.clone(),
            **({"left_out": self.left_out.state()} if self.left_out is not None else {}),
            **({"colours": self.colours.state()} if self.colours is not None else {}),
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.gaussians = Gaussians.from_state(ckpt["params"], self.device, requires_grad=True)
        self.optimizers = make_optimizers(self.gaussians, self.config, self.extent)
        for name, opt in self.optimizers.items():
            load_optimizer_state(opt, ckpt["optimizers"][name])
        self.strategy_state = {k: v.to(self.device) for k, v in ckpt["strategy"].items()}
        self.generator.set_state(ckpt["rng"].cpu())  # the generator lives on the CPU whatever the device
        self.view_order = ckpt["view_order"].to(torch.long).cpu()
        self.view_pos = int(ckpt["view_pos"])
        self.step = int(ckpt["iteration"])
        self.seconds = training_seconds(ckpt)
        if "masked_share" in ckpt:  # checkpoints from before robust weighting have neither
            self.masked_share = ckpt["masked_share"].cpu().clone()
        if self.left_out is not None and "left_out" in ckpt:
            self.left_out.restore(ckpt["left_out"], self.device)
        if self.colours is not None and "colours" in ckpt:
            self.colours.restore(ckpt["colours"])

    # -- training ----------------------------------------------------------------------------------------------

    def next_view(self) -> int:
        """Training views in a fresh random order every epoch (every view once before any repeats)."""
        if self.view_pos >= self.view_order.numel():
            self.view_order = torch.randperm(len(self.train_idx), generator=self.generator)
            self.view_pos = 0
        i = self.train_idx[int(self.view_order[self.view_pos])]
        self.view_pos += 1
        return i

    def image(self, index: int) -> Tensor:
        """Ground-truth image ``index`` as (H, W, 3) float32 in 0..1 on the training device."""
        return unit_float(self.images[index])

    def background(self) -> Tensor:
        if self.config.random_background:
            return torch.rand(3, generator=self.generator).to(self.device)
        return torch.zeros(3, device=self.device)

    def train_step(self) -> tuple[float, float]:
        """One optimisation step; returns ``(loss, mse)``. Raises ``TrainingError`` if the loss diverged."""
        self.step += 1
        step, cfg = self.step, self.config
        self.optimizers["means"].param_groups[0]["lr"] = means_lr(cfg, self.extent, step)
        view = self.next_view()
        camera = self.cameras[view]
        tiles = self._drawn_tiles(camera)
        means, quats, scales, opacities, sh = self.gaussians.activated()
        out = render(means, quats, scales, opacities, sh, camera, sh_degree=sh_degree_at(cfg, step),
                     background=self.background(), drawn_tiles=tiles)
        self.strategy.step_pre_backward(step, out)
        target = self.image(view)
        drawn = None if tiles is None else tile_pixels(tiles, camera.width, camera.height).to(self.device)
        pred = out.image if self.colours is None else self.colours.apply(out.image, view)
        loss, _ = photometric_loss(pred, self._static_part(pred, target, view, drawn, (out, opacities)),
                                   cfg.ssim_lambda)
        if cfg.needle_weight > 0:
            loss = loss + cfg.needle_weight * needle_penalty(scales, cfg.needle_ratio)
        if (regularisation := self.strategy.regularisation(scales, opacities)) is not None:
            loss = loss + regularisation
        if self.colours is not None:
            loss = loss + cfg.appearance_weight * self.colours.penalty(view)
        if not torch.isfinite(loss):
            raise TrainingError(f"Training diverged at iteration {step} (the loss became {float(loss.detach())}).")
        loss.backward()
        for opt in self.optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        if self.colours is not None:
            self.colours.step(view)
        self.strategy.step_post_backward(self.gaussians, self.optimizers, self.strategy_state, step, out)
        if len(self.gaussians) == 0:
            raise learned_nothing("training removed every gaussian", iterations=self.config.iterations)
        if step % max(cfg.filter_every, 1) == 0 and self.filter_step != step:  # not again after an edit
            self.update_filter()
        with torch.no_grad():
            error = (pred.detach().clamp(0, 1) - target) ** 2
            mse = float(error.mean() if drawn is None else error[drawn].mean())
        return float(loss.detach()), mse

    def _drawn_tiles(self, camera: Camera) -> Tensor | None:
        """The tiles this step draws under the pixel budget (``pixel_budget``), or None for the whole frame.
        The budget is the CPU's: a GPU draws a frame's pixels in parallel, and skipping them saves nothing."""
        if not self.config.step_pixels or self.device.type != "cpu":
            return None
        return drawn_tiles(camera.width, camera.height, self.config.step_pixels, self.generator)

    def _static_part(self, pred: Tensor, target: Tensor, view: int, drawn: Tensor | None = None,
                     rendered: tuple[RenderOutput, Tensor] | None = None) -> Tensor:
        """``target`` with what moved through frame ``view`` masked out (``robust``), once past the warm-up, and
        with the pixels this step did not draw (``drawn``, (H, W) bool) left out as well. ``rendered``: the render
        ``pred`` comes from and the opacities it drew with, which the multi-view rule reads (``_failed``).

        The robust loss judges the drawn rows stacked together: blocks it never drew would otherwise count as
        the frame's best-fitted ones and lower its bar."""
        if not self.config.robust_start or self.step < self.config.robust_start:
            return target if drawn is None else without_masked(pred, target, ~drawn)
        rows = None if drawn is None else drawn.any(dim=1)
        def drawn_part(image: Tensor) -> Tensor:
            return image if rows is None else image[rows]

        if self._consensus_due():
            self.consensus = self._consensus_masks()
            self.consensus_step = self.step
        if view in self.consensus:
            # A second witness: the residual's bar can be lower where the neighbours confirm what it flags.
            confirmed = dataclasses.replace(self.robust, factor=self.config.consensus_factor)
            mask = transient_mask(drawn_part(pred), drawn_part(target), confirmed) & drawn_part(self.consensus[view])
        else:
            mask = transient_mask(drawn_part(pred), drawn_part(target), self.robust)
        if self.left_out is not None:
            mask = mask & ~drawn_part(self._failed(view, mask, rows, rendered))
        if self.config.flow_masks:
            if self.carried is None:
                self.carried = self._carried_masks()
            mask = mask | drawn_part(self.carried[view])
        self.masked_share[view] = mask.float().mean().cpu()
        if rows is not None:
            full = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)  # undrawn: left out
            full[rows] = mask
            mask = full
        return without_masked(pred, target, mask)

    def _failed(self, view: int, mask: Tensor, rows: Tensor | None,
                rendered: tuple[RenderOutput, Tensor] | None = None) -> Tensor:
        """``(H, W)`` bool: what the robust loss flags in frame ``view`` (``mask``: over the drawn ``rows``) that
        the other views flag too, the model's failure to keep in the loss (``left_out.py``); records this
        verdict for the views after it."""
        assert self.left_out is not None
        camera = self.cameras[view]
        size = (camera.height, camera.width)
        full = mask
        judged = None
        if rows is not None:
            full = torch.zeros(size, dtype=torch.bool, device=mask.device)
            full[rows] = mask
            judged = block_any(rows[:, None].expand(size), self.robust.block)
        flagged = block_any(full, self.robust.block)
        failed = flagged
        if bool(flagged.any()):  # most steps of a clean capture flag nothing
            # Where the render put the gaussians (culled ones: off the frame) and how opaque it drew them.
            screen = (None if rendered is None
                      else torch.where(rendered[0].visible[:, None], rendered[0].means2d.detach(), -1.0))
            opacities = self.gaussians.drawn_opacities() if rendered is None else rendered[1].detach()
            failed = self.left_out.failed(flagged, camera, self.gaussians.params["means"], opacities, self.cameras,
                                          view=view, screen=screen)
        self.left_out.record(view, flagged, judged)
        return block_pixels(failed, self.robust.block, size)

    def _consensus_due(self) -> bool:
        start, every = self.config.consensus_start, max(self.config.consensus_every, 1)
        if not start or self.step < start:
            return False
        return self.consensus_step is None or self.step - self.consensus_step >= every

    @torch.no_grad()
    def _consensus_masks(self) -> dict[int, Tensor]:
        """``consensus_mask`` of every training frame against its training neighbours (held-out frames neither
        vote nor get masks), through the depth the current model renders where it is mostly opaque."""
        started = time.monotonic()
        means, quats, scales, opacities, sh = self.gaussians.activated()
        cameras = [self.cameras[i] for i in self.train_idx]
        depths = []
        for camera in cameras:
            out = render(means, quats, scales, opacities, sh, camera, sh_degree=0,
                         background=torch.zeros(3, device=self.device), with_depth=True)
            assert out.depth is not None
            opaque = out.alpha > self.consensus_settings.opaque
            depths.append(torch.where(opaque, out.depth, torch.zeros_like(out.depth)).reshape(
                camera.height, camera.width))
        def frame(k: int) -> Tensor:  # the k-th training frame, converted when asked (no float copy of all)
            return self.image(self.train_idx[k])

        masks = {index: consensus_mask(k, cameras, frame, depths, self.consensus_settings)
                 for k, index in enumerate(self.train_idx)}
        logger.info("consensus masks", extra={"iteration": self.step,
                                              "seconds": round(time.monotonic() - started, 2),
                                              "disagreeing_share": round(masks_share(masks), 4)})
        return masks

    def _carried_masks(self) -> dict[int, Tensor]:
        """``flow_masks`` of every training frame, on the training device (once per run: a resumed run finds
        the same masks again, so they need no room in checkpoints)."""
        from vidscene.pipeline.flow_masks import flow_masks

        started = time.monotonic()
        images = [self.image(i).cpu().numpy() for i in range(len(self.cameras))]
        masks = flow_masks(self.cameras, images, self.points, frames=self.train_idx)
        logger.info("flow masks", extra={"seconds": round(time.monotonic() - started, 2),
                                         "masked_share": float(sum(m.mean() for m in masks.values()) / len(masks))})
        return {i: torch.from_numpy(m).to(self.device) for i, m in masks.items()}

    def eval_views(self) -> list[int]:
        """The frames ``evaluate`` renders: the held-out ones, or a spread of training frames when none are."""
        if self.eval_idx:
            return list(self.eval_idx)
        return self.train_idx[:: max(1, len(self.train_idx) // MAX_TRAIN_EVAL_VIEWS)]

    def check_learned(self, metrics: Mapping[str, float]) -> float:
        """Raise ``TrainingError`` when every gaussian is transparent or the renders are a flat image no better
        than the training frames' mean colour (``collapse.check_not_flat``); else that image's PSNR on the
        evaluated frames."""
        if float(self.gaussians.activated()[3].detach().max()) < MIN_VISIBLE_OPACITY:
            raise learned_nothing("every gaussian became transparent", iterations=self.config.iterations)
        colour = mean_colour(self.images[i] for i in self.train_idx)
        flat = flat_image_psnr(colour, [self.image(i).cpu() for i in self.eval_views()])
        check_not_flat(metrics["psnr"], flat, metrics["render_std"], metrics["frame_std"],
                       iterations=self.config.iterations)
        return flat

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean PSNR/SSIM/L1 of the current model on the held-out frames (training frames if none)."""
        heldout = bool(self.eval_idx)
        views = self.eval_views()
        means, quats, scales, opacities, sh = self.gaussians.activated()
        degree = sh_degree_at(self.config, max(self.step, 1))
        background = torch.zeros(3, device=self.device)
        p, s, l1, render_std, frame_std = [], [], [], [], []
        for i in views:
            out = render(means, quats, scales, opacities, sh, self.cameras[i], sh_degree=degree,
                         background=background)
            img = out.image.clamp(0.0, 1.0).cpu()
            gt = self.image(i).cpu()
            p.append(psnr(img, gt))
            s.append(ssim(img, gt))
            l1.append(float((img - gt).abs().mean()))
            render_std.append(image_std(img))  # the collapse check's "is the render flat"
            frame_std.append(image_std(gt))
        n = max(len(views), 1)
        return {"psnr": sum(p) / n, "ssim": sum(s) / n, "l1": sum(l1) / n, "heldout": float(heldout),
                "eval_views": float(len(views)), "render_std": sum(render_std) / n, "frame_std": sum(frame_std) / n}


def train_gaussians(scene: SceneData, config: GaussianConfig, work_dir: Path, *, save_iterations: Sequence[int],
                    device: str = "auto", progress: ProgressFn = no_progress,
                    on_save: Callable[[int, Path], None] | None = None, cadence: Cadence = CADENCE) -> TrainResult:
    """Train 3D gaussians on ``scene`` for ``config.iterations`` iterations, checkpointing as it goes.

    The result's metrics are ``n_gaussians``, ``seconds`` (training wall time summed over resumed runs),
    ``s_per_it`` and ``resumed_from``; its quality is ``method.evaluate`` of the checkpoint (at working size).

    Writes ``work_dir/checkpoints/{i}.ckpt`` for every ``i`` in ``save_iterations`` (values outside
    ``1..config.iterations`` are ignored) and for ``config.iterations``, calling ``on_save(i, path)`` after each
    is in place. Resumes from the newest checkpoint at or below ``config.iterations`` (continuing at the next
    iteration with the same optimizer state); when the final checkpoint already exists it returns at once.

    ``progress(iteration, config.iterations, message)`` is called at least every 10 iterations or second;
    exceptions it raises (cancellation) propagate and leave the checkpoints written so far intact.

    Raises ``TrainingError`` if training diverges or nothing can be fitted, ``StorageFullError`` if the disk
    fills while checkpointing.
    """
    total = config.iterations
    loop = TrainLoop(work_dir, CHECKPOINTS, total, mode="gaussian", save_iterations=save_iterations,
                     progress=progress, on_save=on_save,
                     cadence=cadence)
    done = loop.finished()
    if done is not None:
        progress(total, total, "already trained")
        return done

    dev = resolve_device(device, cuda_usable=cuda_available)  # the CPU renderer is used when gsplat is missing
    if dev.type == "cpu":
        configure_cpu_threads()
    training = GaussianTraining(scene, config, work_dir, dev)

    found = loop.resume_point()
    if found is not None:
        it, path = found
        training.restore(CHECKPOINTS.load(path, dev))
        logger.info("resuming training", extra={**loop.log_extra, "iteration": it, "checkpoint": str(path)})
    else:
        logger.info("starting training", extra={**loop.log_extra, "gaussians": len(training.gaussians),
                                                "views": len(training.train_idx), "held_out": len(training.eval_idx)})
    hooks = _LoopHooks(training)
    progress(training.step, total, "starting" if training.step == 0 else f"resuming at iteration {training.step}")
    return loop.run(hooks, start=training.step)


class _LoopHooks:
    """A ``GaussianTraining`` as the shared loop drives it: smoothed loss for progress, wall time summed over
    resumes."""

    def __init__(self, training: GaussianTraining) -> None:
        self.training = training
        self.start_step = training.step
        self.started = time.monotonic()
        self.seconds_before = training.seconds
        self.loss_ema: float | None = None
        self.mse_ema: float | None = None

    def run_iteration(self, iteration: int) -> None:
        loss, mse = self.training.train_step()
        assert self.training.step == iteration, "the loop and the training run disagree on the iteration"
        self.loss_ema = loss if self.loss_ema is None else 0.9 * self.loss_ema + 0.1 * loss
        self.mse_ema = mse if self.mse_ema is None else 0.9 * self.mse_ema + 0.1 * mse
        self.training.seconds = self.seconds_before + (time.monotonic() - self.started)

    def checkpoint_state(self, iteration: int) -> dict[str, Any]:
        return self.training.checkpoint()

    def seconds(self) -> float:
        return self.training.seconds

    def final_metrics(self) -> dict[str, float]:
        # The collapse check's training-size figures decide and are dropped: the quality is measured at
        # working size from the checkpoint (``method.evaluate``).
        self.training.check_learned(self.training.evaluate())
        return {"n_gaussians": float(len(self.training.gaussians)), "seconds": self.training.seconds,
                "s_per_it": self.training.seconds / max(self.training.step, 1),
                "resumed_from": float(self.start_step)}

    def progress_message(self, iteration: int) -> str:
        loss_ema, mse_ema = self.loss_ema or 0.0, self.mse_ema or 0.0  # set by the iteration just run
        train_psnr = -10.0 * math.log10(max(mse_ema, 1e-10))
        return f"loss {loss_ema:.4f} psnr {train_psnr:.2f} gaussians {len(self.training.gaussians)}"
