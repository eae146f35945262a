"""Adaptive density control (3DGS): grow gaussians where the image is under-fitted, prune useless ones.

Kept apart from the training loop, as gsplat's ``Strategy``: the loop calls ``step_pre_backward`` before and
``step_post_backward`` after each optimisation step, and the strategy edits the parameters *and* the Adam state
together, so moments of surviving gaussians are kept and new ones start from zero.

Criteria (Kerbl et al. 2023): the mean screen-space positional gradient (in NDC units, threshold 2e-4) over
the views in which a gaussian was visible flags under-reconstruction; small flagged gaussians are cloned,
large ones split in two, sampled from their own distribution and shrunk by 1.6. Gaussians that became almost
transparent are pruned, and after the first opacity reset also the ones that grew huge in the world.

Opacity here is the one the renderer draws with, after Mip-Splatting's 3D filter (``antialias``), which scales a
small gaussian's opacity down. Measured on the raw opacity, a reset to 0.01 left every gaussian whose filter
coefficient is below 0.39 under the rasterizer's 1/255 cut: drawing nothing, it got no gradient and could never
recover, yet 0.01 is above the pruning threshold, so it stayed, filling the budget densification needed (standard
on the 10 s portrait clip: 151,882 of the 300,000 gaussians drew nothing at the end, bench/RESULTS.md). Resets
therefore cap the drawn opacity, as Mip-Splatting's do, and pruning reads the drawn one. After densification
stops, gaussians that draw nothing are still removed every ``densify_every`` steps: by construction that changes
no pixel, and every one removed is a gaussian the remaining steps no longer project, colour, sort and optimise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from vidscene.pipeline.gaussian.budget import count_cap
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.model import Gaussians
from vidscene.pipeline.gaussian.project import ALPHA_MIN, quats_to_rotmats
from vidscene.pipeline.gaussian.render_output import RenderOutput

logger = logging.getLogger(__name__)

Optimizers = dict[str, torch.optim.Optimizer]

SPLIT_SHRINK = 1.6
RESET_OPACITY = 0.01
HUGE_WORLD_FRACTION = 0.1  # a gaussian larger than this fraction of the scene extent is pruned (after a reset)


@dataclass
class RefineStats:
    step: int
    cloned: int
    split: int
    pruned: int
    total: int
    relocated: int = 0  # mcmc: dead gaussians moved onto live ones (``cloned`` counts the ones it added)


class Strategy(Protocol):
    """What the trainer asks of a way of changing the gaussian count: this module's ``DensifyStrategy``
    (adaptive) and ``mcmc.MCMCStrategy`` (bounded), chosen by ``GaussianConfig.strategy``."""

    def initial_state(self, n: int, device: torch.device) -> dict[str, Tensor]: ...

    def step_pre_backward(self, step: int, out: RenderOutput) -> None: ...

    def step_post_backward(self, gaussians: Gaussians, optimizers: Optimizers, state: dict[str, Tensor],
                           step: int, out: RenderOutput) -> RefineStats | None: ...

    def regularisation(self, scales: Tensor, opacities: Tensor) -> Tensor | None:
        """A term the strategy adds to the loss, from the activated (drawn) scales and opacities; None: none."""
        ...

    def state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]: ...


def edit_gaussians(gaussians: Gaussians, optimizers: Optimizers, keep: Tensor, new: dict[str, Tensor]) -> None:
    """Replace every parameter by ``cat(param[keep], new[name])``, and its Adam moments likewise (zeros for
    the new rows), keeping each optimizer's step counter.
    """
    for name, old in gaussians.params.items():
        added = new[name].detach().to(old.dtype)
        param = torch.cat([old.detach()[keep], added]).requires_grad_(True)
        opt = optimizers[name]
        st = opt.state.pop(old, None)
        opt.param_groups[0]["params"] = [param]
        if st:
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    st[key] = torch.cat([st[key][keep], torch.zeros_like(added)])
            opt.state[param] = st
        gaussians.params[name] = param


class DensifyStrategy:
    """3DGS densification under the budget's ramp (``budget.count_cap``): never more gaussians than the
    preset allows at that iteration, ``config.max_gaussians`` at most."""

    def __init__(self, config: GaussianConfig, extent: float, generator: torch.Generator,
                 on_edit: Callable[[Gaussians], None] | None = None, initial: int = 0) -> None:
        """``on_edit(gaussians)`` runs after every change of the gaussian count, before anything else reads
        them: the trainer recomputes the 3D filter there (a reset in the same step reads drawn opacities).
        ``initial`` is the count the run started with, where the budget's ramp starts."""
        self.config = config
        self.extent = extent
        self.generator = generator
        self.on_edit = on_edit
        self.initial = initial

    def initial_state(self, n: int, device: torch.device) -> dict[str, Tensor]:
        return {"grad2d": torch.zeros(n, device=device), "count": torch.zeros(n, device=device)}

    def step_pre_backward(self, step: int, out: RenderOutput) -> None:
        """Nothing to do before backward: ``render`` already retains the screen-space gradient it reports."""

    def regularisation(self, scales: Tensor, opacities: Tensor) -> Tensor | None:
        """None: densification adds no loss term."""
        return None

    def step_post_backward(self, gaussians: Gaussians, optimizers: Optimizers, state: dict[str, Tensor],
                           step: int, out: RenderOutput) -> RefineStats | None:
        """Accumulate gradient statistics of this view; at scheduled steps densify/prune and reset opacities.

        Call it after ``optimizer.step()`` (the gradients of ``out`` are still readable then). ``step`` is
        1-based. Returns what a refinement did, or ``None`` when none ran.
        """
        cfg = self.config
        if step <= cfg.densify_stop:
            visible = out.radii > 0
            grad = out.screen_grad_norm(ndc=True).detach()
            state["grad2d"][visible] += grad[visible].to(state["grad2d"].dtype)
            state["count"][visible] += 1
        stats = None
        if step % cfg.densify_every == 0:
            if cfg.densify_start < step <= cfg.densify_stop:
                stats = self.refine(gaussians, optimizers, state, step)
            elif step > cfg.densify_stop:
                stats = self._prune_invisible(gaussians, optimizers, state, step)
        if self.resets_opacity_at(step):
            self.reset_opacity(gaussians, optimizers)
        return stats

    def resets_opacity_at(self, step: int) -> bool:
        """Whether opacities are reset after ``step``: every ``opacity_reset_every`` steps while densification
        still runs, as the 3DGS reference does (``iteration < densify_until_iter``). A reset is undone by the
        pruning that follows it (what stays near transparent goes); after ``densify_stop`` nothing prunes, so
        what a reset then (standard: at 6000 of 7000) leaves faint stays: on the 3 s portrait clip 266,580 of
        300,000 gaussians ended near-transparent, invisible weight every later iteration and every export paid
        for, and the model was 2.8 dB worse (bench/RESULTS.md, "`standard` on the portrait clip, and an opacity
        reset after densification stopped")."""
        every = self.config.opacity_reset_every
        return every > 0 and step % every == 0 and step < self.config.densify_stop

    def refine(self, gaussians: Gaussians, optimizers: Optimizers, state: dict[str, Tensor],
                step: int) -> RefineStats:
        """One densification step: clone, split and prune from the gradient statistics in ``state``."""
        cfg = self.config
        p = gaussians.params
        n = len(gaussians)
        with torch.no_grad():
            avg_grad = state["grad2d"] / state["count"].clamp_min(1)
            scales = torch.exp(p["scales"])
            max_scale = scales.max(dim=1).values
            prune = gaussians.drawn_opacities() < cfg.prune_opacity
            if cfg.opacity_reset_every > 0 and step > cfg.opacity_reset_every:
                prune |= max_scale > HUGE_WORLD_FRACTION * self.extent
            candidates = (avg_grad > cfg.densify_grad_threshold) & ~prune
            # A split adds one gaussian net (two children replace the parent), a clone one.
            budget = max(0, count_cap(cfg, step, self.initial) - (n - int(prune.sum())))
            if int(candidates.sum()) > budget:
                # Over the ramp: grow only where the gradient says the image needs it most.
                idx = torch.nonzero(candidates).squeeze(1)
                top = torch.topk(avg_grad[idx], budget).indices if budget > 0 else idx[:0]
                candidates = torch.zeros_like(candidates)
                candidates[idx[top]] = True
            small = max_scale <= cfg.densify_size_threshold * self.extent
            clone = candidates & small
            split = candidates & ~small

            new: dict[str, Tensor] = {name: t.detach()[clone] for name, t in p.items()}
            n_split = int(split.sum())
            if n_split:
                s = scales[split]
                rot = quats_to_rotmats(p["quats"][split].detach())
                noise = torch.randn((2, n_split, 3), generator=self.generator).to(s.device) * s
                offsets = torch.einsum("nij,bnj->bni", rot, noise).reshape(-1, 3)
                children: dict[str, Tensor] = {}
                for name, t in p.items():
                    rows = t.detach()[split]
                    children[name] = rows.repeat(2, *([1] * (rows.ndim - 1)))
                children["means"] = children["means"] + offsets
                children["scales"] = children["scales"] - math.log(SPLIT_SHRINK)
                new = {name: torch.cat([new[name], children[name]]) for name in p}
            keep = ~(prune | split)
            edit_gaussians(gaussians, optimizers, keep, new)
            self._edited(gaussians)
        total = len(gaussians)
        fresh = self.initial_state(total, gaussians.device)
        state.update(fresh)
        stats = RefineStats(step=step, cloned=int(clone.sum()), split=n_split, pruned=int(prune.sum()),
                            total=total)
        logger.debug("densified", extra={"step": step, "cloned": stats.cloned, "split": stats.split,
                                         "pruned": stats.pruned, "total": total})
        return stats

    def _prune_invisible(self, gaussians: Gaussians, optimizers: Optimizers, state: dict[str, Tensor],
                         step: int) -> RefineStats | None:
        """Remove the gaussians whose drawn opacity is below the rasterizer's cut (they change no pixel)."""
        invisible = gaussians.drawn_opacities() < ALPHA_MIN
        n_invisible = int(invisible.sum())
        if n_invisible == 0 or n_invisible == len(gaussians):  # an empty model is the collapse checks' to report
            return None
        nothing_new = {name: t.detach()[:0] for name, t in gaussians.params.items()}
        edit_gaussians(gaussians, optimizers, ~invisible, nothing_new)
        self._edited(gaussians)
        state.update(self.initial_state(len(gaussians), gaussians.device))
        return RefineStats(step=step, cloned=0, split=0, pruned=n_invisible, total=len(gaussians))

    def _edited(self, gaussians: Gaussians) -> None:
        if self.on_edit is not None:
            self.on_edit(gaussians)

    def reset_opacity(self, gaussians: Gaussians, optimizers: Optimizers) -> None:
        """Cap drawn opacities at 0.01 so floaters must earn their opacity back (or get pruned).

        The cap is on the opacity after the 3D filter: raw opacities become ``min(o, 0.01 / coef)`` for filter
        coefficient ``coef = drawn / raw``, so a small gaussian is left at 0.01 as drawn, above the cut where it
        would stop receiving gradients (see the module docstring)."""
        opacities = gaussians.params["opacities"]
        with torch.no_grad():
            raw = torch.sigmoid(opacities)
            coef = gaussians.drawn_opacities() / raw.clamp_min(1e-12)
            limit = (RESET_OPACITY / coef.clamp_min(1e-12)).clamp(max=1.0 - 1e-7)
            opacities.copy_(torch.where(raw > limit, torch.log(limit) - torch.log1p(-limit), opacities))
        # Old moments would push the opacities straight back to where they were.
        opt_state = optimizers["opacities"].state.get(opacities)
        if opt_state:
            opt_state["exp_avg"].zero_()
            opt_state["exp_avg_sq"].zero_()

    def state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.detach().cpu().clone() for k, v in state.items()}

