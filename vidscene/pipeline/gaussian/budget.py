"""The gaussian budget's schedule: how many gaussians a run may hold at each iteration, whatever it shows.

A step's cost grows with the number of gaussians (projection, sorting, colours, Adam: all per gaussian), so a
run's cost is the sum of its counts. Left to the content, adaptive densification reached standard's 300k cap
before iteration 2800 on a texture-rich clip and stopped at 198k on a plain one: 21 or 11 minutes for one preset
(issue 25). Both strategies therefore keep under one ramp that depends only on the preset and the initial
count: from the initial count at ``densify_start`` linearly to ``max_gaussians`` at ``densify_stop``, and the
cap after that. Adaptive densification treats it as a ceiling (it may stay below on plain content); MCMC
grows exactly along it. So the cost of a run is bounded by ``iterations`` x the cost of a step at the ramp,
which is what ``jobs.estimates`` promises.
"""

from __future__ import annotations

from vidscene.pipeline.gaussian.config import GaussianConfig


def count_cap(config: GaussianConfig, step: int, initial: int) -> int:
    """The most gaussians a run that started with ``initial`` may hold after (1-based) ``step``.

    Never below ``initial`` (a run is not cut back to its schedule: it starts from what SfM gave) nor above
    ``max_gaussians``."""
    cap = config.max_gaussians
    start, stop = config.densify_start, max(config.densify_stop, config.densify_start + 1)
    ramp = min(max((step - start) / (stop - start), 0.0), 1.0)
    return min(cap, max(initial, round(initial + (cap - initial) * ramp)))
