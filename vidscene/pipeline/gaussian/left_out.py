"""What the robust loss leaves out of *every* view that sees it is the model's failure, not something moving.

The robust loss (``robust.py``) flags the blocks of a frame whose residual stands out. A person walking
through is in some frames only: the wall behind them is flagged in the frames where they stand and fitted
from all the others. Fine texture the model has not learned yet is flagged in *every* frame that sees it.
Left out everywhere, nothing teaches it; it gets no gradient, so no densification either, and it stays
unlearned and left out to the end: on a clean texture-rich clip at ``standard``, 15% of every frame, 10 dB
worse there than without the robust loss, hidden by a quality figure that left it out too (bench/RESULTS.md,
session 10).

The gaussians carry the comparison from view to view, without depth or learned features. Each view's last
verdict is kept at block resolution (``record``). When a frame flags blocks, the centres of the gaussians
drawn there are looked up in every other view's last verdict: a gaussian flagged in most of the views it
lands in sits where the model has failed, and a flagged block made of such gaussians stays in the loss
(``failed``). A region it keeps is taught by every view at once, its residual falls, and the views stop
flagging it. Occlusion is ignored (a centre lands in a view's block whether or not something nearer hides it
there); a person covers a given piece of wall in a minority of the views that see it, which is what the
``share`` bar separates.

Verdicts are kept at block resolution in normalised image coordinates, so a frame of another size (the
quality figure measures at the frames' own size) reads them the same way. The verdicts kept are the
residual's own, before this rule: otherwise a region kept in the loss would count as fitted in the next
view's look-up and be left out again, and the two would alternate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidscene.pipeline.cameras import Camera

UNJUDGED, KEPT, FLAGGED = -1, 0, 1
_Poses = tuple[Tensor, Tensor, Tensor]  # (V, 3, 3) rotations, (V, 3) translations, (V, 4) fx, fy, cx, cy / size


@dataclass(frozen=True)
class LeftOutSettings:
    share: float = 0.7  # a gaussian flagged in more than this share of the views it lands in is the model's failure
    min_views: int = 4  # ... counted only when at least this many views have judged where it lands
    min_opacity: float = 0.05  # fainter gaussians are not asked (they change little of any pixel)
    sample: int = 1024  # most gaussians asked per frame (evenly strided): a few for every flagged block
    views: int = 32  # most other views asked (evenly strided): the share they flag is what counts


def _normalised(points: Tensor, poses: _Poses) -> tuple[Tensor, Tensor]:
    """``(V, M, 2)`` image coordinates of ``points`` (M, 3) in 0..1 across each of the ``V`` cameras' frames,
    and ``(V, M)`` whether each lies in front of that camera and inside its frame."""
    rotations, translations, lens = poses
    cam = torch.einsum("vij,mj->vmi", rotations, points) + translations[:, None]
    z = cam[..., 2].clamp_min(1e-6)
    uv = torch.stack([(cam[..., 0] / z * lens[:, None, 0] + lens[:, None, 2]),
                      (cam[..., 1] / z * lens[:, None, 1] + lens[:, None, 3])], dim=-1)
    inside = (cam[..., 2] > 1e-6) & (uv >= 0).all(dim=-1) & (uv < 1).all(dim=-1)
    return uv, inside


def _poses(cameras: Sequence[Camera], device: torch.device) -> _Poses:
    lens = [[c.fx / c.width, c.fy / c.height, c.cx / c.width, c.cy / c.height] for c in cameras]
    return (torch.as_tensor(np.stack([c.R for c in cameras]), dtype=torch.float32, device=device),
            torch.as_tensor(np.stack([c.t for c in cameras]), dtype=torch.float32, device=device),
            torch.as_tensor(lens, dtype=torch.float32, device=device))


def _cells(uv: Tensor, shape: tuple[int, int]) -> tuple[Tensor, Tensor]:
    rows, cols = shape
    return ((uv[..., 1] * rows).long().clamp(0, rows - 1), (uv[..., 0] * cols).long().clamp(0, cols - 1))


class LeftOutHistory:
    """Each training view's last verdict, per block (``UNJUDGED`` where it was never drawn), and the rule
    that reads them (module docstring)."""

    def __init__(self, settings: LeftOutSettings = LeftOutSettings()) -> None:
        self.settings = settings
        self.verdicts: dict[int, Tensor] = {}  # view -> (rows, cols) int8
        self._stacked: tuple[tuple[int, tuple[int, ...]], _Poses] | None = None

    def record(self, view: int, flagged: Tensor, judged: Tensor | None = None) -> None:
        """Keep ``flagged`` (blocks, bool) as view ``view``'s verdict where ``judged`` (blocks, bool; None:
        all), leaving its earlier verdict on the blocks this step did not judge."""
        current = self.verdicts.get(view)
        if current is None or current.shape != flagged.shape:
            current = torch.full(flagged.shape, UNJUDGED, dtype=torch.int8, device=flagged.device)
        verdict = torch.where(flagged, FLAGGED, KEPT).to(torch.int8)
        self.verdicts[view] = verdict if judged is None else torch.where(judged, verdict, current)

    @torch.no_grad()
    def failed(self, flagged: Tensor, camera: Camera, means: Tensor, opacities: Tensor,
               cameras: Sequence[Camera], view: int | None = None, screen: Tensor | None = None) -> Tensor:
        """The blocks of ``flagged`` (``camera``'s blocks, bool) that the other views flag too: the model's
        failure, to keep in the loss. ``means`` (N, 3) and ``opacities`` (N,) are the gaussians as drawn;
        ``cameras[j]`` is the camera of recorded view ``j``; ``view``, if recorded, is not asked about itself.
        ``screen`` (N, 2), the centres in ``camera``'s pixels where the render has them (NaN or anywhere off
        the frame for those it culled), saves projecting every gaussian again: most of this look-up's cost."""
        failed = torch.zeros_like(flagged)
        others = sorted(j for j in self.verdicts if j != view)
        if len(others) > self.settings.views:
            others = [others[round(k * (len(others) - 1) / (self.settings.views - 1))]
                      for k in range(self.settings.views)]
        if not bool(flagged.any()) or len(others) < self.settings.min_views or means.shape[0] == 0:
            return failed
        means = means.detach().float()
        if screen is None:
            projected, in_front = _normalised(means, _poses([camera], means.device))
            uv, inside = projected[0], in_front[0]
        else:
            uv = screen.detach().float() / torch.tensor([camera.width, camera.height], device=screen.device)
            inside = (uv >= 0).all(dim=-1) & (uv < 1).all(dim=-1)
        rows, cols = _cells(uv, (int(flagged.shape[0]), int(flagged.shape[1])))
        asked = torch.nonzero(inside & (opacities.detach() >= self.settings.min_opacity) & flagged[rows, cols])
        asked = asked.squeeze(1)
        if asked.numel() == 0:
            return failed
        if asked.numel() > self.settings.sample:
            asked = asked[torch.linspace(0, asked.numel() - 1, self.settings.sample, device=asked.device).long()]
        seen = torch.zeros(asked.numel(), device=means.device)
        flagged_there = torch.zeros_like(seen)
        for shape, views in self._by_shape(others).items():
            verdicts = torch.stack([self.verdicts[j] for j in views])  # (V, rows, cols)
            other_uv, other_inside = _normalised(means[asked], self._poses_of(views, cameras, means.device))
            r, c = _cells(other_uv, shape)
            there = verdicts.reshape(len(views), -1).gather(1, r * shape[1] + c)
            judged = other_inside & (there != UNJUDGED)
            seen += judged.sum(dim=0)
            flagged_there += (judged & (there == FLAGGED)).sum(dim=0)
        counted = seen >= self.settings.min_views
        if not bool(counted.any()):
            return failed
        share = flagged_there[counted] / seen[counted]
        cell = rows[asked][counted] * flagged.shape[1] + cols[asked][counted]
        total = torch.zeros(flagged.numel(), device=means.device).index_add_(0, cell, share)
        count = torch.zeros_like(total).index_add_(0, cell, torch.ones_like(share))
        # A block no centre landed in (a large gaussian covers many) takes its neighbours' mean.
        grid = (1, 1, int(flagged.shape[0]), int(flagged.shape[1]))
        near_total = F.avg_pool2d(total.reshape(grid), 3, stride=1, padding=1)[0, 0]
        near_count = F.avg_pool2d(count.reshape(grid), 3, stride=1, padding=1)[0, 0]
        own = count.reshape(flagged.shape) > 0
        mean = torch.where(own, total.reshape(flagged.shape) / count.reshape(flagged.shape).clamp_min(1),
                           near_total / near_count.clamp_min(1e-6))
        return flagged & (own | (near_count > 0)) & (mean > self.settings.share)

    def _by_shape(self, views: list[int]) -> dict[tuple[int, int], list[int]]:
        """``views`` grouped by the shape of their verdicts (frames of one size share one)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for j in views:
            groups.setdefault((int(self.verdicts[j].shape[0]), int(self.verdicts[j].shape[1])), []).append(j)
        return groups

    def _poses_of(self, views: list[int], cameras: Sequence[Camera], device: torch.device) -> _Poses:
        """The cameras of ``views`` stacked, from those of every recorded view, stacked once while the recorded
        views and the cameras stay the same (every step once each view has been judged)."""
        recorded = tuple(sorted(self.verdicts))
        key = (id(cameras), recorded)
        if self._stacked is None or self._stacked[0] != key:
            self._stacked = (key, _poses([cameras[j] for j in recorded], device))
        rows = torch.as_tensor([recorded.index(j) for j in views], device=device)
        rotations, translations, lens = self._stacked[1]
        return rotations[rows], translations[rows], lens[rows]

    def state(self) -> dict[str, Tensor]:
        return {str(view): verdict.cpu().clone() for view, verdict in self.verdicts.items()}

    def restore(self, state: dict[str, Tensor], device: torch.device) -> None:
        self.verdicts = {int(view): verdict.to(device) for view, verdict in state.items()}
