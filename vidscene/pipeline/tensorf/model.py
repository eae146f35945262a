"""TensoRF radiance field with the VM (vector-matrix) decomposition.

Density and appearance features at a point are sums of outer products of a 2D plane and a 1D line per axis
pair (XY plane x Z line, XZ x Y, YZ x X). Density is one softplus-activated scalar; appearance features are
projected by a small basis matrix and decoded, with the view direction, by a small MLP. Coordinates are
normalised to [-1, 1] inside the model's axis-aligned box ``aabb`` (in the model's ``space``: SfM world units,
or a forward-facing capture's NDC, see ``space.py``), and grid
index ``i`` on an axis sits at ``aabb_min + i * voxel`` (``align_corners=True`` sampling), so slicing a grid to
a smaller box or resampling it keeps the represented function the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidscene.pipeline.tensorf.space import WORLD, FieldSpace, space_from_dict

# Plane i spans axes MAT_MODE[i]; line i runs along VEC_MODE[i] (the axis the plane does not cover).
MAT_MODE: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))
VEC_MODE: tuple[int, ...] = (2, 1, 0)
INIT_SCALE = 0.1


def grid_size_for_voxels(aabb: Tensor, n_voxels: int) -> list[int]:
    """Per-axis resolution giving about ``n_voxels`` cubic voxels in ``aabb`` (a flat box gets a flat grid)."""
    size = (aabb[1] - aabb[0]).double()
    voxel = (size.prod() / n_voxels) ** (1.0 / 3.0)
    return [max(2, int(v)) for v in (size / voxel).round().long().tolist()]


def positional_encoding(x: Tensor, n_freqs: int) -> Tensor:
    """sin/cos of ``x`` at ``2**k`` for k < n_freqs, flattened per point: (N, D) -> (N, 2 * n_freqs * D)."""
    freqs = 2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype)
    scaled = (x[..., None] * freqs).reshape(*x.shape[:-1], -1)
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=-1)


class AppearanceMLP(nn.Module):
    """Decodes appearance features and a unit view direction into RGB in [0, 1]."""

    def __init__(self, feature_dim: int, hidden: int, feature_pe: int, view_pe: int) -> None:
        super().__init__()
        self.feature_pe = feature_pe
        self.view_pe = view_pe
        in_dim = feature_dim + 3 + 2 * feature_pe * feature_dim + 2 * view_pe * 3
        self.layers = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 3))
        last = self.layers[-1]
        assert isinstance(last, nn.Linear)
        nn.init.constant_(last.bias, 0.0)

    def forward(self, features: Tensor, viewdirs: Tensor) -> Tensor:
        parts = [features, viewdirs]
        if self.feature_pe > 0:
            parts.append(positional_encoding(features, self.feature_pe))
        if self.view_pe > 0:
            parts.append(positional_encoding(viewdirs, self.view_pe))
        return torch.sigmoid(self.layers(torch.cat(parts, dim=-1)))


SH_COEFFS = 9  # real spherical harmonics up to degree 2
_SH_C0 = 0.28209479177387814
_SH_C1 = 0.4886025119029199
_SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)


def sh_basis(d: Tensor) -> Tensor:
    """Real SH basis up to degree 2 at unit directions (N, 3) -> (N, 9)."""
    x, y, z = d.unbind(-1)
    return torch.stack([torch.full_like(x, _SH_C0), -_SH_C1 * y, _SH_C1 * z, -_SH_C1 * x,
                        _SH_C2[0] * x * y, _SH_C2[1] * y * z, _SH_C2[2] * (2 * z * z - x * x - y * y),
                        _SH_C2[3] * x * z, _SH_C2[4] * (x * x - y * y)], dim=-1)


class AppearanceSH(nn.Module):
    """Reads appearance features as 3 x 9 SH coefficients: no network, a fraction of the MLP's cost on CPUs."""

    def forward(self, features: Tensor, viewdirs: Tensor) -> Tensor:
        coeffs = features.view(-1, 3, SH_COEFFS)
        return torch.sigmoid((coeffs * sh_basis(viewdirs)[:, None, :]).sum(dim=-1))


@dataclass(frozen=True)
class FieldShape:
    """Everything needed to rebuild a ``TensorVM`` with matching parameter shapes before loading weights."""

    aabb: tuple[tuple[float, float, float], tuple[float, float, float]]
    grid_size: tuple[int, int, int]
    density_components: tuple[int, int, int]
    appearance_components: tuple[int, int, int]
    appearance_dim: int
    mlp_hidden: int
    feature_pe: int
    view_pe: int
    density_shift: float
    distance_scale: float
    decoder: str = "mlp"  # "mlp" or "sh"
    space: FieldSpace = WORLD  # the coordinates ``aabb`` is in

    def to_dict(self) -> dict[str, Any]:
        return {"aabb": [list(self.aabb[0]), list(self.aabb[1])], "grid_size": list(self.grid_size),
                "density_components": list(self.density_components),
                "appearance_components": list(self.appearance_components), "appearance_dim": self.appearance_dim,
                "mlp_hidden": self.mlp_hidden, "feature_pe": self.feature_pe, "view_pe": self.view_pe,
                "density_shift": self.density_shift, "distance_scale": self.distance_scale,
                "decoder": self.decoder, "space": self.space.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldShape:
        lo, hi = d["aabb"]
        return cls(aabb=(_xyz(lo), _xyz(hi)), grid_size=_ijk(d["grid_size"]),
                   density_components=_ijk(d["density_components"]),
                   appearance_components=_ijk(d["appearance_components"]),
                   appearance_dim=int(d["appearance_dim"]), mlp_hidden=int(d["mlp_hidden"]),
                   feature_pe=int(d["feature_pe"]), view_pe=int(d["view_pe"]),
                   density_shift=float(d["density_shift"]), distance_scale=float(d["distance_scale"]),
                   decoder=str(d.get("decoder", "mlp")), space=space_from_dict(d.get("space")))


def _xyz(v: Sequence[float]) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])


def _ijk(v: Sequence[int]) -> tuple[int, int, int]:
    return int(v[0]), int(v[1]), int(v[2])


class TensorVM(nn.Module):
    """The VM-decomposed radiance field: ``density(x)`` and ``color(x, d)`` for normalised points."""

    aabb: Tensor
    background_logit: nn.Parameter

    def __init__(self, shape: FieldShape) -> None:
        super().__init__()
        self.density_shift = shape.density_shift
        self.distance_scale = shape.distance_scale
        self.space = shape.space
        self.density_components = shape.density_components
        self.appearance_components = shape.appearance_components
        self.register_buffer("aabb", torch.tensor(shape.aabb, dtype=torch.float32))
        self.grid_size = list(shape.grid_size)
        self.density_planes, self.density_lines = self._make_vm(shape.density_components, self.grid_size)
        self.app_planes, self.app_lines = self._make_vm(shape.appearance_components, self.grid_size)
        if shape.decoder not in ("mlp", "sh"):
            raise ValueError(f"unknown appearance decoder {shape.decoder!r}")
        app_dim = 3 * SH_COEFFS if shape.decoder == "sh" else shape.appearance_dim
        self.basis = nn.Linear(sum(shape.appearance_components), app_dim, bias=False)
        self.decoder: nn.Module = (AppearanceSH() if shape.decoder == "sh" else
                               AppearanceMLP(app_dim, shape.mlp_hidden, shape.feature_pe, shape.view_pe))
        # Whatever a ray sees beyond the box: one learned colour (0.5 grey at the start).
        self.background_logit = nn.Parameter(torch.zeros(3))
        self._shape = shape

    @staticmethod
    def _make_vm(components: Sequence[int], grid: Sequence[int]) -> tuple[nn.ParameterList, nn.ParameterList]:
        planes, lines = [], []
        for i, (m0, m1) in enumerate(MAT_MODE):
            v = VEC_MODE[i]
            planes.append(nn.Parameter(INIT_SCALE * torch.randn(1, components[i], grid[m1], grid[m0])))
            lines.append(nn.Parameter(INIT_SCALE * torch.randn(1, components[i], grid[v], 1)))
        return nn.ParameterList(planes), nn.ParameterList(lines)

    # --- shape bookkeeping -------------------------------------------------------------------------------------

    @property
    def shape(self) -> FieldShape:
        lo, hi = self.aabb.tolist()
        s = self._shape
        return FieldShape(aabb=(_xyz(lo), _xyz(hi)), grid_size=_ijk(self.grid_size),
                          density_components=s.density_components, appearance_components=s.appearance_components,
                          appearance_dim=s.appearance_dim, mlp_hidden=s.mlp_hidden, feature_pe=s.feature_pe,
                          view_pe=s.view_pe, density_shift=s.density_shift, distance_scale=s.distance_scale,
                          decoder=s.decoder, space=s.space)

    @property
    def voxel_size(self) -> Tensor:
        """World size of one grid step per axis."""
        return (self.aabb[1] - self.aabb[0]) / (torch.tensor(self.grid_size, device=self.aabb.device) - 1)

    def grid_parameters(self) -> list[nn.Parameter]:
        return [*self.density_planes, *self.density_lines, *self.app_planes, *self.app_lines]

    def network_parameters(self) -> list[nn.Parameter]:
        return [*self.basis.parameters(), *self.decoder.parameters(), self.background_logit]

    def background(self) -> Tensor:
        return torch.sigmoid(self.background_logit)

    # --- evaluation -----------------------------------------------------------------------------------------------

    def normalize(self, xyz: Tensor) -> Tensor:
        """Model-space points (world units, or NDC) -> [-1, 1] box coordinates."""
        return (xyz - self.aabb[0]) * (2.0 / (self.aabb[1] - self.aabb[0])) - 1.0

    @staticmethod
    def _coords(xyz: Tensor) -> tuple[Tensor, Tensor]:
        """grid_sample coordinates of N normalised points: (3, N, 1, 2) for planes and for lines."""
        plane = torch.stack([xyz[:, list(m)] for m in MAT_MODE]).unsqueeze(2)
        line_y = torch.stack([xyz[:, v] for v in VEC_MODE])
        line = torch.stack([torch.zeros_like(line_y), line_y], dim=-1).unsqueeze(2)
        return plane, line

    def density_feature(self, xyz_normed: Tensor) -> Tensor:
        """Density before its activation, at N normalised points: (N,)."""
        plane_c, line_c = self._coords(xyz_normed)
        feature = torch.zeros(xyz_normed.shape[0], device=xyz_normed.device)
        for i in range(3):
            p = F.grid_sample(self.density_planes[i], plane_c[i : i + 1], align_corners=True)
            ln = F.grid_sample(self.density_lines[i], line_c[i : i + 1], align_corners=True)
            feature = feature + (p * ln).sum(dim=1).view(-1)
        return feature

    def density(self, xyz_normed: Tensor) -> Tensor:
        """Volume density (per world unit before ``distance_scale``) at N normalised points: (N,)."""
        return F.softplus(self.density_feature(xyz_normed) + self.density_shift)

    @torch.no_grad()
    def density_volume(self, chunk: int = 262_144) -> Tensor:
        """The pre-activation density at every grid node, (1, 1, Z, Y, X), for fast rendering.

        Within a grid cell a plane is bilinear and a line linear in the remaining axis, so each outer product,
        and their sum, is trilinear: sampling this volume trilinearly gives exactly ``density_feature``.
        """
        points = dense_grid_points(self.aabb, self.grid_size).view(-1, 3)
        out = torch.empty(points.shape[0], device=points.device)
        for s in range(0, points.shape[0], chunk):
            out[s : s + chunk] = self.density_feature(self.normalize(points[s : s + chunk]))
        return out.view(1, 1, self.grid_size[2], self.grid_size[1], self.grid_size[0])

    def density_from_volume(self, volume: Tensor, xyz_normed: Tensor) -> Tensor:
        """``density`` computed from a ``density_volume`` (one trilinear lookup instead of six factor lookups)."""
        feature = F.grid_sample(volume, xyz_normed.view(1, -1, 1, 1, 3), align_corners=True).view(-1)
        return F.softplus(feature + self.density_shift)

    def appearance_features(self, xyz_normed: Tensor) -> Tensor:
        plane_c, line_c = self._coords(xyz_normed)
        parts = []
        for i in range(3):
            p = F.grid_sample(self.app_planes[i], plane_c[i : i + 1], align_corners=True)
            ln = F.grid_sample(self.app_lines[i], line_c[i : i + 1], align_corners=True)
            parts.append((p * ln).view(self.appearance_components[i], -1))
        features: Tensor = self.basis(torch.cat(parts, dim=0).T)
        return features

    def color(self, xyz_normed: Tensor, viewdirs: Tensor) -> Tensor:
        """RGB in [0, 1] at N normalised points seen along unit directions ``viewdirs``: (N, 3)."""
        rgb: Tensor = self.decoder(self.appearance_features(xyz_normed), viewdirs)
        return rgb

    # --- regularisers ---------------------------------------------------------------------------------------------

    def density_l1(self) -> Tensor:
        """Mean absolute density factor values: pushes empty space towards zero density."""
        total = torch.zeros((), device=self.aabb.device)
        for p, ln in zip(self.density_planes, self.density_lines, strict=True):
            total = total + p.abs().mean() + ln.abs().mean()
        return total

    @staticmethod
    def _tv(planes: nn.ParameterList) -> Tensor:
        total = torch.zeros((), device=planes[0].device)
        for p in planes:
            total = total + (p[..., 1:, :] - p[..., :-1, :]).square().mean()
            total = total + (p[..., :, 1:] - p[..., :, :-1]).square().mean()
        return total

    def density_tv(self) -> Tensor:
        return self._tv(self.density_planes)

    def appearance_tv(self) -> Tensor:
        return self._tv(self.app_planes)

    # --- coarse to fine -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def upsample(self, grid_size: Sequence[int]) -> None:
        """Resample every factor to a finer grid (same box); the caller must rebuild its optimizer."""
        size = [int(g) for g in grid_size]
        for planes, lines in ((self.density_planes, self.density_lines), (self.app_planes, self.app_lines)):
            for i, (m0, m1) in enumerate(MAT_MODE):
                v = VEC_MODE[i]
                planes[i] = nn.Parameter(F.interpolate(planes[i].data, size=(size[m1], size[m0]),
                                                       mode="bilinear", align_corners=True))
                lines[i] = nn.Parameter(F.interpolate(lines[i].data, size=(size[v], 1), mode="bilinear",
                                                      align_corners=True))
        self.grid_size = size

    @torch.no_grad()
    def shrink(self, new_aabb: Tensor) -> None:
        """Crop every factor to the grid cells covering ``new_aabb``; snaps the box to grid lines, so the field
        inside is unchanged. The caller must rebuild its optimizer."""
        voxel = self.voxel_size
        grid = torch.tensor(self.grid_size, device=voxel.device)
        lo = torch.floor((new_aabb[0] - self.aabb[0]) / voxel + 1e-4).long().clamp(min=0)
        hi = (torch.ceil((new_aabb[1] - self.aabb[0]) / voxel - 1e-4).long() + 1).minimum(grid)
        hi = torch.maximum(hi, lo + 2)  # keep at least two samples per axis
        lo_l, hi_l = lo.tolist(), hi.tolist()
        for planes, lines in ((self.density_planes, self.density_lines), (self.app_planes, self.app_lines)):
            for i, (m0, m1) in enumerate(MAT_MODE):
                v = VEC_MODE[i]
                lines[i] = nn.Parameter(lines[i].data[..., lo_l[v] : hi_l[v], :].contiguous())
                planes[i] = nn.Parameter(
                    planes[i].data[..., lo_l[m1] : hi_l[m1], lo_l[m0] : hi_l[m0]].contiguous())
        self.aabb = torch.stack([self.aabb[0] + lo * voxel, self.aabb[0] + (hi - 1) * voxel])
        self.grid_size = [b - a for a, b in zip(lo_l, hi_l, strict=True)]


class AlphaMask:
    """A coarse occupancy volume over a box: samples where it is empty are skipped while ray marching."""

    def __init__(self, aabb: Tensor, occupied: Tensor) -> None:
        self.aabb = aabb.float()
        self.occupied = occupied.bool()  # (Z, Y, X): grid_sample's depth, height, width order
        self._volume = self.occupied.float()[None, None]

    def to(self, device: torch.device) -> AlphaMask:
        return AlphaMask(self.aabb.to(device), self.occupied.to(device))

    def contains(self, xyz: Tensor) -> Tensor:
        """Whether each world point (N, 3) lies in an occupied cell (points outside the box are not)."""
        normed = (xyz - self.aabb[0]) * (2.0 / (self.aabb[1] - self.aabb[0])) - 1.0
        inside = (normed.abs() <= 1.0).all(dim=-1)
        value = F.grid_sample(self._volume, normed.view(1, -1, 1, 1, 3), align_corners=True).view(-1)
        return inside & (value > 0)

    def to_state(self) -> dict[str, Tensor]:
        return {"aabb": self.aabb.cpu(), "occupied": self.occupied.cpu()}

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> AlphaMask:
        return cls(state["aabb"], state["occupied"])


@torch.no_grad()
def dense_grid_points(aabb: Tensor, grid_size: Sequence[int]) -> Tensor:
    """World positions of every grid node, shaped (Z, Y, X, 3) with xyz in the last axis."""
    axes = [torch.linspace(float(aabb[0, a]), float(aabb[1, a]), int(grid_size[a]), device=aabb.device)
            for a in range(3)]
    zz, yy, xx = torch.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    return torch.stack([xx, yy, zz], dim=-1)


@torch.no_grad()
def compute_alpha_mask(model: TensorVM, step: float, threshold: float, *,
                       max_resolution: int = 256, chunk: int = 262_144) -> tuple[AlphaMask, Tensor]:
    """Occupancy of the model's box (opacity of one marching step above ``threshold``, dilated by one cell).

    Returns the mask and the tight box around occupied cells (the whole box when nothing is occupied, which
    keeps a struggling model trainable rather than failing here).
    """
    res = [min(int(g), max_resolution) for g in model.grid_size]
    points = dense_grid_points(model.aabb, res)
    flat = points.view(-1, 3)
    alpha = torch.empty(flat.shape[0], device=flat.device)
    for s in range(0, flat.shape[0], chunk):
        sigma = model.density(model.normalize(flat[s : s + chunk]))
        alpha[s : s + chunk] = 1.0 - torch.exp(-sigma * step * model.distance_scale)
    volume = alpha.view(res[2], res[1], res[0])
    volume = F.max_pool3d(volume[None, None], kernel_size=3, padding=1, stride=1)[0, 0]
    occupied = volume > threshold
    if occupied.any():
        occupied_points = points[occupied]
        tight = torch.stack([occupied_points.amin(0), occupied_points.amax(0)])
    else:
        tight = model.aabb.clone()
    return AlphaMask(model.aabb.clone(), occupied), tight


SOLID_ALPHA = 0.5  # opacity over one node spacing above which a grid node counts as solid surface
SOLID_GRID = 256  # at most this many nodes per axis are probed for solid ones


@torch.no_grad()
def solid_nodes(model: TensorVM, alpha_mask: AlphaMask | None, *, threshold: float = SOLID_ALPHA,
                max_resolution: int = SOLID_GRID, chunk: int = 262_144) -> tuple[Tensor, Tensor]:
    """Grid nodes (model space, (N, 3)) inside the alpha mask whose opacity over one node spacing exceeds
    ``threshold``, and those opacities (N,): the field's surfaces, as the point cloud export shows them. None
    at all means the model learned no geometry."""
    res = [min(int(g), max_resolution) for g in model.grid_size]
    nodes = dense_grid_points(model.aabb, res).view(-1, 3)
    spacing = (model.aabb[1] - model.aabb[0]) / (torch.tensor(res, device=model.aabb.device) - 1)
    step = float(spacing.mean())
    keep_pts, keep_alpha = [], []
    for s in range(0, nodes.shape[0], chunk):
        pts = nodes[s : s + chunk]
        if alpha_mask is not None:
            pts = pts[alpha_mask.contains(pts)]
        if pts.shape[0] == 0:
            continue
        alpha = 1.0 - torch.exp(-model.density(model.normalize(pts)) * step * model.distance_scale)
        sel = alpha > threshold
        keep_pts.append(pts[sel])
        keep_alpha.append(alpha[sel])
    if not keep_pts:
        return torch.zeros(0, 3, device=nodes.device), torch.zeros(0, device=nodes.device)
    return torch.cat(keep_pts), torch.cat(keep_alpha)


def make_shape(aabb: Tensor, grid_size: Sequence[int], *, density_components: Sequence[int],
               appearance_components: Sequence[int], appearance_dim: int, mlp_hidden: int, feature_pe: int,
               view_pe: int, density_shift: float, distance_scale: float, decoder: str = "mlp",
               space: FieldSpace = WORLD) -> FieldShape:
    lo, hi = aabb.tolist()
    return FieldShape(aabb=(_xyz(lo), _xyz(hi)), grid_size=_ijk(grid_size),
                      density_components=_ijk(density_components),
                      appearance_components=_ijk(appearance_components), appearance_dim=appearance_dim,
                      mlp_hidden=mlp_hidden, feature_pe=feature_pe, view_pe=view_pe, density_shift=density_shift,
                      distance_scale=distance_scale, decoder=decoder, space=space)


def upsample_schedule(grid_start: int, grid_final: int, steps: int) -> list[int]:
    """Voxel counts after each of ``steps`` upsamples, log-spaced from grid_start**3 to grid_final**3."""
    if steps <= 0:
        return []
    lo, hi = 3 * math.log(grid_start), 3 * math.log(grid_final)
    return [round(math.exp(lo + (hi - lo) * (k + 1) / steps)) for k in range(steps)]
