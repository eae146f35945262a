"""The standard 3D Gaussian Splatting ``.ply`` (binary little endian), as written by the reference code.

Viewers and editors (SuperSplat, the reference SIBR viewer, nerfstudio, gsplat's tools) read this layout by
property name, but several assume the reference order, so it is reproduced exactly:
``x y z nx ny nz f_dc_0..2 f_rest_0..(3(K-1)-1) opacity scale_0..2 rot_0..3``, all ``float``.
Values are the raw training parameters: logit opacity, log scales, unnormalised w-x-y-z quaternions.
``f_rest`` is channel-major: all red higher-order coefficients first, then green, then blue.
Normals are zero (3DGS does not use them).

``write_point_ply`` writes the plain coloured point cloud (TensoRF's density points).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.export import atomic_write_path


def gaussian_ply_properties(num_sh_bases: int) -> list[str]:
    """Vertex property names in file order for ``num_sh_bases`` SH coefficients per channel (1, 4, 9, 16)."""
    rest = 3 * (num_sh_bases - 1)
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def gaussian_ply_records(means: NDArray[np.floating], log_scales: NDArray[np.floating],
                         quats: NDArray[np.floating], opacity_logits: NDArray[np.floating],
                         sh: NDArray[np.floating]) -> NDArray[np.void]:
    """Vertex records of N gaussians; ``sh`` is (N, K, 3): K coefficients (DC first) per RGB channel."""
    n, k = sh.shape[0], sh.shape[1]
    names = gaussian_ply_properties(k)
    dtype = np.dtype([(name, "<f4") for name in names])
    cols = np.empty((n, len(names)), dtype=np.float32)
    cols[:, 0:3] = means
    cols[:, 3:6] = 0.0
    cols[:, 6:9] = sh[:, 0, :]
    rest = 3 * (k - 1)
    # (N, K-1, 3) -> (N, 3, K-1) -> flat: channel-major, as the reference implementation's transpose(1, 2).
    cols[:, 9:9 + rest] = np.transpose(np.asarray(sh[:, 1:, :]), (0, 2, 1)).reshape(n, rest)
    cols[:, 9 + rest] = np.asarray(opacity_logits).reshape(n)
    cols[:, 10 + rest:13 + rest] = log_scales
    cols[:, 13 + rest:17 + rest] = quats
    return np.ascontiguousarray(cols).view(dtype).reshape(n)


def write_gaussian_ply(path: Path, means: NDArray[np.floating], log_scales: NDArray[np.floating],
                       quats: NDArray[np.floating], opacity_logits: NDArray[np.floating],
                       sh: NDArray[np.floating]) -> None:
    """Write the gaussians as a 3DGS ``.ply`` atomically; ``StorageFullError`` when the disk is full."""
    rec = gaussian_ply_records(means, log_scales, quats, opacity_logits, sh)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {rec.shape[0]}"]
    header += [f"property float {name}" for name in rec.dtype.names or ()]
    header.append("end_header")
    head = ("\n".join(header) + "\n").encode("ascii")
    with atomic_write_path(path, expected_bytes=len(head) + rec.nbytes) as tmp, open(tmp, "wb") as f:
        f.write(head)
        f.write(rec.tobytes())


def write_point_ply(path: Path, points: NDArray[np.floating],
                    colors: NDArray[np.uint8] | None = None) -> None:
    """A plain coloured point cloud (``x y z`` float, optional ``red green blue`` uchar), atomically."""
    n = points.shape[0]
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.empty(n, dtype=np.dtype(fields))
    rec["x"], rec["y"], rec["z"] = points[:, 0], points[:, 1], points[:, 2]
    if colors is not None:
        rec["red"], rec["green"], rec["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {'float' if t == '<f4' else 'uchar'} {name}" for name, t in fields]
    header.append("end_header")
    head = ("\n".join(header) + "\n").encode("ascii")
    with atomic_write_path(path, expected_bytes=len(head) + rec.nbytes) as tmp, open(tmp, "wb") as f:
        f.write(head)
        f.write(rec.tobytes())
