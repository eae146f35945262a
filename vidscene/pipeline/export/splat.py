"""The antimatter15 ``.splat`` format read by most web viewers: 32 bytes per gaussian, no header.

Layout per gaussian (little endian): position 3 x f32, scale 3 x f32 (activated, i.e. ``exp`` of the log
scales), colour RGBA 4 x u8 (RGB from the SH DC term, A = sigmoid(opacity)), rotation 4 x u8 (the normalised
quaternion in w, x, y, z order mapped by ``q * 128 + 128``). Gaussians are sorted by
``volume * opacity`` descending, so viewers that stream the file draw the big opaque ones first. This mirrors
antimatter15's own ``convert.py`` (truncating float to u8 conversions included) so files are byte-compatible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.export import atomic_write_path

SH_C0 = 0.28209479177387814
BYTES_PER_SPLAT = 32

SPLAT_DTYPE = np.dtype([("position", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)),
                        ("rot", "u1", (4,))])
assert SPLAT_DTYPE.itemsize == BYTES_PER_SPLAT


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def splat_records(means: NDArray[np.floating], log_scales: NDArray[np.floating], quats: NDArray[np.floating],
                  opacity_logits: NDArray[np.floating], sh_dc: NDArray[np.floating]) -> NDArray[np.void]:
    """The sorted ``.splat`` records of N gaussians given in raw (pre-activation) training parameters.

    ``means`` (N, 3); ``log_scales`` (N, 3); ``quats`` (N, 4) unnormalised w, x, y, z; ``opacity_logits``
    (N,); ``sh_dc`` (N, 3) the degree-0 SH coefficient per colour channel.
    """
    n = means.shape[0]
    log_s = np.asarray(log_scales, dtype=np.float64)
    logit = np.asarray(opacity_logits, dtype=np.float64).reshape(n)
    opacity = _sigmoid(logit)
    order = np.argsort(-np.exp(log_s.sum(axis=1)) * opacity, kind="stable")

    rec = np.empty(n, dtype=SPLAT_DTYPE)
    rec["position"] = np.asarray(means, dtype=np.float32)
    rec["scale"] = np.exp(log_s).astype(np.float32)
    rgb = 0.5 + SH_C0 * np.asarray(sh_dc, dtype=np.float64).reshape(n, 3)
    rgba = np.concatenate([rgb, opacity[:, None]], axis=1)
    rec["rgba"] = np.clip(rgba * 255.0, 0, 255).astype(np.uint8)
    q = np.asarray(quats, dtype=np.float64).reshape(n, 4)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
    rec["rot"] = np.clip(q * 128.0 + 128.0, 0, 255).astype(np.uint8)
    return rec[order]


def write_splat(path: Path, means: NDArray[np.floating], log_scales: NDArray[np.floating],
                quats: NDArray[np.floating], opacity_logits: NDArray[np.floating],
                sh_dc: NDArray[np.floating]) -> None:
    """Write gaussians (raw training parameters, see ``splat_records``) as a ``.splat`` file, atomically.

    Raises ``StorageFullError`` when the disk is (or would be) full; no partial file is left behind.
    """
    rec = splat_records(means, log_scales, quats, opacity_logits, sh_dc)
    with atomic_write_path(path, expected_bytes=rec.nbytes) as tmp, open(tmp, "wb") as f:
        f.write(rec.tobytes())
