"""Settings of 3D Gaussian Splatting training: the gaussian method's section of ``PipelineConfig``.

Defaults are the reference 3DGS schedule with learning rates three times the paper's, which were best for the
short budgets of CPU presets (docs/measured.md); ``pipeline.presets`` sets each preset's values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class GaussianConfig:
    """3DGS training; learning rates follow the paper, scaled for short CPU budgets (docs/measured.md)."""

    iterations: int = 3000
    max_long_side: int = 240  # training resolution on the long side
    sh_degree: int = 3
    sh_degree_interval: int = 1000  # iterations between SH degree increases
    lr_means: float = 1.6e-4 * 3
    lr_means_final: float = 1.6e-6 * 3
    lr_scales: float = 5e-3 * 3
    lr_quats: float = 1e-3 * 3
    lr_opacities: float = 5e-2 * 3
    lr_sh0: float = 2.5e-3 * 3
    lr_shN: float = 2.5e-3 / 20 * 3
    # The position learning rate decays from lr_means to lr_means_final over max(iterations, lr_decay_steps)
    # steps: a run shorter than its preset keeps the preset's decay curve (ending early, at a higher rate), as
    # the 3DGS reference's fixed position_lr_max_steps does. Decaying 100x within 300 iterations froze the
    # positions half-way (bench/RESULTS.md: 300 iterations, 29.25 -> 29.94 dB). 0: over the run itself.
    lr_decay_steps: int = 0
    ssim_lambda: float = 0.2
    densify_start: int = 300
    densify_stop: int = 2000
    densify_every: int = 100
    densify_grad_threshold: float = 2e-4
    densify_size_threshold: float = 0.01  # fraction of scene extent splitting instead of cloning
    prune_opacity: float = 0.005
    opacity_reset_every: int = 3000
    max_gaussians: int = 200_000  # the budget: neither strategy ever holds more (budget.count_cap's ramp to it)
    # How the count changes (gaussian/strategy.py, gaussian/mcmc.py): "adaptive" is 3DGS's densify-and-prune,
    # which grows where the gradient asks, under the budget's ramp (it may stay below it on plain content);
    # "mcmc" relocates dead gaussians onto live ones and grows exactly along the ramp. Both use
    # densify_start/stop/every as their refinement schedule, so the count (and a step's cost) at any iteration
    # is at most the preset's (budget.py).
    strategy: Literal["adaptive", "mcmc"] = "adaptive"
    mcmc_grow: bool = True  # False: relocation only, the count stays the initial one
    # A gaussian is dead (relocated) when its stored opacity is at most mcmc_min_opacity, or when it draws
    # nothing at all (under the rasterizer's cut after the 3D filter). With mcmc_judge_drawn the filtered
    # opacity is compared instead (the first form; no better: bench/RESULTS.md, issue 25, second session).
    mcmc_min_opacity: float = 0.005
    mcmc_judge_drawn: bool = False
    mcmc_noise_lr: float = 5e5  # position noise = this x the position learning rate x the covariance
    opacity_reg: float = 0.01  # mcmc: weight of the mean opacity in the loss (dead gaussians free up)
    scale_reg: float = 0.01  # mcmc: weight of the mean scale, in scene extents
    eval_every: int = 8  # every Nth frame is held out for evaluation
    random_background: bool = False
    seed: int = 0
    # Mip-Splatting's 3D smoothing filter (gaussian/antialias.py), recomputed from the training cameras every
    # filter_every iterations and after every densification.
    antialias_3d: bool = True
    filter_every: int = 100
    # Anti-needle regulariser (loss.needle_penalty): longest axis beyond needle_ratio x the middle one. Weight by
    # measurement (bench/RESULTS.md, synthetic orbit, 1500 iterations): needle share 3.4% -> 0.01% at 0.05,
    # held-out 32.26 -> 32.13 dB (before the filter and the term: 19.6%, 31.98 dB).
    needle_ratio: float = 10.0
    needle_weight: float = 0.05
    # Transient content (people walking through, a hand) left out of the loss from robust_start on, once the
    # static scene has taken shape (gaussian/robust.py); 0 turns it off.
    robust_start: int = 300
    robust_factor: float = 4.0
    robust_floor: float = 0.1
    robust_block: int = 8
    robust_max_share: float = 0.5
    # ... except where it flags what most other views flag too (gaussian/left_out.py): past this share of the
    # views a gaussian lands in, a flagged block is the model's failure (unlearned texture), kept in the loss;
    # 0 turns the rule off.
    robust_failed_share: float = 0.7
    # ... and which side of a high residual moved, the frame or the model, as the neighbouring frames seen
    # through the model's depth say (gaussian/consensus.py): from consensus_start on (0: off) and again every
    # consensus_every steps, the robust loss masks only blocks the neighbours disagree with, at the lower
    # factor consensus_factor. Off: at mid size and true poses, with robust_factor 2.5 as well, it cut the
    # opacity in the people's path by 38% over three seeds, but through the whole pipeline (SfM's poses,
    # bench/capture.py) it left 38.4 against the product's 41.4 on one seed and 82.8 against 47.3 on another,
    # for 29-39% more training time (bench/RESULTS.md, "Captures as people film them: session 10").
    consensus_start: int = 0
    consensus_every: int = 300
    consensus_factor: float = 2.5
    # ... and, with the robust loss, what moves along with the camera, which its residual cannot see: blocks
    # whose image motion between neighbouring frames the SfM poses and points do not explain (flow_masks.py).
    # Off: on the disturbed capture it left the novel views at 17.69 dB against 18.72 without it (same
    # frames and SfM), the people's path at 28.5 against 30.9 of opacity, and it masked 0.8% of a clean
    # capture (bench/RESULTS.md, brief B).
    flow_masks: bool = False
    # A gain and offset per channel and training frame against exposure and white-balance drift
    # (gaussian/appearance.py), re-centred so the model keeps the capture's average exposure; an lr of 0 turns
    # it off. The train stage keeps it only for captures the capture check found drifting
    # (scene.training_config): on clean clips held-out PSNR is unchanged (32.09 -> 32.17 dB orbit, 31.91 ->
    # 31.92 portrait, preview) but views off the path lost 0.8 dB (bench/RESULTS.md, session 7).
    appearance_lr: float = 1e-3
    appearance_weight: float = 0.01
    # Pixels a CPU step draws at most (gaussian/pixel_budget.py): frames larger than this draw a changing
    # subset of their rows of tiles each step, so a 4:3 clip costs what a 16:9 one does at the same long side;
    # 0 draws every pixel.
    step_pixels: int = 0

    def scaled_to(self, total: int) -> GaussianConfig:
        """The same schedule over ``total`` iterations instead of ``self.iterations``.

        Every step count scales by the same factor (as gsplat's ``adjust_steps``): densification start, stop
        and interval, SH degree steps, opacity resets. Keeping the preset's numbers for another length would
        either never densify (a short run ends before ``densify_start``) or stop densifying after a few
        percent (a long one). The position learning rate decays over the run when it is at least the preset's
        length, and along the preset's own curve when shorter (``lr_decay_steps``).
        """
        if total == self.iterations:
            return self
        factor = total / self.iterations
        decay = max(self.lr_decay_steps, self.iterations) if total < self.iterations else 0

        def steps(n: int) -> int:
            return max(1, round(n * factor))

        start, stop = steps(self.densify_start), steps(self.densify_stop)
        robust = steps(self.robust_start) if self.robust_start > 0 else 0
        consensus = steps(self.consensus_start) if self.consensus_start > 0 else 0
        return replace(self, iterations=total, lr_decay_steps=decay, densify_start=start, robust_start=robust,
                       consensus_start=consensus, consensus_every=steps(self.consensus_every),
                       densify_stop=max(stop, start + 1),
                       densify_every=steps(self.densify_every), sh_degree_interval=steps(self.sh_degree_interval),
                       opacity_reset_every=steps(self.opacity_reset_every) if self.opacity_reset_every > 0 else 0)
