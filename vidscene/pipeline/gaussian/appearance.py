"""A colour transform per training frame, so that auto-exposure and white-balance drift are not modelled as
geometry.

A phone re-exposes as it turns towards a window: the same wall is darker in some frames. Fitted with one
colour per gaussian, that difference becomes view-dependent colour and floaters that darken some views.
Each frame ``i`` gets an affine colour map ``c' = A_i c + b_i`` applied to the render before the loss (as
gsplat's per-image appearance and NeRF-W's embeddings do, in its simplest form), pulled towards the identity
by a penalty, so the gaussians hold the capture's typical colours. Exports, the viewer and evaluation on
held-out frames use the identity: one neutral exposure for the whole scene.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class FrameColours:
    """Affine colour maps of ``count`` training frames, with their own optimiser."""

    def __init__(self, count: int, device: torch.device, lr: float) -> None:
        self.matrix = torch.eye(3, device=device).repeat(count, 1, 1).requires_grad_(True)
        self.bias = torch.zeros((count, 3), device=device, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.matrix, self.bias], lr=lr, eps=1e-15)

    def apply(self, image: Tensor, frame: int) -> Tensor:
        """``image`` (H, W, 3) as frame ``frame``'s camera exposed it."""
        return image @ self.matrix[frame].T + self.bias[frame]

    def penalty(self, frame: int) -> Tensor:
        """Squared distance of frame ``frame``'s map from the identity."""
        eye = torch.eye(3, device=self.matrix.device)
        return ((self.matrix[frame] - eye) ** 2).sum() + (self.bias[frame] ** 2).sum()

    def step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state(self) -> dict[str, Any]:
        return {"matrix": self.matrix.detach().cpu(), "bias": self.bias.detach().cpu(),
                "optimizer": self.optimizer.state_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.matrix.copy_(state["matrix"].to(self.matrix.device))
            self.bias.copy_(state["bias"].to(self.bias.device))
        self.optimizer.load_state_dict(state["optimizer"])
