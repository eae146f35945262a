"""The coordinates a TensoRF field lives in, chosen from the shape of the capture.

- ``WorldSpace``: the SfM world itself, inside a box around what the cameras see (``bounds.scene_aabb``). Right
  for captures that go round their subject (orbits, walk-arounds): the cameras look at the box from all sides.
- ``NdcSpace``: the normalised device coordinates of one reference camera, as the NeRF and TensoRF papers use
  for forward-facing (LLFF) captures. A world point at depth ``z`` in front of the reference camera maps to
  ``(sx * x / z, sy * y / z, 1 - 2 * near / z)``: the frustum from the near plane to infinity becomes a
  bounded box, ``z_ndc`` in [-1, 1], and the grid's depth resolution follows disparity (fine near the camera,
  coarse far away) as the images do. Straight rays stay straight, so marching works unchanged.

A hand-held clip of a table or a facade sees its subject from one side only, mostly at several times the
camera path's size (the forward-facing clip of bench/RESULTS.md: content at 2.4-9.8 path radii); a world box
around such content wastes most of its voxels and a box kept near the cameras cuts the scene in half.
``capture_shape`` tells the two kinds of capture apart from the SfM cameras and points.

Conventions: OpenCV camera axes (x right, y down, z forward) for the reference camera, as everywhere in the
pipeline. ``model_rays`` returns unit directions in the model's coordinates (so marching distances are model
distances) and the world view directions the appearance decoder sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.tensorf.bounds import visible_points

F64 = NDArray[np.float64]

# A capture is forward-facing when every camera's optical axis is within this angle of their mean direction
# (the two synthetic benchmark clips: 15.5 degrees for the 36-degree hand-held sweep, 60+ for the 120-degree
# orbit)...
FORWARD_MAX_AXIS_DEG = 40.0
# ...and the scene lies in front of the reference camera: this share of the visible SfM points at least
# ``MIN_CONTENT_DEPTH`` times farther than the camera farthest ahead along the mean direction.
FORWARD_MIN_IN_FRONT = 0.98
MIN_CONTENT_DEPTH = 1.2
NEAR_FRACTION = 0.75  # near plane at this fraction of the nearest content depth (LLFF's convention)
NEAR_PERCENTILE = 1.0  # "nearest content": this percentile of the visible SfM points' depths
BORDER_SAMPLES = 16  # rays per image edge used to size the NDC box
MAX_BOX_CAMERAS = 60
BOX_PADDING = 0.05  # fraction of the extent added on each side of the NDC box (x and y)
MAX_NDC_EXTENT = 4.0  # |x|, |y| limit of the NDC box: a ray nearly parallel to the reference image plane
MIN_RAY_Z = 1e-3  # rays going no further ahead than this (per unit length) leave any box


@dataclass(frozen=True)
class CaptureShape:
    """How a capture looks at its scene: ``orbit`` (round it) or ``forward`` (at it, from one side)."""

    kind: Literal["orbit", "forward"]
    axis_spread_deg: float  # largest angle between a camera's optical axis and the cameras' mean direction
    in_front: float  # share of visible SfM points well in front of every camera along that direction
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "axis_spread_deg": round(self.axis_spread_deg, 2),
                "in_front": round(self.in_front, 4), "reason": self.reason}


def reference_rotation(cameras: Sequence[Camera]) -> F64:
    """World -> camera rotation of the "average" camera: the mean optical axis, the mean down direction made
    perpendicular to it."""
    z = np.mean([c.R[2] for c in cameras], axis=0)
    z /= max(float(np.linalg.norm(z)), 1e-12)
    y = np.mean([c.R[1] for c in cameras], axis=0)
    y = y - float(y @ z) * z
    if float(np.linalg.norm(y)) < 1e-9:  # cameras disagree on down entirely: any perpendicular will do
        y = np.cross(z, [1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.cross(z, [0.0, 1.0, 0.0])
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    return np.stack([x, y, z]).astype(np.float64)


def capture_shape(cameras: Sequence[Camera], points: NDArray[np.floating]) -> CaptureShape:
    """Tell a forward-facing capture from one that goes round its subject (see the module docstring).

    Forward-facing needs all optical axes within ``FORWARD_MAX_AXIS_DEG`` of their mean and the visible SfM
    points in front of the cameras along it; anything else (and too few points to tell) is an orbit, the
    shape a world box handles whatever the capture.
    """
    if not cameras:
        raise ValueError("the capture shape needs at least one camera")
    axes = np.stack([c.R[2] for c in cameras])
    mean = axes.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9:
        return CaptureShape("orbit", 180.0, 0.0, "the cameras look in every direction")
    mean /= norm
    spread = float(np.degrees(np.arccos(np.clip(axes @ mean, -1.0, 1.0))).max())
    pts = visible_points(np.asarray(points, dtype=np.float64).reshape(-1, 3), cameras)
    if pts.shape[0] < 20:
        return CaptureShape("orbit", spread, 0.0, "too few SfM points to tell the scene's depth")
    centres = np.stack([c.center for c in cameras])
    origin = centres.mean(axis=0)
    cam_ahead = float(((centres - origin) @ mean).max())
    depth = (pts - origin) @ mean
    scale = float(np.linalg.norm(centres - origin, axis=1).max()) or 1.0
    in_front = float(np.mean(depth > cam_ahead + (MIN_CONTENT_DEPTH - 1.0) * scale))
    if spread > FORWARD_MAX_AXIS_DEG:
        return CaptureShape("orbit", spread, in_front,
                            f"viewing directions spread {spread:.0f} > {FORWARD_MAX_AXIS_DEG:.0f} degrees")
    if in_front < FORWARD_MIN_IN_FRONT:
        return CaptureShape("orbit", spread, in_front,
                            f"only {100 * in_front:.0f}% of the scene lies in front of the cameras")
    return CaptureShape("forward", spread, in_front,
                        f"viewing directions within {spread:.0f} degrees, the scene in front of the cameras")


@dataclass(frozen=True)
class WorldSpace:
    """The field lives in SfM world coordinates: rays pass through unchanged."""

    kind: Literal["world"] = "world"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def model_rays(self, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(model origins, unit model directions, unit world view directions) of world rays."""
        return origins, dirs, dirs

    def to_world(self, points: Tensor) -> Tensor:
        return points

    def from_world(self, points: Tensor) -> Tensor:
        return points


@dataclass(frozen=True)
class NdcSpace:
    """NDC of a reference camera (``rotation`` world -> camera, row-major, and ``centre`` in world units).

    ``near`` is the depth (world units) mapped to ``z_ndc = -1``; ``scale`` (sx, sy) maps ``x / z`` and
    ``y / z`` to NDC (``2 f / size`` of the reference intrinsics: the reference image spans [-1, 1]).
    """

    rotation: tuple[float, ...]
    centre: tuple[float, float, float]
    near: float
    scale: tuple[float, float]
    kind: Literal["ndc"] = "ndc"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rotation": list(self.rotation), "centre": list(self.centre),
                "near": self.near, "scale": list(self.scale)}

    def _frame(self, device: torch.device) -> tuple[Tensor, Tensor]:
        R = torch.tensor(self.rotation, dtype=torch.float32, device=device).view(3, 3)
        return R, torch.tensor(self.centre, dtype=torch.float32, device=device)

    def model_rays(self, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """World rays (unit ``dirs``) -> NDC rays starting on the near plane.

        In reference-camera coordinates each origin moves along its ray to the near plane ``z = near``; there
        it maps to ``z_ndc = -1`` and the point at infinity to ``z_ndc = 1``. Directions come back unit length
        in NDC; rays that do not go ahead of the reference camera are sent far outside any box.
        """
        R, c = self._frame(origins.device)
        o = (origins - c) @ R.T
        d = dirs @ R.T
        dz = d[:, 2].clamp(min=MIN_RAY_Z)
        o = o + ((self.near - o[:, 2]) / dz)[:, None] * d
        sx, sy = self.scale
        ox, oy = o[:, 0] / self.near, o[:, 1] / self.near
        o_ndc = torch.stack([sx * ox, sy * oy, torch.full_like(ox, -1.0)], dim=-1)
        d_ndc = torch.stack([sx * (d[:, 0] / dz - ox), sy * (d[:, 1] / dz - oy), torch.full_like(ox, 2.0)], dim=-1)
        far_away = d[:, 2] < MIN_RAY_Z
        if bool(far_away.any()):
            o_ndc = torch.where(far_away[:, None], torch.full_like(o_ndc, 1e6), o_ndc)
        return o_ndc, d_ndc / d_ndc.norm(dim=-1, keepdim=True), dirs

    def from_world(self, points: Tensor) -> Tensor:
        """World points (N, 3) in front of the near plane -> NDC."""
        R, c = self._frame(points.device)
        p = (points - c) @ R.T
        z = p[:, 2]
        sx, sy = self.scale
        return torch.stack([sx * p[:, 0] / z, sy * p[:, 1] / z, 1.0 - 2.0 * self.near / z], dim=-1)

    def to_world(self, points: Tensor) -> Tensor:
        """NDC points (N, 3) with ``z_ndc < 1`` -> world."""
        R, c = self._frame(points.device)
        z = 2.0 * self.near / (1.0 - points[:, 2]).clamp(min=1e-9)
        sx, sy = self.scale
        p = torch.stack([points[:, 0] * z / sx, points[:, 1] * z / sy, z], dim=-1)
        return p @ R + c

    def depth(self, points: Tensor) -> Tensor:
        """Depth (world units, along the reference axis) of NDC points."""
        return 2.0 * self.near / (1.0 - points[:, 2]).clamp(min=1e-9)


FieldSpace = WorldSpace | NdcSpace
WORLD = WorldSpace()


def space_from_dict(d: dict[str, Any] | None) -> FieldSpace:
    """The space saved by ``to_dict``; checkpoints written before spaces existed are in world space."""
    if d is None or d.get("kind", "world") == "world":
        return WORLD
    if d["kind"] != "ndc":
        raise ValueError(f"unknown field space {d['kind']!r}")
    return NdcSpace(rotation=tuple(float(v) for v in d["rotation"]),
                    centre=(float(d["centre"][0]), float(d["centre"][1]), float(d["centre"][2])),
                    near=float(d["near"]), scale=(float(d["scale"][0]), float(d["scale"][1])))


def ndc_space(cameras: Sequence[Camera], points: NDArray[np.floating]) -> NdcSpace:
    """The NDC of the capture's average camera: at the mean camera centre, looking along the mean optical axis,
    with the near plane at ``NEAR_FRACTION`` of the nearest visible content (and ahead of every camera)."""
    R = reference_rotation(cameras)
    centres = np.stack([c.center for c in cameras])
    centre = centres.mean(axis=0)
    cam_ahead = float(((centres - centre) @ R[2]).max())
    pts = visible_points(np.asarray(points, dtype=np.float64).reshape(-1, 3), cameras)
    depth = (pts - centre) @ R[2]
    depth = depth[depth > cam_ahead]
    if depth.size == 0:
        raise ValueError("no SfM point lies in front of the cameras")
    nearest = float(np.percentile(depth, NEAR_PERCENTILE))
    near = max(NEAR_FRACTION * nearest, cam_ahead + 0.5 * (nearest - cam_ahead))
    ref = cameras[0]
    return NdcSpace(rotation=tuple(float(v) for v in R.reshape(-1)), centre=(float(centre[0]), float(centre[1]),
                    float(centre[2])), near=near, scale=(2.0 * ref.fx / ref.width, 2.0 * ref.fy / ref.height))


def ndc_box(space: NdcSpace, cameras: Sequence[Camera]) -> F64:
    """(2, 3) NDC box holding every camera's frustum from the near plane to infinity.

    Rays are straight in NDC, so the frustum's extremes lie on its border rays' two ends: ``BORDER_SAMPLES``
    rays per image edge of up to ``MAX_BOX_CAMERAS`` cameras, padded by ``BOX_PADDING``; z spans [-1, 1].
    """
    step = max(1, math.ceil(len(cameras) / MAX_BOX_CAMERAS))
    ends = []
    for cam in cameras[::step]:
        s = np.linspace(0.0, 1.0, BORDER_SAMPLES)
        u = np.concatenate([s * cam.width, s * cam.width, np.zeros_like(s), np.full_like(s, cam.width)])
        v = np.concatenate([np.zeros_like(s), np.full_like(s, cam.height), s * cam.height, s * cam.height])
        d_cam = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], axis=-1)
        d = d_cam @ cam.R  # camera -> world: R^T d for each row
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        o = np.broadcast_to(cam.center, d.shape)
        o_ndc, d_ndc, _ = space.model_rays(torch.tensor(o, dtype=torch.float32),
                                           torch.tensor(d, dtype=torch.float32))
        # Unit NDC directions: the far end (z_ndc = 1) is 2 / d_z along the ray.
        far = o_ndc + d_ndc * (2.0 / d_ndc[:, 2:3].clamp(min=1e-6))
        keep = o_ndc[:, 0].abs() < 1e5
        ends.append(torch.cat([o_ndc[keep], far[keep]])[:, :2].numpy())
    xy = np.concatenate(ends).astype(np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = (hi - lo) * BOX_PADDING
    lo = np.maximum(lo - pad, -MAX_NDC_EXTENT)
    hi = np.minimum(hi + pad, MAX_NDC_EXTENT)
    return np.array([[lo[0], lo[1], -1.0], [hi[0], hi[1], 1.0]], dtype=np.float64)
