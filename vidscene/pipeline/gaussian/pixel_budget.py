"""A training step's pixel budget: what keeps a preset's cost per step the same whatever the frames' shape.

Compositing, a large part of a CPU step, costs in proportion to the pixels drawn. Presets fix the frames'
long side, so a 4:3 clip trained at 480x360 draws a third more pixels per step than a 16:9 one at 480x270, and
took 13 minutes at ``standard`` where the portrait took 10-11 (bench/RESULTS.md, "Cost: session 9"). Drawing
such frames smaller loses detail the scene is then scored and viewed at (-1.8 dB on that clip). Instead, each
step draws only as many rows of 16x16-pixel tiles as the budget allows, every pixel at full resolution: which
rows are left out changes every step (evenly spaced bands at a random phase), so over a few steps every row is
drawn equally often and the model sees each frame whole.

What it buys is less than the pixels it leaves out: at standard's 100k gaussians much of a step is work per
gaussian (projection, colours, the optimiser), so drawing 74% of the orbit's pixels cut its training by 10%
(697 -> 630 s; 34.83 against 35.23 dB on one run each), and at preview's 30k nothing. Preview has no budget.

Whole rows rather than scattered tiles keep the drawn part in a few wide bands: the SSIM term's windows and
the robust loss's blocks see few seams, and the robust loss can be judged on the drawn rows stacked together.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vidscene.pipeline.gaussian.cpu_kernels.tiles import TILE


def drawn_tiles(width: int, height: int, budget: int, generator: torch.Generator) -> Tensor | None:
    """((H + 15) // 16, (W + 15) // 16) bool: the tiles one step draws so that it draws about ``budget``
    pixels of a ``width`` x ``height`` frame, or None when the whole frame fits the budget (or there is none).

    The rows left out are evenly spaced from a random phase, so each tile row is left out with the same
    probability; the draw comes from ``generator`` (the trainer's, saved in its checkpoints) so a resumed
    run draws the same rows."""
    tiles_y, tiles_x = math.ceil(height / TILE), math.ceil(width / TILE)
    if budget <= 0 or width * height <= budget:
        return None
    skipped = min(round((1.0 - budget / (width * height)) * tiles_y), tiles_y - 1)
    if skipped <= 0:
        return None
    spacing = tiles_y / skipped
    phase = float(torch.rand((), generator=generator)) * spacing
    rows = torch.tensor([int(phase + j * spacing) % tiles_y for j in range(skipped)])
    drawn = torch.ones((tiles_y, tiles_x), dtype=torch.bool)
    drawn[rows] = False
    return drawn
