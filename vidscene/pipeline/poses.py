"""Camera pose arithmetic shared by structure from motion, its checks and its tests.

Conventions are those of ``vidscene.pipeline.cameras``: ``x_cam = R @ x_world + t``, OpenCV camera axes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]


@dataclass(frozen=True)
class Similarity:
    """``x_new = scale * R @ x_old + t``: a change of world frame that keeps images unchanged."""

    scale: float
    R: F64
    t: F64

    def apply_points(self, points: NDArray[np.floating]) -> F64:
        return np.asarray(self.scale * (np.asarray(points, np.float64) @ self.R.T) + self.t, dtype=np.float64)

    def apply_camera(self, cam: Camera) -> Camera:
        """The same camera expressed in the new world frame.

        From ``x_old = R^T (x_new - t) / s``: ``x_cam = R_c R^T x_new / s + (t_c - R_c R^T t / s)``, and
        scaling camera coordinates by ``s`` does not change the projection.
        """
        R_new = cam.R @ self.R.T
        t_new = self.scale * cam.t - R_new @ self.t
        return replace(cam, R=np.asarray(R_new, np.float64), t=np.asarray(t_new, np.float64))

    def to_json(self) -> dict[str, object]:
        return {"scale": self.scale, "R": self.R.tolist(), "t": self.t.tolist()}


def rotation_angle_deg(Ra: F64, Rb: F64) -> float:
    """Angle of the rotation taking ``Rb`` to ``Ra`` (degrees, 0..180)."""
    c = (float(np.trace(Ra @ Rb.T)) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def rotation_jumps_deg(cameras: list[Camera]) -> list[float]:
    """Rotation between each camera and the next one (degrees)."""
    return [rotation_angle_deg(b.R, a.R) for a, b in itertools.pairwise(cameras)]


def rotation_aligning(a: F64, b: F64) -> F64:
    """The smallest rotation taking unit vector ``a`` onto unit vector ``b`` (Rodrigues)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1.0 + 1e-9:  # opposite: turn half way round any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return np.asarray(2.0 * np.outer(axis, axis) - np.eye(3), dtype=np.float64)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.asarray(np.eye(3) + vx + vx @ vx / (1.0 + c), dtype=np.float64)


def estimate_up(cameras: list[Camera]) -> tuple[F64, str]:
    """World "up" direction (unit vector) for these cameras, and which rule gave it.

    The average camera up vector (``-R[1]``, cameras being y-down) is biased towards the subject whenever the
    cameras all look down at it, as they do when circling an object (by about the camera pitch: 15-20
    degrees). When the camera centres spread over a plane (an orbit, a walk around), that plane is level in
    practice, so its normal is the better estimate; it is used when clearly defined and within 45 degrees
    of the average camera up, which also gives it its sign.
    """
    mean_up = -np.mean([c.R[1] for c in cameras], axis=0)
    norm = float(np.linalg.norm(mean_up))
    if norm < 1e-9:  # the cameras disagree completely on up: keep SfM's orientation
        return np.array([0.0, -1.0, 0.0]), "sfm"
    mean_up /= norm
    centres = np.array([c.center for c in cameras])
    if len(centres) >= 4:
        evals, evecs = np.linalg.eigh(np.cov((centres - centres.mean(axis=0)).T))  # ascending
        planar = evals[1] > 0.02 * evals[2] and evals[0] < 0.3 * evals[1]
        normal = evecs[:, 0] * (1.0 if float(evecs[:, 0] @ mean_up) >= 0 else -1.0)
        if planar and float(normal @ mean_up) > math.cos(math.radians(45.0)):
            return np.asarray(normal, dtype=np.float64), "camera_plane"
    return np.asarray(mean_up, dtype=np.float64), "camera_up"


def normalizing_similarity(cameras: list[Camera], up: F64 | None = None) -> Similarity:
    """The world frame the pipeline promises (see ``cameras.py``).

    Origin at the mean camera position; world ``-y`` along ``up`` (structure from motion passes
    ``upright.find_up``'s, from the supporting plane; without it the cameras' ``estimate_up``), reached by the
    smallest rotation so the heading stays as SfM gave it; scale such that the camera farthest from the origin
    is at distance 1.
    """
    centres = np.array([c.center for c in cameras])
    mean = centres.mean(axis=0)
    if up is None:
        up, _ = estimate_up(cameras)
    R = rotation_aligning(up, np.array([0.0, -1.0, 0.0]))
    radius = float(np.max(np.linalg.norm(centres - mean, axis=1)))
    scale = 1.0 / radius if radius > 1e-12 else 1.0
    return Similarity(scale=scale, R=R, t=-scale * (R @ mean))


def umeyama(src: F64, dst: F64) -> Similarity:
    """Least-squares similarity with ``dst ≈ scale * R @ src + t`` (Umeyama 1991); ``src``, ``dst``: (N, 3)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1.0
    R = U @ D @ Vt
    var_s = float((xs**2).sum() / len(src))
    scale = float(np.trace(np.diag(S) @ D) / var_s) if var_s > 0 else 1.0
    return Similarity(scale=scale, R=R, t=mu_d - scale * R @ mu_s)
