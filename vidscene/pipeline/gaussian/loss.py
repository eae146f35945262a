"""The 3DGS photometric loss: ``(1 - λ) L1 + λ (1 - SSIM)``."""

from __future__ import annotations

from torch import Tensor

from vidscene.pipeline.images import ssim_mean


def photometric_loss(pred: Tensor, target: Tensor, ssim_lambda: float) -> tuple[Tensor, Tensor]:
    """``(loss, l1)`` between a rendered and a ground-truth ``(H, W, 3)`` image in 0..1.

    L1 keeps colours right, the SSIM term keeps edges and texture sharp (L1 alone blurs fine detail away in a
    few hundred iterations). ``l1`` is returned detached for logging.
    """
    l1 = (pred - target).abs().mean()
    if ssim_lambda <= 0:
        return l1, l1.detach()
    x = pred.permute(2, 0, 1).unsqueeze(0)
    y = target.permute(2, 0, 1).unsqueeze(0)
    d_ssim = 1.0 - ssim_mean(x, y)
    return (1.0 - ssim_lambda) * l1 + ssim_lambda * d_ssim, l1.detach()
