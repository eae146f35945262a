"""Which of two disagreeing sides moved: the frame, or the model. The other frames decide.

The robust loss (``robust.py``) leaves out of a step the blocks of a frame whose residual stands out. A high
residual has two causes, and the loss treated both as the first:

- something moved through *this frame* (a person), which the model rightly does not draw: leave it out;
- the model draws something that *this frame* shows is not there: a ghost, left by a person who stood in
  other frames (walking slowly, or towards the camera, they stay at about the same pixels for a second and
  the model fits them like scenery). This frame is the one that sees through the ghost. Left out, it cannot
  correct the model, and the robust loss ends up protecting the very ghosts it was meant to prevent.

The frames around this one in time tell them apart. Each pixel is lifted to 3D at the depth the model
renders and looked up in ``neighbours`` frames before and after, up to ``reach`` of the capture away; a
neighbour counts where its own rendered depth agrees (``depth_tolerance``: otherwise something nearer hides
that point there). Brought to this frame's exposure by a per-channel gain, the neighbours' median colour is
what the room looks like there. Compared block by block (mean colours: a depth a pixel off moves texture
within a block, not the block's mean), a block that disagrees with its neighbours is this frame's own
transient content; one that agrees with them is the model's mistake. The robust loss masks only the first
(``GaussianTraining``: its blocks AND these); where too few neighbours see a block, its residual decides alone.

The masks come from the model as it is at ``consensus_start`` and every ``consensus_every`` steps after
(``GaussianConfig``): forward renders of every training frame. Off by default: at mid size and true poses
(``bench/ghosts.py``) the robust loss alone left *more* opacity in the people's path than no robust loss at
all, and this witness with a lower residual bar from the start cut it by 38% over three seeds; but through the
whole pipeline (``bench/capture.py``, SfM's poses) it did no better than the product on one seed and worse on
another, for 29-39% more training time (bench/RESULTS.md, sessions 9 and 10). A walker who stays at about
the same pixels for most of the capture is agreed with by every neighbour in time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidscene.pipeline.cameras import Camera


@dataclass(frozen=True)
class ConsensusSettings:
    reach: float = 0.12  # neighbours lie up to this share of the capture's frames before and after a frame
    neighbours: int = 3  # on each side, evenly spaced up to ``reach``
    depth_tolerance: float = 0.08  # relative depth disagreement past which a neighbour sees something else
    min_votes: int = 2  # blocks fewer neighbours see are left to the residual alone
    block: int = 8  # pixels on a block's side (the robust loss's)
    factor: float = 1.5  # a block disagrees past this x the frame's median block disagreement ...
    floor: float = 0.03  # ... and this absolute colour difference (0..1)
    opaque: float = 0.5  # the model's depth counts where it draws at least this opacity


def neighbour_offsets(frames: int, settings: ConsensusSettings) -> list[int]:
    """Frame offsets (both signs) of the neighbours a frame is compared with: at least 1 apart, distinct."""
    reach = max(1, round(settings.reach * frames))
    steps = {max(1, round(reach * (k + 1) / settings.neighbours)) for k in range(settings.neighbours)}
    return sorted([-s for s in steps] + list(steps))


def _pixel_rays(camera: Camera, device: torch.device) -> Tensor:
    """``(H, W, 3)`` camera-space directions with ``z = 1`` through each pixel's centre."""
    v, u = torch.meshgrid(torch.arange(camera.height, device=device, dtype=torch.float32) + 0.5,
                          torch.arange(camera.width, device=device, dtype=torch.float32) + 0.5, indexing="ij")
    return torch.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, torch.ones_like(u)], dim=-1)


def _pose(camera: Camera, device: torch.device) -> tuple[Tensor, Tensor]:
    return (torch.as_tensor(camera.R, dtype=torch.float32, device=device),
            torch.as_tensor(camera.t, dtype=torch.float32, device=device))


def _sample(image: Tensor, uv: Tensor, camera: Camera) -> Tensor:
    """Bilinear look-up of ``image`` (``(H, W, C)``) at pixel coordinates ``uv`` (``(H', W', 2)``)."""
    grid = torch.stack([uv[..., 0] / camera.width * 2 - 1, uv[..., 1] / camera.height * 2 - 1], dim=-1)
    sampled = F.grid_sample(image.permute(2, 0, 1)[None], grid[None], mode="bilinear", padding_mode="border",
                            align_corners=False)
    return sampled[0].permute(1, 2, 0)


@torch.no_grad()
def warped_votes(index: int, target: Tensor, cameras: Sequence[Camera], images: Callable[[int], Tensor],
                 depths: Sequence[Tensor], settings: ConsensusSettings) -> tuple[Tensor, Tensor]:
    """Frame ``index`` (its image: ``target``)'s neighbours seen from it: ``(K, H, W, 3)`` colours at its
    exposure and ``(K, H, W)`` whether each neighbour sees the same surface there (``K`` may be 0)."""
    camera, depth = cameras[index], depths[index]
    device = depth.device
    rotation, translation = _pose(camera, device)
    world = (_pixel_rays(camera, device) * depth[..., None] - translation) @ rotation  # R^T (x - t)
    colours, valid = [], []
    for offset in neighbour_offsets(len(cameras), settings):
        j = index + offset
        if not 0 <= j < len(cameras):
            continue
        other = cameras[j]
        rot_j, trans_j = _pose(other, device)
        cam = world @ rot_j.T + trans_j
        z = cam[..., 2]
        uv = torch.stack([cam[..., 0] / z.clamp_min(1e-6) * other.fx + other.cx,
                          cam[..., 1] / z.clamp_min(1e-6) * other.fy + other.cy], dim=-1)
        inside = ((depth > 0) & (z > 1e-6) & (uv[..., 0] >= 0) & (uv[..., 0] < other.width)
                  & (uv[..., 1] >= 0) & (uv[..., 1] < other.height))
        seen = _sample(depths[j][..., None], uv, other)[..., 0]
        same = inside & ((seen - z).abs() <= settings.depth_tolerance * z)
        if int(same.sum()) < 16:
            continue
        colour = _sample(images(j), uv, other)
        # Exposure: the neighbour scaled per channel to this frame over the pixels both see.
        gain = target[same].median(dim=0).values.clamp_min(1e-3) / colour[same].median(dim=0).values.clamp_min(1e-3)
        colours.append(colour * gain.clamp(0.5, 2.0))
        valid.append(same)
    if not colours:
        return (torch.zeros((0, camera.height, camera.width, 3), device=device),
                torch.zeros((0, camera.height, camera.width), dtype=torch.bool, device=device))
    return torch.stack(colours), torch.stack(valid)


@torch.no_grad()
def consensus_mask(index: int, cameras: Sequence[Camera], images: Callable[[int], Tensor],
                   depths: Sequence[Tensor], settings: ConsensusSettings = ConsensusSettings()) -> Tensor:
    """``(H, W)`` bool: the pixels of frame ``index`` that its neighbours disagree with, or that too few of them
    see to say (``images(i)``: frame ``i`` as ``(H, W, 3)`` in 0..1; ``depths[i]``: the model's depth there,
    0 where it draws too little)."""
    target = images(index)
    height, width = target.shape[:2]
    colours, valid = warped_votes(index, target, cameras, images, depths, settings)
    if not len(colours):
        return torch.ones((height, width), dtype=torch.bool, device=target.device)
    block = settings.block
    seen = F.avg_pool2d(valid[:, None].float(), block, ceil_mode=True)[:, 0]  # (K, h, w): share each vote sees
    sums = F.avg_pool2d((colours * valid[..., None]).permute(0, 3, 1, 2), block, ceil_mode=True)
    counted = seen >= 0.5
    votes = (sums / seen[:, None].clamp_min(1e-6)).masked_fill(~counted[:, None], float("nan"))
    consensus = torch.nanmedian(votes, dim=0).values  # (3, h, w)
    own = F.avg_pool2d(target.permute(2, 0, 1)[None], block, ceil_mode=True)[0]
    decided = counted.sum(dim=0) >= settings.min_votes
    disagreement = (consensus - own).abs().mean(dim=0)
    typical = float(disagreement[decided].median()) if bool(decided.any()) else 0.0
    disagrees = ~decided | (disagreement > max(settings.factor * typical, settings.floor))
    return disagrees.repeat_interleave(block, dim=0).repeat_interleave(block, dim=1)[:height, :width]


def masks_share(masks: dict[int, Tensor]) -> float:
    """Mean share of the frames ``masks`` flag (for the log)."""
    return float(np.mean([float(m.float().mean()) for m in masks.values()])) if masks else 0.0
