"""Keeping what moved through the shot out of the scene: per-pixel robust weighting of the photometric loss.

People, hands and cars that cross a capture are in a few frames only. A plain L1 + SSIM loss fits them
anyway: the optimiser grows half-transparent gaussians where they walked (ghosts) and floaters where a hand
was. After a warm-up in which the static scene takes shape, a pixel whose residual is far above the rest of
its frame's is most likely such transient content, so it is left out of that step's loss (RobustNeRF's
trimmed loss and SpotLessSplats' outlier masks are the models; this one needs no learned features).

Residuals alone also flag texture the model has not learned yet, which must not be masked for good. Two
things separate them: transient content is large and coherent (a person is a blob of many blocks, an
unlearned edge is thin), so only blocks of ``block`` x ``block`` pixels with outlying neighbours count; and
a mask is recomputed every time a view is drawn, so a region learned from other views stops being masked.
Neither helps with a wide textured region no view has taught yet: every view flags it, so none ever does;
``left_out.py`` keeps in the loss what most views flag. A view never loses more than ``max_share`` of its
pixels: past that the frame is a bad fit, not an occluder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class RobustSettings:
    factor: float  # a block is an outlier when its mean residual exceeds factor x the frame's median block
    floor: float  # ... and this absolute residual (L1 on 0..1 colours): nothing is masked in a well-fitted frame
    block: int  # pixels on a block's side (at the training resolution)
    max_share: float  # most of a frame that may be masked


@torch.no_grad()
def transient_mask(pred: Tensor, target: Tensor, settings: RobustSettings) -> Tensor:
    """``(H, W)`` bool: the pixels of ``target`` to leave out of the loss against ``pred`` (both ``(H, W, 3)``)."""
    return block_pixels(transient_blocks(pred, target, settings), settings.block, target.shape[:2])


def block_pixels(blocks: Tensor, block: int, size: tuple[int, ...]) -> Tensor:
    """``(h, w)`` bool per block -> ``size`` (H, W) bool per pixel."""
    full = blocks.repeat_interleave(block, dim=0).repeat_interleave(block, dim=1)
    return full[:size[0], :size[1]]


def block_any(mask: Tensor, block: int) -> Tensor:
    """``(H, W)`` bool per pixel -> ``(ceil(H / block), ceil(W / block))`` bool: blocks holding any set pixel
    (``block_pixels`` the other way)."""
    return F.max_pool2d(mask[None, None].float(), block, ceil_mode=True)[0, 0] > 0.5


@torch.no_grad()
def transient_blocks(pred: Tensor, target: Tensor, settings: RobustSettings) -> Tensor:
    """``(ceil(H / block), ceil(W / block))`` bool: ``transient_mask`` per block."""
    residual = (pred.detach() - target).abs().mean(dim=-1)[None, None]
    blocks = F.avg_pool2d(residual, settings.block, ceil_mode=True)
    threshold = max(settings.factor * float(blocks.median()), settings.floor)
    outlier = (blocks > threshold).to(residual.dtype)
    # Coherence: an outlying block with at least three outlying neighbours, as every block of a blob two
    # blocks wide has; a thin edge or line gives its blocks two at most.
    neighbours = F.avg_pool2d(outlier, 3, stride=1, padding=1, count_include_pad=True) * 9.0
    outlier = outlier * (neighbours >= 4.0 - 1e-3).to(outlier.dtype)
    # One block of margin: a person's outline is blurred and shadowed beyond the blocks that clear the bar.
    outlier = F.max_pool2d(outlier, 3, stride=1, padding=1)
    if float(outlier.mean()) > settings.max_share:
        return torch.zeros(outlier.shape[2:], dtype=torch.bool, device=target.device)
    return outlier[0, 0] > 0.5


def without_masked(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``target`` with the masked pixels replaced by the (detached) prediction: they add nothing to an L1 or
    SSIM loss and send no gradient, so they neither shape the model nor drive densification."""
    return torch.where(mask[..., None], pred.detach(), target)
