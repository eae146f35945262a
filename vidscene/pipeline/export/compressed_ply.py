"""PlayCanvas' compressed PLY (SuperSplat, splat-transform, the PlayCanvas engine, Spark): 16 bytes a gaussian
plus one byte per higher SH coefficient, still a PLY that their loaders open like any other.

Gaussians are sorted along a Morton (Z-order) curve and cut into chunks of 256, so each chunk covers a small
region; every attribute is stored relative to its chunk's range. The file (binary little endian) has:

- ``element chunk ceil(N/256)``: 18 ``float``s: ``min_x min_y min_z max_x max_y max_z``, the same for the log
  scales (``min_scale_x`` ... ``max_scale_z``, clamped to -20..20 as the reference writer does), and
  ``min_r min_g min_b max_r max_g max_b`` of the colour ``0.5 + SH_C0 * DC``. (The older 12-property layout had
  no colour range and stored colours as plain 0..1; splat-transform, SuperSplat and Spark read both, gsply only
  the 18-property one, so that is what is written.)
- ``element vertex N``: 4 ``uint``s, each value ``t`` in 0..1 of its chunk's range packed as
  ``floor(t * (2^bits - 1) + 0.5)``: ``packed_position`` x 11 bits (top), y 10, z 11; ``packed_rotation`` the
  index of the largest component of the unit quaternion in the PLY's ``rot_0..3`` order (w, x, y, z) in the top
  2 bits, then the other three in that order, 10 bits each of ``q * sqrt(1/2) + 0.5``, after flipping the
  quaternion so the largest is positive; ``packed_scale`` 11-10-11 of the log scales; ``packed_color`` R, G, B
  (top byte first) and ``sigmoid(opacity)``, 8 bits each.
- ``element sh N`` (only when the SH degree is above 0): ``uchar f_rest_0..`` in the 3DGS ``.ply`` order
  (channel-major), each ``floor((f / 8 + 0.5) * 256)`` clamped, i.e. -4..4 in steps of 1/32.

SuperSplat skips its own Morton sort for files named ``*.compressed.ply`` because the writers sort them, which is
why the order here matters and why the catalogue gives this output that extension.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.export import atomic_write_path

SH_C0 = 0.28209479177387814
CHUNK_SIZE = 256
MAX_SH_DEGREE = 3  # the readers accept 9, 24 or 45 f_rest bytes
CHUNK_PROPERTIES = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
                    "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z",
                    "min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
VERTEX_PROPERTIES = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
_MORTON_BITS = 21  # per axis: three fit a u64 and two million cells an axis need no refinement pass
_SQRT_HALF = float(np.sqrt(0.5))
_OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])  # the three indices beside the largest

F64 = NDArray[np.float64]
U32 = NDArray[np.uint32]


def _spread_bits(v: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Bit i of the low 21 bits of ``v`` moved to bit 3 i, for interleaving three axes."""
    for shift, mask in ((0, 0x1FFFFF), (32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def morton_order(means: NDArray[np.floating]) -> NDArray[np.intp]:
    """Indices sorting (N, 3) positions along the Z-order curve of their bounding box (non-finite ones as 0)."""
    p = np.nan_to_num(np.asarray(means, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    lo, hi = p.min(axis=0), p.max(axis=0)
    top = (1 << _MORTON_BITS) - 1
    cells = np.clip((p - lo) / np.where(hi > lo, hi - lo, 1.0) * top, 0, top).astype(np.uint64)
    code = (_spread_bits(cells[:, 0]) | (_spread_bits(cells[:, 1]) << np.uint64(1))
            | (_spread_bits(cells[:, 2]) << np.uint64(2)))
    return np.argsort(code, kind="stable")


def _chunked(values: F64) -> F64:
    """(N, D) -> (ceil(N/256), 256, D), the last chunk padded with copies of the last row (no new extremes)."""
    n = values.shape[0]
    pad = -n % CHUNK_SIZE
    padded = np.concatenate([values, np.repeat(values[-1:], pad, axis=0)]) if pad else values
    return padded.reshape(-1, CHUNK_SIZE, values.shape[1])


def _unit_in_range(chunks: F64, lo: F64, hi: F64) -> F64:
    """Each value as 0..1 of its chunk's [lo, hi]; 0 where the range is (almost) empty, as the reference reads."""
    span = hi - lo
    t = (chunks - lo[:, None, :]) / np.where(span > 1e-5, span, 1.0)[:, None, :]
    return np.where(span[:, None, :] > 1e-5, np.clip(t, 0.0, 1.0), 0.0)


def _unorm(t: F64, bits: int) -> U32:
    top = (1 << bits) - 1
    return np.clip(np.floor(t * top + 0.5), 0, top).astype(np.uint32)


def _pack_11_10_11(t: F64) -> U32:
    """(..., 3) values in 0..1 -> x in the top 11 bits, y in the middle 10, z in the low 11."""
    return np.asarray((_unorm(t[..., 0], 11) << 21) | (_unorm(t[..., 1], 10) << 11) | _unorm(t[..., 2], 11),
                      dtype=np.uint32)


def pack_rotations(quats: NDArray[np.floating]) -> U32:
    """2-bit largest index + 3 x 10 bits of (N, 4) quaternions in ``rot_0..3`` order (normalised here)."""
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0)
    q = np.where(ok, q / np.where(ok, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
    largest = np.argmax(np.abs(q), axis=1)
    q *= np.where(q[np.arange(q.shape[0]), largest] < 0, -1.0, 1.0)[:, None]
    others = _unorm(np.take_along_axis(q, _OTHERS[largest], axis=1) * _SQRT_HALF + 0.5, 10)
    return np.asarray((largest.astype(np.uint32) << 30) | (others[:, 0] << 20) | (others[:, 1] << 10)
                      | others[:, 2], dtype=np.uint32)


def compressed_ply_elements(means: NDArray[np.floating], log_scales: NDArray[np.floating],
                            quats: NDArray[np.floating], opacity_logits: NDArray[np.floating],
                            sh: NDArray[np.floating]) -> tuple[NDArray[np.float32], U32, NDArray[np.uint8]]:
    """The three elements' data in file order: chunk (C, 18) float32, vertex (N, 4) uint32, sh (N, 3 (K-1)) uint8.

    Arguments as ``write_compressed_ply``; the gaussians come out in Morton order.
    """
    n, k = means.shape[0], sh.shape[1]
    order = morton_order(means)
    pos = np.nan_to_num(np.asarray(means, dtype=np.float64)[order], nan=0.0, posinf=0.0, neginf=0.0)
    log_s = np.nan_to_num(np.asarray(log_scales, dtype=np.float64)[order], nan=0.0, posinf=20.0, neginf=-20.0)
    rgb = np.nan_to_num(0.5 + SH_C0 * np.asarray(sh[order, 0, :], dtype=np.float64))
    logit = np.asarray(opacity_logits, dtype=np.float64).reshape(n)[order]
    logit = np.where(np.isnan(logit), -np.inf, logit)  # a broken opacity is transparent, not half
    rest = np.transpose(np.asarray(sh[order, 1:, :], dtype=np.float64), (0, 2, 1)).reshape(n, 3 * (k - 1))
    sh_bytes = np.clip(np.floor(np.nan_to_num(rest) * 32.0 + 128.0), 0, 255).astype(np.uint8)
    if n == 0:
        return np.zeros((0, len(CHUNK_PROPERTIES)), np.float32), np.zeros((0, 4), np.uint32), sh_bytes

    ranges: list[F64] = []
    units: list[F64] = []  # positions, log scales, colours as 0..1 of their chunk's range
    for values, clamp in ((pos, None), (log_s, 20.0), (rgb, None)):
        chunks = _chunked(values)
        lo, hi = chunks.min(axis=1), chunks.max(axis=1)
        if clamp is not None:  # a log scale can be huge: keep the range finite and sane, as the reference does
            lo, hi = np.clip(lo, -clamp, clamp), np.clip(hi, -clamp, clamp)
        ranges += [lo, hi]
        units.append(_unit_in_range(chunks, lo, hi).reshape(-1, 3)[:n])
    chunk_data = np.concatenate(ranges, axis=1).astype(np.float32)

    alpha = _unorm(np.exp(-np.logaddexp(0.0, -logit)), 8)  # sigmoid without overflow warnings
    color = units[2]
    vertex = np.stack([
        _pack_11_10_11(units[0]),
        pack_rotations(np.asarray(quats)[order]),
        _pack_11_10_11(units[1]),
        (_unorm(color[:, 0], 8) << 24) | (_unorm(color[:, 1], 8) << 16) | (_unorm(color[:, 2], 8) << 8) | alpha,
    ], axis=1).astype(np.uint32)
    return chunk_data, vertex, sh_bytes


def write_compressed_ply(path: Path, means: NDArray[np.floating], log_scales: NDArray[np.floating],
                         quats: NDArray[np.floating], opacity_logits: NDArray[np.floating],
                         sh: NDArray[np.floating], *, sh_degree: int | None = None) -> None:
    """Write N gaussians (raw training parameters) as a compressed PLY, atomically.

    ``means`` (N, 3), ``log_scales`` (N, 3), ``quats`` (N, 4) unnormalised w-x-y-z, ``opacity_logits`` (N,),
    ``sh`` (N, K, 3) DC first; ``sh_degree`` (default: all of ``sh``, at most 3) is how many SH bands to keep, the
    degree the model was trained up to. Raises ``StorageFullError`` when the disk is (or would be) full.
    """
    most = min(round(float(np.sqrt(sh.shape[1]))) - 1, MAX_SH_DEGREE)
    degree = most if sh_degree is None else sh_degree
    if not 0 <= degree <= most:
        raise ValueError(f"a compressed PLY of these gaussians can hold SH degree 0 to {most}, not {degree}")
    chunk, vertex, sh_bytes = compressed_ply_elements(means, log_scales, quats, opacity_logits,
                                                      sh[:, :(degree + 1) ** 2, :])
    n = vertex.shape[0]
    header = ["ply", "format binary_little_endian 1.0", f"element chunk {chunk.shape[0]}"]
    header += [f"property float {name}" for name in CHUNK_PROPERTIES]
    header.append(f"element vertex {n}")
    header += [f"property uint {name}" for name in VERTEX_PROPERTIES]
    if sh_bytes.shape[1]:
        header.append(f"element sh {n}")
        header += [f"property uchar f_rest_{i}" for i in range(sh_bytes.shape[1])]
    header.append("end_header")
    head = ("\n".join(header) + "\n").encode("ascii")
    body = (chunk.astype("<f4"), vertex.astype("<u4"), sh_bytes)
    with atomic_write_path(path, expected_bytes=len(head) + sum(a.nbytes for a in body)) as tmp, \
            open(tmp, "wb") as f:
        f.write(head)
        for array in body:
            f.write(array.tobytes())
