"""A smooth virtual camera path through the capture cameras, for rendering the preview video.

Hand-held capture paths jitter; rendering straight from them gives a shaky video. The path keeps the capture's
route and order (so it stays where the scene was actually observed, where the reconstruction is good) but
removes the jitter: camera centres are Gaussian-smoothed over time and then interpolated with a Catmull-Rom
spline, orientations are smoothed as quaternions and interpolated with slerp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.images import training_size

F64 = NDArray[np.float64]


def path_video_size(cameras: Sequence[Camera], max_long_side: int) -> tuple[int, int]:
    """The path video's (width, height): the frames' working resolution (the capture cameras' image size),
    at most ``max_long_side`` on the long side, in the capture's aspect, and even for H.264's 4:2:0 chroma
    (chosen here rather than cropped later). Both training modes render their video at this size, whatever
    resolution they trained at."""
    ref = cameras[0]
    w, h = training_size(ref.width, ref.height, max_long_side)
    return max(2, w - w % 2), max(2, h - h % 2)


def rotation_to_quat(R: F64) -> F64:
    """Unit quaternion (w, x, y, z) of a rotation matrix, with w >= 0."""
    m = np.asarray(R, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = np.array([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = np.array([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = np.array([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def quat_to_rotation(q: F64) -> F64:
    """Rotation matrix of a (w, x, y, z) quaternion (normalised here)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def slerp(q0: F64, q1: F64, u: float) -> F64:
    """Spherical interpolation between unit quaternions along the shorter arc."""
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:  # nearly parallel: lerp is exact enough and avoids dividing by sin(~0)
        q = q0 + u * (q1 - q0)
        return np.asarray(q / np.linalg.norm(q), dtype=np.float64)
    theta = math.acos(min(1.0, d))
    s = math.sin(theta)
    q = (math.sin((1 - u) * theta) * q0 + math.sin(u * theta) * q1) / s
    return np.asarray(q / np.linalg.norm(q), dtype=np.float64)


def _gaussian_smooth(values: F64, sigma: float) -> F64:
    """Smooth rows of ``values`` along axis 0 with a Gaussian of ``sigma`` rows.

    The ends are padded by point reflection (``2 v[0] - v[k]``), which continues the local trend: the smoothed
    path still starts and ends where the capture did instead of being pulled inwards.
    """
    n = values.shape[0]
    if sigma <= 0 or n < 3:
        return values.copy()
    radius = min(max(1, math.ceil(3 * sigma)), n - 1)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    head = 2 * values[0] - values[radius:0:-1]
    tail = 2 * values[-1] - values[-2:-radius - 2:-1]
    padded = np.concatenate([head, values, tail])
    out = np.zeros_like(values)
    for j, w in enumerate(kernel):
        out += w * padded[j:j + n]
    return out


def _catmull_rom(points: F64, s: float) -> F64:
    """Uniform Catmull-Rom spline through ``points`` at parameter ``s`` in [0, len(points) - 1]."""
    n = points.shape[0]
    i = min(math.floor(s), n - 2)
    u = s - i
    p1, p2 = points[i], points[i + 1]
    # Reflect the end points so the spline does not overshoot at the ends of the path.
    p0 = points[i - 1] if i > 0 else 2 * p1 - p2
    p3 = points[i + 2] if i + 2 < n else 2 * p2 - p1
    u2, u3 = u * u, u * u * u
    return np.asarray(0.5 * ((2 * p1) + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u2
                             + (-p0 + 3 * p1 - 3 * p2 + p3) * u3), dtype=np.float64)


def smooth_camera_path(cameras: Sequence[Camera], n_frames: int, *, width: int | None = None,
                       height: int | None = None) -> list[Camera]:
    """``n_frames`` cameras moving smoothly along the capture path of ``cameras`` (given in time order).

    The output resolution is ``width`` x ``height``; when only one is given the other follows the first
    camera's aspect ratio; when neither, the first camera's size. Intrinsics are the average of the inputs'
    (relative to image size) so the field of view stays steady. Works with a single camera (a still path) and
    two (a straight dolly with slerped orientation).
    """
    if not cameras:
        raise ValueError("a camera path needs at least one camera")
    if n_frames <= 0:
        raise ValueError("n_frames must be positive")
    ref = cameras[0]
    if width is None and height is None:
        width, height = ref.width, ref.height
    elif width is None:
        assert height is not None
        width = max(1, round(height * ref.width / ref.height))
    elif height is None:
        height = max(1, round(width * ref.height / ref.width))
    assert width is not None
    assert height is not None

    # Average intrinsics in units of image size so cameras of different resolutions mix correctly.
    fx = float(np.mean([c.fx / c.width for c in cameras])) * width
    fy = float(np.mean([c.fy / c.height for c in cameras])) * height
    cx = float(np.mean([c.cx / c.width for c in cameras])) * width
    cy = float(np.mean([c.cy / c.height for c in cameras])) * height

    centers = np.stack([c.center for c in cameras])
    quats = np.stack([rotation_to_quat(c.R) for c in cameras])
    for i in range(1, len(quats)):  # keep consecutive quaternions on the same hemisphere before averaging
        if np.dot(quats[i], quats[i - 1]) < 0:
            quats[i] = -quats[i]
    m = len(cameras)
    # About 1/30 of the path: removes hand shake (a few frames) but keeps the route through the scene.
    sigma = max(1.0, m / 30.0) if m >= 5 else 0.0
    centers_s = _gaussian_smooth(centers, sigma)
    quats_s = _gaussian_smooth(quats, sigma)
    quats_s /= np.linalg.norm(quats_s, axis=1, keepdims=True)

    params = np.linspace(0.0, m - 1, n_frames) if n_frames > 1 else np.zeros(1)
    path: list[Camera] = []
    for k, s in enumerate(params):
        if m == 1:
            center, q = centers_s[0], quats_s[0]
        else:
            center = _catmull_rom(centers_s, float(s))
            i = min(math.floor(s), m - 2)
            q = slerp(quats_s[i], quats_s[i + 1], float(s) - i)
        R = quat_to_rotation(q)
        t = -R @ center
        path.append(Camera(width=int(width), height=int(height), fx=fx, fy=fy, cx=cx, cy=cy, R=R, t=t,
                           image_name=f"path_{k:05d}"))
    return path
