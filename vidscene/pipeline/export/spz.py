"""Niantic's ``.spz``: gaussians quantised to about 20 bytes each plus their SH, gzip-compressed.

A trained scene is roughly ten times smaller than its ``.ply`` and looks the same, which is what a browser
wants to download. Version 3 is written: the web viewer (Spark 2.2) reads versions 1 to 3 only (version 4 is a
different, zstd-compressed container), and 3 is the first with "smallest three" rotations (a 2-bit index and
three 10-bit components), far more accurate than version 2's three bytes. The reference library, PlayCanvas'
splat-transform and gsply read it too.

The gzip stream holds a 16-byte header (little endian: magic ``0x5053474e`` "NGSP", version ``u32`` 3, gaussian
count ``u32``, SH degree ``u8``, fractional bits ``u8``, flags ``u8`` 0 (not trained with antialiasing),
reserved ``u8`` 0), then one attribute after another for all gaussians (column-wise compresses better):

- positions: 3 x signed 24-bit fixed point, ``round(x * 2**fractional_bits)``;
- alphas: ``u8`` of ``sigmoid(opacity logit) * 255``;
- colours: 3 x ``u8`` of ``SH DC * 0.15 * 255 + 127.5`` (the format's scale leaves room outside 0..1);
- scales: 3 x ``u8`` of ``(log scale + 10) * 16``;
- rotations: ``u32``: the index of the largest component of the unit x-y-z-w quaternion (flipped so that
  component is positive) in the top 2 bits, then each other component in index order as a sign bit and 9 bits of
  ``|q| / sqrt(1/2) * 511``, the last in the lowest bits;
- SH: per gaussian, coefficient by coefficient (degree 1 first, as in the 3DGS basis), R G B inner, each ``u8``
  of ``x * 128 + 128`` rounded to multiples of 8 (degree 1) or 16 (higher degrees), the reference writer's
  default: the dropped bits cost nothing visible and make the stream compress much better.

Coordinates are stored as they are (the pipeline's world: OpenCV axes, ``-y`` up), not converted to the
format's nominal right-up-back axes, as the reference ``ply_to_spz`` tool and splat-transform do ("unspecified"
coordinate system) and as Spark reads them: a viewer shows the ``.spz`` exactly like the ``.ply`` and
``.splat`` of the same scene.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.export import atomic_write_path

MAGIC = 0x5053474E  # b"NGSP" read as a little-endian u32
VERSION = 3
HEADER = struct.Struct("<IIIBBBB")
COLOR_SCALE = 0.15
MAX_SH_DEGREE = 3  # Spark and the gzip versions stop at degree 3
# 12 bits is the reference writer's choice: 1/4096 of the unit the scene is normalised to (cameras within
# radius 1). Fewer are used only when the farthest gaussian would not fit in 24 bits, and never fewer than 8, so
# a few far-away floaters cannot blur the whole scene; any beyond +-2**15 units are clamped to the edge.
DEFAULT_FRACTIONAL_BITS = 12
MIN_FRACTIONAL_BITS = 8
SH1_BUCKET = 1 << (8 - 5)  # 5 significant bits for degree 1
SH_REST_BUCKET = 1 << (8 - 4)  # 4 for degrees 2 and 3
_I24_MAX = (1 << 23) - 1
_SQRT_HALF = float(np.sqrt(0.5))
_OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])  # the three indices beside the largest
_GZIP_LEVEL = 6  # level 9 takes twice as long for ~1% less


def _to_u8(x: NDArray[np.float64]) -> NDArray[np.uint8]:
    """Round and clamp to a byte; NaN becomes 0 rather than an undefined cast."""
    return np.clip(np.rint(np.nan_to_num(x)), 0, 255).astype(np.uint8)


def fractional_bits(means: NDArray[np.floating]) -> int:
    """The fixed-point precision for ``means``: see ``DEFAULT_FRACTIONAL_BITS``."""
    m = np.abs(np.asarray(means, dtype=np.float64))
    m = m[np.isfinite(m)]
    extent = float(m.max()) if m.size else 0.0
    bits = DEFAULT_FRACTIONAL_BITS
    while bits > MIN_FRACTIONAL_BITS and round(extent * (1 << bits)) > _I24_MAX:
        bits -= 1
    return bits


def pack_positions(means: NDArray[np.floating], bits: int) -> NDArray[np.uint8]:
    """(N, 9) bytes: x, y, z as little-endian signed 24-bit integers of ``mean * 2**bits`` (non-finite: 0)."""
    finite = np.nan_to_num(np.asarray(means, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    fixed = np.clip(np.rint(finite * (1 << bits)), -_I24_MAX, _I24_MAX)
    low4 = fixed.astype("<i4").reshape(-1, 3, 1).view(np.uint8)  # two's complement, low byte first
    return np.ascontiguousarray(low4[:, :, :3]).reshape(-1, 9)


def pack_rotations(quats: NDArray[np.floating]) -> NDArray[np.uint32]:
    """Smallest-three codes of (N, 4) w-x-y-z quaternions (normalised here; a zero one becomes the identity)."""
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)[:, [1, 2, 3, 0]]  # the format's x, y, z, w
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0)
    q = np.where(ok, q / np.where(ok, norm, 1.0), np.array([0.0, 0.0, 0.0, 1.0]))
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(q.shape[0])
    q *= np.where(q[rows, largest] < 0, -1.0, 1.0)[:, None]  # -q is the same rotation: make the largest positive
    others = np.take_along_axis(q, _OTHERS[largest], axis=1)  # each |.| <= sqrt(1/2) since the largest is kept
    mag = np.clip(np.rint(np.abs(others) / _SQRT_HALF * 511), 0, 511).astype(np.uint32)
    code = (mag | ((others < 0).astype(np.uint32) << 9))
    return np.asarray((largest.astype(np.uint32) << 30) | (code[:, 0] << 20) | (code[:, 1] << 10) | code[:, 2],
                      dtype=np.uint32)


def quantize_sh(sh_rest: NDArray[np.floating]) -> NDArray[np.uint8]:
    """(N, K-1, 3) higher SH coefficients -> (N, 3 (K-1)) bytes in file order (coefficient-major, RGB inner)."""
    x = np.asarray(sh_rest, dtype=np.float64)
    n, rest = x.shape[0], x.shape[1]
    q = np.rint(np.nan_to_num(x) * 128.0).clip(-1024, 1024).astype(np.int32) + 128
    bucket = np.full((1, rest, 1), SH_REST_BUCKET, dtype=np.int32)
    bucket[:, :3] = SH1_BUCKET
    q = (q + bucket // 2) // bucket * bucket
    return np.clip(q, 0, 255).astype(np.uint8).reshape(n, 3 * rest)


def _sections(means: NDArray[np.floating], log_scales: NDArray[np.floating], quats: NDArray[np.floating],
              opacity_logits: NDArray[np.floating], sh: NDArray[np.floating], sh_degree: int) -> Iterator[bytes]:
    """The uncompressed file, piece by piece, so only one attribute is in memory at a time."""
    n = means.shape[0]
    bits = fractional_bits(means)
    yield HEADER.pack(MAGIC, VERSION, n, sh_degree, bits, 0, 0)
    yield pack_positions(means, bits).tobytes()
    logit = np.asarray(opacity_logits, dtype=np.float64).reshape(n)
    logit = np.where(np.isnan(logit), -np.inf, logit)  # a broken opacity is transparent, not half
    yield _to_u8(np.exp(-np.logaddexp(0.0, -logit)) * 255.0).tobytes()  # sigmoid without overflow warnings
    dc = np.asarray(sh[:, 0, :], dtype=np.float64)
    yield _to_u8(dc * (COLOR_SCALE * 255.0) + 127.5).tobytes()
    yield _to_u8((np.asarray(log_scales, dtype=np.float64) + 10.0) * 16.0).tobytes()
    yield pack_rotations(quats).astype("<u4").tobytes()
    if sh_degree > 0:
        yield quantize_sh(sh[:, 1:(sh_degree + 1) ** 2, :]).tobytes()


def spz_payload(means: NDArray[np.floating], log_scales: NDArray[np.floating], quats: NDArray[np.floating],
                opacity_logits: NDArray[np.floating], sh: NDArray[np.floating], *,
                sh_degree: int | None = None) -> bytes:
    """The uncompressed content of the ``.spz`` of N gaussians (what ``write_spz`` gzips); see ``write_spz``."""
    return b"".join(_sections(means, log_scales, quats, opacity_logits, sh, _degree(sh, sh_degree)))


def write_spz(path: Path, means: NDArray[np.floating], log_scales: NDArray[np.floating],
              quats: NDArray[np.floating], opacity_logits: NDArray[np.floating], sh: NDArray[np.floating], *,
              sh_degree: int | None = None) -> None:
    """Write N gaussians (raw training parameters) as a version-3 ``.spz``, atomically.

    ``means`` (N, 3), ``log_scales`` (N, 3), ``quats`` (N, 4) unnormalised w-x-y-z, ``opacity_logits`` (N,),
    ``sh`` (N, K, 3) DC first; ``sh_degree`` (default: all of ``sh``, at most 3) is how many SH bands to keep, the
    degree the model was trained up to. Raises ``StorageFullError`` when the disk is (or would be) full.
    """
    degree = _degree(sh, sh_degree)
    n = means.shape[0]
    raw_bytes = HEADER.size + n * (9 + 1 + 3 + 3 + 4 + 3 * ((degree + 1) ** 2 - 1))  # gzip only shrinks it
    with atomic_write_path(path, expected_bytes=raw_bytes) as tmp, open(tmp, "wb") as f, \
            gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=_GZIP_LEVEL, mtime=0) as gz:
        for section in _sections(means, log_scales, quats, opacity_logits, sh, degree):
            gz.write(section)


def _degree(sh: NDArray[np.floating], sh_degree: int | None) -> int:
    """The SH degree to write: ``sh_degree``, or as much of ``sh`` as the format holds."""
    most = min(round(float(np.sqrt(sh.shape[1]))) - 1, MAX_SH_DEGREE)
    degree = most if sh_degree is None else sh_degree
    if not 0 <= degree <= most:
        raise ValueError(f"an SPZ of these gaussians can hold SH degree 0 to {most}, not {degree}")
    return degree
