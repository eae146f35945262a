"""A bounded-cost strategy: gaussians as samples of a distribution (Kheradmand et al. 2024, "3D Gaussian
Splatting as Markov Chain Monte Carlo"), the count set by the preset's schedule and cap, not by the content.

Adaptive densification (``strategy.py``) clones wherever the gradient is high: on a texture-rich clip it races
to the cap within a third of the run and every later step pays for the cap, on a plain one it stops far below,
so the same preset took 11 or 21 minutes (issue 25). Here the count follows a schedule:

- every ``densify_every`` steps between ``densify_start`` and ``densify_stop``, gaussians whose drawn opacity
  fell under ``mcmc_min_opacity`` are *relocated*: each becomes a copy of a live gaussian drawn with
  probability proportional to its opacity. The drawn one and its copies share its opacity and are shrunk so
  that together they draw what it drew alone (the paper's equation 9: opacity ``1 - (1 - o)^(1/N)`` for N
  copies, scales times ``o / sum_k C(N, k+1) (-1)^k o'^(k+1) / sqrt(k+1)``);
- then new ones are added the same way, as many as it takes to follow the budget's ramp
  (``budget.count_cap``: linear from the initial count at ``densify_start`` to ``max_gaussians`` at
  ``densify_stop``), never past it;
- after every step, positions move by noise shaped like each gaussian's covariance and scaled by the position
  learning rate, gated by its opacity (a sigmoid that is 1/2 at ``mcmc_min_opacity`` and nearly 0 above ten
  times that): faint gaussians wander, the ones that draw the image stay;
- the loss gains the mean opacity and the mean scale (in scene extents), ``regularisation``, which is what
  makes unneeded gaussians fade so that relocation can reuse them.

Dead or alive, the noise's gate and the sampling weights read the *stored* opacity, as the paper's do, and
a gaussian that draws nothing at all (under the rasterizer's cut once Mip-Splatting's 3D filter has scaled it
down) is dead too. This module first judged by the drawn opacity alone, which the filter scales by
``sqrt(det S / det(S + vI))``, so a healthy small gaussian could read as dead (``mcmc_judge_drawn`` keeps that
test). It was suspected of MCMC's 1.3-4 dB loss to adaptive at preview, but measured it is not the cause: the
loss stays 1.7 dB with either test, and without the regularisers or the noise (bench/RESULTS.md, issue 25,
second session). The relocation formula is applied to the stored opacity and scales, and the filter is
recomputed afterwards (``on_edit``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import Tensor

from vidscene.pipeline.gaussian.budget import count_cap
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.model import Gaussians
from vidscene.pipeline.gaussian.project import ALPHA_MIN, covariances3d
from vidscene.pipeline.gaussian.render_output import RenderOutput
from vidscene.pipeline.gaussian.strategy import Optimizers, RefineStats, edit_gaussians

logger = logging.getLogger(__name__)

MAX_COPIES = 51  # one gaussian shares its opacity among at most this many copies (the formula's table size)
NOISE_GATE_SHARPNESS = 100.0
NOISE_GATE_FLOOR = 1e-4


def _relocation_table(n_max: int = MAX_COPIES) -> Tensor:
    """(n_max + 1, n_max) float64: row N holds the coefficients of ``o'^(k+1)`` in equation 9's denominator for
    N copies, ``C(N, k+1) (-1)^k / sqrt(k+1)`` (the paper's double sum, folded by the hockey-stick identity).
    float64 because the alternating binomials reach 1e14 at N = 51."""
    table = torch.zeros((n_max + 1, n_max), dtype=torch.float64)
    for n in range(1, n_max + 1):
        for k in range(n):
            table[n, k] = math.comb(n, k + 1) * (-1) ** k / math.sqrt(k + 1)
    return table


TABLE = _relocation_table()


def relocated(opacities: Tensor, scales: Tensor, copies: Tensor, min_opacity: float) -> tuple[Tensor, Tensor]:
    """Opacity (N,) and scales (N, 3) that each of ``copies`` (N,) gaussians at one place must have so that
    together they draw what one gaussian of ``opacities`` and ``scales`` drew (equation 9).

    The new opacity is clamped to ``[min_opacity, 1)`` before the scales are computed, as the reference does
    for numerical stability: a copy never starts dead."""
    n = copies.clamp(1, MAX_COPIES).to(torch.long)
    o = opacities.to(torch.float64)
    new_o = (1.0 - (1.0 - o) ** (1.0 / n.to(torch.float64))).clamp(min_opacity, 1.0 - 1e-7)
    powers = new_o[:, None] ** torch.arange(1, MAX_COPIES + 1, dtype=torch.float64, device=o.device)
    denom = (TABLE.to(o.device)[n] * powers).sum(dim=1)
    factor = (o / denom).to(scales.dtype)
    return new_o.to(opacities.dtype), scales * factor[:, None]


class MCMCStrategy:
    """Relocation, growth along the budget's ramp up to ``config.max_gaussians``, position noise and
    regularisers."""

    def __init__(self, config: GaussianConfig, extent: float, generator: torch.Generator,
                 on_edit: Callable[[Gaussians], None] | None = None, initial: int = 0) -> None:
        """``on_edit(gaussians)`` runs after every relocation or growth (the trainer recomputes the 3D filter);
        ``initial`` is the count the run started with, where the budget's ramp starts."""
        self.config = config
        self.extent = extent
        self.generator = generator
        self.on_edit = on_edit
        self.initial = initial

    def initial_state(self, n: int, device: torch.device) -> dict[str, Tensor]:
        return {}  # nothing accumulated between refinements

    def step_pre_backward(self, step: int, out: RenderOutput) -> None:
        """Nothing before backward."""

    def regularisation(self, scales: Tensor, opacities: Tensor) -> Tensor | None:
        cfg = self.config
        if opacities.shape[0] == 0 or (cfg.opacity_reg <= 0 and cfg.scale_reg <= 0):
            return None
        return cfg.opacity_reg * opacities.mean() + cfg.scale_reg * scales.mean() / self.extent

    def step_post_backward(self, gaussians: Gaussians, optimizers: Optimizers, state: dict[str, Tensor],
                           step: int, out: RenderOutput) -> RefineStats | None:
        """Refine at scheduled steps, then move the positions by noise. ``step`` is 1-based."""
        cfg = self.config
        stats = None
        if cfg.densify_start < step <= cfg.densify_stop and step % cfg.densify_every == 0:
            stats = self.refine(gaussians, optimizers, step)
        self.add_noise(gaussians, optimizers["means"].param_groups[0]["lr"])
        return stats

    def target_count(self, n: int, step: int) -> int:
        """How many gaussians there should be after the refinement at ``step``: the budget's ramp (``n`` when
        growth is off; never fewer than ``n``: relocation, not removal, is how this strategy frees room)."""
        if not self.config.mcmc_grow:
            return n
        return max(n, count_cap(self.config, step, self.initial))

    def liveness(self, gaussians: Gaussians) -> Tensor:
        """(N,) the opacity that says how alive each gaussian is: the stored one (``mcmc_judge_drawn``: after
        the 3D filter), detached."""
        if self.config.mcmc_judge_drawn:
            return gaussians.drawn_opacities()
        return torch.sigmoid(gaussians.params["opacities"].detach())

    def dead(self, gaussians: Gaussians) -> Tensor:
        """(N,) bool: faint by ``liveness``, or drawing nothing at all (it gets no gradient, so it cannot
        recover where it is)."""
        return (self.liveness(gaussians) <= self.config.mcmc_min_opacity) | (gaussians.drawn_opacities() < ALPHA_MIN)

    @torch.no_grad()
    def refine(self, gaussians: Gaussians, optimizers: Optimizers, step: int) -> RefineStats:
        """Relocate the dead gaussians, then grow towards ``target_count``."""
        n = len(gaussians)
        live = self.liveness(gaussians)
        dead = self.dead(gaussians)
        n_dead = int(dead.sum())
        alive = torch.nonzero(~dead).squeeze(1)
        moved = 0
        if n_dead and alive.numel():
            sources = alive[self._sample(live[alive], n_dead)]
            targets = torch.nonzero(dead).squeeze(1)
            self._share(gaussians, optimizers, sources, extra=1)
            for name, p in gaussians.params.items():
                p[targets] = p[sources]
                self._zero_moments(optimizers[name], p, targets)
            moved = n_dead
        added = self.target_count(n, step) - n
        if added > 0:
            sources = self._sample(self.liveness(gaussians), added)
            self._share(gaussians, optimizers, sources, extra=1)
            copies = {name: p.detach()[sources] for name, p in gaussians.params.items()}
            edit_gaussians(gaussians, optimizers, torch.ones(n, dtype=torch.bool, device=gaussians.device), copies)
        if (moved or added > 0) and self.on_edit is not None:
            self.on_edit(gaussians)
        stats = RefineStats(step=step, cloned=max(added, 0), split=0, pruned=0, total=len(gaussians), relocated=moved)
        logger.debug("relocated", extra={"step": step, "relocated": moved, "added": stats.cloned,
                                         "total": stats.total})
        return stats

    def _sample(self, weights: Tensor, count: int) -> Tensor:
        """``count`` indices drawn with replacement, with probability proportional to ``weights``."""
        w = weights.detach().to(torch.float32).cpu().clamp_min(0)
        if float(w.sum()) <= 0:
            w = torch.ones_like(w)
        return torch.multinomial(w, count, replacement=True, generator=self.generator).to(weights.device)

    def _share(self, gaussians: Gaussians, optimizers: Optimizers, sources: Tensor, extra: int) -> None:
        """Give every gaussian in ``sources`` (with repeats) the opacity and scales it has once each of its
        draws became one more copy of it, and reset its moments (it is a new gaussian now)."""
        p = gaussians.params
        counts = torch.bincount(sources, minlength=len(gaussians))
        unique = torch.nonzero(counts).squeeze(1)
        opacity = torch.sigmoid(p["opacities"][unique])
        new_o, new_s = relocated(opacity, torch.exp(p["scales"][unique]), counts[unique] + extra,
                                 self.config.mcmc_min_opacity)
        p["opacities"][unique] = torch.logit(new_o)
        p["scales"][unique] = torch.log(new_s)
        for name, param in p.items():
            self._zero_moments(optimizers[name], param, unique)

    @staticmethod
    def _zero_moments(optimizer: torch.optim.Optimizer, param: Tensor, rows: Tensor) -> None:
        st = optimizer.state.get(param)
        if st:
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    st[key][rows] = 0

    @torch.no_grad()
    def add_noise(self, gaussians: Gaussians, means_lr: float) -> None:
        """Move each position by ``N(0, Sigma / extent^2) x means_lr x mcmc_noise_lr``, gated by its
        ``liveness``. ``means_lr`` already carries the extent (``train.make_optimizers``), so the move is in world
        units whatever the scene's scale."""
        cfg = self.config
        if cfg.mcmc_noise_lr <= 0 or len(gaussians) == 0:
            return
        p = gaussians.params
        gate = torch.sigmoid(-NOISE_GATE_SHARPNESS * (self.liveness(gaussians) - cfg.mcmc_min_opacity))
        # Only the faint ones move measurably: the rest (gate under 1e-4, opacity above ~0.1) are left out
        # rather than paying a covariance and a random vector per gaussian every step.
        rows = torch.nonzero(gate > NOISE_GATE_FLOOR).squeeze(1)
        if rows.numel() == 0:
            return
        cov = covariances3d(p["quats"][rows], torch.exp(p["scales"][rows])) / (self.extent ** 2)
        noise = torch.randn((rows.numel(), 3), generator=self.generator).to(p["means"].device)
        step = torch.einsum("nij,nj->ni", cov, noise) * (gate[rows] * means_lr * cfg.mcmc_noise_lr)[:, None]
        p["means"][rows] += step

    def state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.detach().cpu().clone() for k, v in state.items()}
