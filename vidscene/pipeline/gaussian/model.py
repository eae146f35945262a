"""The trainable gaussians: raw (pre-activation) parameters, their initialisation from SfM, and activations.

Parameters are stored exactly as the 3DGS ``.ply`` stores them (log scales, logit opacities, unnormalised
quaternions, SH split into the DC term and the rest) so export is a plain copy and learning rates from the
paper apply unchanged.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.antialias import apply_filter, bake
from vidscene.pipeline.gaussian.sh import num_sh_bases, rgb_to_sh0

logger = logging.getLogger(__name__)

PARAM_NAMES = ("means", "scales", "quats", "opacities", "sh0", "shN")
FILTER_KEY = "filter_variances"  # the 3D filter (antialias.py) in a checkpoint's params; absent: no filter
INIT_OPACITY = 0.1
MIN_INIT_POINTS = 1000  # fewer SfM points than this: top up with random points so empty regions can fill in
RANDOM_INIT_POINTS = 10_000  # ... up to this many in all (1 000 random points fitted only 24.9 dB, see bench)


class Gaussians:
    """A named set of leaf tensors (``means, scales, quats, opacities, sh0, shN``), all with N rows.

    ``scales`` are logs, ``opacities`` logits, ``quats`` unnormalised w-x-y-z, ``sh0`` is (N, 1, 3), ``shN``
    (N, K-1, 3). The densification strategy swaps the tensors in ``params`` for longer or shorter ones.

    ``filter_variances`` (N,), when set, is each gaussian's 3D smoothing filter (``antialias``): every render
    and every export sees the filtered scales and opacities. It is not optimised; the trainer recomputes it from
    the cameras (and must after densification changed N).
    """

    def __init__(self, params: dict[str, Tensor], filter_variances: Tensor | None = None) -> None:
        missing = set(PARAM_NAMES) - set(params)
        if missing:
            raise ValueError(f"missing gaussian parameters: {sorted(missing)}")
        n = params["means"].shape[0]
        if any(p.shape[0] != n for p in params.values()):
            raise ValueError("all gaussian parameters need the same number of rows")
        self.params = {name: params[name] for name in PARAM_NAMES}
        self.filter_variances = filter_variances

    def __len__(self) -> int:
        return int(self.params["means"].shape[0])

    @property
    def device(self) -> torch.device:
        return self.params["means"].device

    @property
    def max_sh_degree(self) -> int:
        return round(math.sqrt(self.params["shN"].shape[1] + 1)) - 1

    def activated(self) -> tuple[Tensor, Tensor, Tensor, Tensor, tuple[Tensor, Tensor]]:
        """``(means, quats, scales, opacities, (sh0, shN))`` as ``render`` takes them (differentiable).

        The SH coefficients stay the two stored tensors: joining them costs a 57 MB copy and its backward every
        step at 300k gaussians (``sh.joined_sh`` where one tensor is needed)."""
        p = self.params
        sh = (p["sh0"], p["shN"])
        scales, opacities = torch.exp(p["scales"]), torch.sigmoid(p["opacities"])
        if self.filter_variances is not None:
            if self.filter_variances.shape[0] != len(self):
                raise RuntimeError("the 3D filter is stale: recompute it after densification")
            scales, opacities = apply_filter(scales, opacities, self.filter_variances)
        return p["means"], p["quats"], scales, opacities, sh

    @torch.no_grad()
    def drawn_opacities(self) -> Tensor:
        """(N,) the opacities the renderer draws with (after the 3D filter), detached: a gaussian whose drawn
        opacity is below ``project.ALPHA_MIN`` changes no pixel from any viewpoint, so it also gets no gradient."""
        opacities = torch.sigmoid(self.params["opacities"].detach())
        if self.filter_variances is None:
            return opacities
        return apply_filter(torch.exp(self.params["scales"].detach()), opacities, self.filter_variances)[1]

    def exported(self) -> dict[str, NDArray[np.float32]]:
        """Raw parameters as files store them, the 3D filter baked into ``scales`` and ``opacities`` (viewers
        know nothing of it)."""
        arrays = self.to_numpy()
        if self.filter_variances is not None:
            log_scales, logits = bake(self.params["scales"].detach(), self.params["opacities"].detach(),
                                      self.filter_variances.detach())
            arrays["scales"] = log_scales.cpu().numpy().astype(np.float32)
            arrays["opacities"] = logits.cpu().numpy().astype(np.float32)
        return arrays

    def to_numpy(self) -> dict[str, NDArray[np.float32]]:
        return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.params.items()}

    def sh_numpy(self) -> NDArray[np.float32]:
        """(N, K, 3) all SH coefficients, DC first."""
        sh = torch.cat([self.params["sh0"], self.params["shN"]], dim=1)
        return sh.detach().cpu().numpy().astype(np.float32)

    @classmethod
    def from_state(cls, state: dict[str, Tensor], device: torch.device | str = "cpu",
                   requires_grad: bool = False) -> Gaussians:
        params = {k: state[k].detach().to(device=device, dtype=torch.float32).clone()
                  .requires_grad_(requires_grad) for k in PARAM_NAMES}
        filt = state.get(FILTER_KEY)
        return cls(params, None if filt is None else filt.detach().to(device=device, dtype=torch.float32).clone())

    def state(self) -> dict[str, Tensor]:
        """CPU copies of the parameters and of the 3D filter when there is one (for checkpoints)."""
        out = {k: v.detach().cpu().clone() for k, v in self.params.items()}
        if self.filter_variances is not None:
            out[FILTER_KEY] = self.filter_variances.detach().cpu().clone()
        return out


def scene_extent(cameras: list[Camera]) -> float:
    """Radius of the cameras around their centroid, x1.1 (the 3DGS "cameras extent"), at least a small floor.

    Learning rates for positions and densification sizes are relative to it, so a scene's scale does not
    matter.
    """
    centers = np.stack([c.center for c in cameras])
    radius = float(np.linalg.norm(centers - centers.mean(axis=0), axis=1).max()) if len(cameras) > 1 else 0.0
    return max(radius * 1.1, 1e-2)


def knn_mean_distance(points: Tensor, k: int = 3, chunk_elems: int = 8_000_000) -> Tensor:
    """Mean distance from every point to its ``k`` nearest other points, (N,), by chunked ``cdist``.

    Memory stays around ``chunk_elems`` floats whatever N; O(N²) time, which is a second or two for the tens
    of thousands of points SfM produces here.
    """
    n = points.shape[0]
    if n <= 1:
        return torch.ones(n, dtype=points.dtype, device=points.device)
    k = min(k, n - 1)
    rows = max(1, chunk_elems // n)
    out = torch.empty(n, dtype=points.dtype, device=points.device)
    for start in range(0, n, rows):
        block = points[start:start + rows]
        d = torch.cdist(block, points)
        # The point itself is at distance 0: take k+1 smallest and drop the first.
        nearest = torch.topk(d, k + 1, dim=1, largest=False).values[:, 1:]
        out[start:start + rows] = nearest.mean(dim=1)
    return out


def init_from_points(points: NDArray[np.float32], colors: NDArray[np.uint8], cameras: list[Camera], *,
                     sh_degree: int, generator: torch.Generator,
                     min_points: int = MIN_INIT_POINTS, random_points: int = RANDOM_INIT_POINTS) -> Gaussians:
    """Initial gaussians on the SfM points: DC colour from the point colour, isotropic size from the 3 nearest
    neighbours, opacity 0.1, identity rotation, higher SH zero.

    With fewer than ``min_points`` SfM points, random grey points are added (up to ``random_points`` in all)
    inside the box spanned by the cameras grown by the scene extent, so a scene with a sparse reconstruction
    can still be fitted.
    """
    pts = torch.as_tensor(np.asarray(points, dtype=np.float32)).reshape(-1, 3)
    rgb = torch.as_tensor(np.asarray(colors, dtype=np.uint8)).reshape(-1, 3).to(torch.float32) / 255.0
    finite = torch.isfinite(pts).all(dim=1)
    pts, rgb = pts[finite], rgb[finite]
    if pts.shape[0] < min_points:
        extra = max(min_points, random_points) - pts.shape[0]
        centers = torch.as_tensor(np.stack([c.center for c in cameras]), dtype=torch.float32)
        margin = scene_extent(cameras)
        lo = centers.min(dim=0).values - margin
        hi = centers.max(dim=0).values + margin
        rand = lo + (hi - lo) * torch.rand((extra, 3), generator=generator)
        pts = torch.cat([pts, rand])
        rgb = torch.cat([rgb, torch.full((extra, 3), 0.5)])
        logger.info("added random initial points", extra={"sfm_points": int(finite.sum()), "random": extra})
    n = pts.shape[0]
    dist = knn_mean_distance(pts).clamp_min(1e-7)
    k = num_sh_bases(sh_degree)
    params = {
        "means": pts.clone(),
        "scales": torch.log(dist)[:, None].repeat(1, 3),
        "quats": torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
        "opacities": torch.full((n,), math.log(INIT_OPACITY / (1 - INIT_OPACITY))),
        "sh0": rgb_to_sh0(rgb)[:, None, :],
        "shN": torch.zeros((n, k - 1, 3)),
    }
    return Gaussians(params)
