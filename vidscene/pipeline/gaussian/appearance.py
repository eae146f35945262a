"""A colour transform per training frame, so that auto-exposure and white-balance drift are not modelled as
geometry.

A phone re-exposes as it turns towards a window: the same wall is darker in some frames. Fitted with one
colour per gaussian, that difference becomes view-dependent colour and floaters that darken some views.
Each frame ``i`` gets a gain and an offset per channel, ``c' = g_i * c + b_i`` (what exposure and white
balance do to linear-ish colours), applied to the render before the loss, as gsplat's per-image appearance
and NeRF-W's embeddings do in richer forms. A full 3x3 map per frame was tried first: it also absorbed
view-dependent colour that belongs to the gaussians and cost clean captures 1 dB (bench/RESULTS.md).

Only differences between frames are observable: a brighter model seen through darker maps renders the same
frames. So after every step the maps are re-centred over the training frames (mean gain 1, mean offset 0):
the model holds the capture's average exposure, which exports, the viewer and held-out frames (identity map)
then show. A small penalty keeps single maps from wandering where a frame says little (a blank wall).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


class FrameColours:
    """Per-channel gain and offset of ``count`` frames; ``trained`` are the frames that get a map (the rest, held
    out, keep the identity and do not count in the centring).

    Each frame has its own Adam state and is stepped only when it was drawn: one Adam over all the maps would
    go on moving every other frame's map by its momentum at every step, and the maps learn nothing.
    """

    def __init__(self, count: int, device: torch.device, lr: float, trained: Sequence[int] | None = None) -> None:
        self.gain = torch.ones((count, 3), device=device)
        self.bias = torch.zeros((count, 3), device=device)
        self.trained = list(range(count)) if trained is None else list(trained)
        self._params = [torch.zeros(6, device=device, requires_grad=True) for _ in range(count)]
        self._optimizers = [torch.optim.Adam([p], lr=lr, eps=1e-15) for p in self._params]

    def apply(self, image: Tensor, frame: int) -> Tensor:
        """``image`` (H, W, 3) as frame ``frame``'s camera exposed it."""
        delta = self._params[frame]
        return image * (self.gain[frame] + delta[:3]) + (self.bias[frame] + delta[3:])

    def penalty(self, frame: int) -> Tensor:
        """Squared distance of frame ``frame``'s map from the identity."""
        delta = self._params[frame]
        return ((self.gain[frame] + delta[:3] - 1.0) ** 2).sum() + ((self.bias[frame] + delta[3:]) ** 2).sum()

    def step(self, frame: int) -> None:
        """Apply frame ``frame``'s gradient to its map, then re-centre the maps (the gauge)."""
        self._optimizers[frame].step()
        self._optimizers[frame].zero_grad(set_to_none=True)
        with torch.no_grad():
            delta = self._params[frame]
            self.gain[frame] += delta[:3]
            self.bias[frame] += delta[3:]
            delta.zero_()
            if len(self.trained) > 1:
                self.gain[self.trained] += 1.0 - self.gain[self.trained].mean(dim=0)
                self.bias[self.trained] -= self.bias[self.trained].mean(dim=0)

    def state(self) -> dict[str, Any]:
        return {"gain": self.gain.cpu().clone(), "bias": self.bias.cpu().clone(),
                "optimizers": [opt.state_dict() for opt in self._optimizers]}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; a state of another shape (a checkpoint written with the 3x3 maps of earlier
        versions) is ignored: the maps start again from the identity."""
        if "gain" not in state or state["gain"].shape != self.gain.shape:
            return
        self.gain.copy_(state["gain"].to(self.gain.device))
        self.bias.copy_(state["bias"].to(self.bias.device))
        for opt, opt_state in zip(self._optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
