"""PlayCanvas SOG ("spatially ordered gaussians", meta version 2): the smallest splat file, as SuperSplat, the
PlayCanvas engine and Spark read it.

A ``.sog`` is a zip (entries stored, as splat-transform writes them) of ``meta.json`` and lossless WebP images
with one RGBA pixel per gaussian, gaussians in Morton order of their positions so that neighbouring pixels hold
neighbouring gaussians (which is what makes the images compress). Each image is ``width`` x ``height`` with
``width = ceil(sqrt(N) / 4) * 4`` and ``height = ceil(N / width / 4) * 4``; pixel ``i`` in reading order is
gaussian ``i``. The layout, as PlayCanvas' splat-transform reads it:

- ``means_l.webp``, ``means_u.webp``: the low and high bytes (R, G, B for x, y, z) of 16-bit positions, after
  ``sign(v) * log(|v| + 1)`` per axis, spread linearly between ``meta.means.mins`` and ``maxs`` (of the
  transformed values);
- ``quats.webp``: the unit quaternion (w, x, y, z, the PLY's ``rot_0..3``) by "smallest three": the largest
  component, made positive, is left out; the other three, in order, as ``255 * (q * sqrt(2) * 0.5 + 0.5)`` in
  R, G, B, and A is ``252 +`` the index of the one left out;
- ``scales.webp``: R, G, B index the 256-entry ``meta.scales.codebook`` of log scales;
- ``sh0.webp``: R, G, B index ``meta.sh0.codebook`` (SH DC coefficients), A is ``sigmoid(opacity) * 255``;
- ``shN_labels.webp`` and ``shN_centroids.webp`` (only with SH degree > 0): the higher SH bands are clustered
  into a palette of ``meta.shN.count`` centroids; a gaussian's label (R low byte, G high byte) picks its
  centroid; centroid ``k``'s coefficient ``j`` is the pixel at row ``k // 64``, column ``(k % 64) * C + j``
  (``C`` coefficients per channel: 3, 8 or 15), whose R, G, B index the 256-entry ``meta.shN.codebook``.

Codebooks are 1D k-means (256 centres) of all the values they code; the SH palette is k-means over the whole
higher-band vector (fitted on a sample, at most ``SH_PALETTE_MAX`` centres). Coordinates are the ``.ply``'s
(splat-transform bakes every input to PLY space before it writes SOG), so a viewer shows the ``.sog`` as the
``.ply``.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from vidscene.pipeline.export import atomic_write_path
from vidscene.pipeline.export.compressed_ply import morton_order

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]

CODEBOOK_SIZE = 256
SH_PALETTE_MAX = 2048  # splat-transform goes to 65536 on a GPU; on a 2-core CPU 2048 costs seconds, not minutes
SH_SAMPLE = 32_768  # gaussians the SH palette is fitted on
KMEANS_ITERATIONS = 6
MAX_SH_DEGREE = 3
_SQRT2 = math.sqrt(2.0)
_OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])


@dataclass(frozen=True)
class Layout:
    """The images' size for ``count`` gaussians."""

    count: int

    @property
    def width(self) -> int:
        return max(4, math.ceil(math.sqrt(self.count) / 4) * 4)

    @property
    def height(self) -> int:
        return max(4, math.ceil(self.count / self.width / 4) * 4)

    def image(self, rgba: U8) -> U8:
        """(N, 4) pixels in reading order padded with zeros to the full image, shaped (height, width, 4)."""
        out = np.zeros((self.height * self.width, 4), dtype=np.uint8)
        out[: len(rgba)] = rgba
        return out.reshape(self.height, self.width, 4)


def codebook_1d(values: NDArray[np.floating], size: int = CODEBOOK_SIZE, iterations: int = 10) -> F32:
    """``size`` centres minimising the squared error of coding ``values`` by their nearest centre (1D k-means
    from quantiles: exact Lloyd steps on the sorted values, so millions of values cost milliseconds)."""
    v = np.sort(np.nan_to_num(np.asarray(values, dtype=np.float64)).ravel())
    if v.size == 0:
        return np.zeros(size, dtype=np.float32)
    centres = np.quantile(v, (np.arange(size) + 0.5) / size)
    sums = np.concatenate([[0.0], np.cumsum(v)])
    for _ in range(iterations):
        centres = np.unique(centres)
        cuts = np.searchsorted(v, (centres[1:] + centres[:-1]) / 2.0)
        starts, ends = np.concatenate([[0], cuts]), np.concatenate([cuts, [v.size]])
        filled = ends > starts
        centres = ((sums[ends] - sums[starts])[filled] / (ends - starts)[filled])
    padded = np.full(size, centres[-1])
    padded[: len(centres)] = centres
    return np.sort(padded).astype(np.float32)


def code(values: NDArray[np.floating], codebook: F32) -> U8:
    """Index of the nearest ``codebook`` entry (sorted ascending) for each of ``values``."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32))
    cb = codebook.astype(np.float32)
    right = np.clip(np.searchsorted(cb, v), 1, len(cb) - 1)
    left = right - 1
    nearest = np.where(np.abs(v - cb[left]) <= np.abs(cb[right] - v), left, right)
    return nearest.astype(np.uint8)


def log_transform(x: NDArray[np.floating]) -> F64:
    a = np.asarray(x, dtype=np.float64)
    return np.asarray(np.sign(a) * np.log1p(np.abs(a)), dtype=np.float64)


def pack_means(means: NDArray[np.floating]) -> tuple[U8, U8, dict[str, Any]]:
    """Low and high byte pixels of the 16-bit transformed positions, and their ``meta.means`` entry."""
    t = log_transform(np.nan_to_num(np.asarray(means, dtype=np.float64)))
    lo, hi = t.min(axis=0), t.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.clip(np.rint((t - lo) / span * 65535.0), 0, 65535).astype(np.uint16)
    low = np.full((len(q), 4), 255, dtype=np.uint8)
    high = np.full((len(q), 4), 255, dtype=np.uint8)
    low[:, :3] = (q & 0xFF).astype(np.uint8)
    high[:, :3] = (q >> 8).astype(np.uint8)
    entry = {"mins": lo.tolist(), "maxs": hi.tolist(), "files": ["means_l.webp", "means_u.webp"]}
    return low, high, entry


def pack_quats(quats: NDArray[np.floating]) -> U8:
    """Smallest-three pixels of (N, 4) w-x-y-z quaternions (normalised here; zero or broken: the identity)."""
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0)
    q = np.where(ok, q / np.where(ok, norm, 1.0), np.array([1.0, 0.0, 0.0, 0.0]))
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(len(q))
    q *= np.where(q[rows, largest] < 0, -1.0, 1.0)[:, None] * _SQRT2
    others = np.take_along_axis(q, _OTHERS[largest], axis=1)
    out = np.empty((len(q), 4), dtype=np.uint8)
    out[:, :3] = np.clip(np.rint(255.0 * (others * 0.5 + 0.5)), 0, 255).astype(np.uint8)
    out[:, 3] = (252 + largest).astype(np.uint8)
    return out


def kmeans(data: F32, k: int, *, iterations: int = KMEANS_ITERATIONS, seed: int = 0) -> tuple[F32, NDArray[np.int64]]:
    """Lloyd's k-means of the rows of ``data`` fitted on a sample of ``SH_SAMPLE`` rows; returns the centres and
    every row's label. Empty clusters keep their previous centre."""
    rng = np.random.default_rng(seed)
    sample = data if len(data) <= SH_SAMPLE else data[rng.choice(len(data), SH_SAMPLE, replace=False)]
    centres = sample[rng.choice(len(sample), k, replace=False)].copy()
    for _ in range(iterations):
        labels = nearest_rows(sample, centres)
        sums = np.zeros_like(centres, dtype=np.float64)
        np.add.at(sums, labels, sample)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        centres[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    return centres, nearest_rows(data, centres)


def nearest_rows(data: F32, centres: F32, block: int = 8192) -> NDArray[np.int64]:
    """Index of the nearest centre (Euclidean) of every row of ``data``, a block of rows at a time."""
    c2 = (centres.astype(np.float32) ** 2).sum(axis=1)
    out = np.empty(len(data), dtype=np.int64)
    for start in range(0, len(data), block):
        rows = data[start:start + block]
        out[start:start + block] = np.argmin(c2[None, :] - 2.0 * (rows @ centres.T), axis=1)
    return out


def pack_sh_rest(sh_rest: NDArray[np.floating]) -> tuple[U8, U8, dict[str, Any]]:
    """Label pixels, the centroid image and the ``meta.shN`` entry for (N, C, 3) higher-band coefficients."""
    n, coeffs = sh_rest.shape[0], sh_rest.shape[1]
    # The PLY's f_rest order (channel-major: every red coefficient, then green, then blue) is the palette's.
    flat = np.ascontiguousarray(np.transpose(np.nan_to_num(np.asarray(sh_rest, np.float32)), (0, 2, 1)))
    flat = flat.reshape(n, 3 * coeffs)
    k = min(SH_PALETTE_MAX, 2 ** max(0, int(math.log2(max(1, n // 4)))))
    centres, labels = kmeans(flat, k)
    codebook = codebook_1d(centres)
    coded = code(centres, codebook).reshape(k, 3, coeffs)  # (centre, channel, coefficient)
    rows = math.ceil(k / 64)
    image = np.zeros((rows * 64, coeffs, 4), dtype=np.uint8)
    image[:k, :, :3] = np.transpose(coded, (0, 2, 1))
    image[:k, :, 3] = 255
    centroid_image = image.reshape(rows, 64 * coeffs, 4)
    label_pixels = np.zeros((n, 4), dtype=np.uint8)
    label_pixels[:, 0] = (labels & 0xFF).astype(np.uint8)
    label_pixels[:, 1] = (labels >> 8).astype(np.uint8)
    label_pixels[:, 3] = 255
    entry = {"count": k, "bands": round(math.sqrt(coeffs + 1)) - 1, "codebook": codebook.tolist(),
             "files": ["shN_centroids.webp", "shN_labels.webp"]}
    return label_pixels, centroid_image, entry


def webp(image: U8) -> bytes:
    """Lossless WebP of an RGBA image; ``exact`` keeps the colour of fully transparent pixels (an invisible
    gaussian still has a colour and a scale index). Effort 50, method 2: within 1% of the size of the
    slowest settings (100, 4) at a twentieth of the time on Morton-ordered gaussians."""
    buf = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buf, format="WEBP", lossless=True, exact=True, quality=50, method=2)
    return buf.getvalue()


def sog_entries(means: NDArray[np.floating], log_scales: NDArray[np.floating], quats: NDArray[np.floating],
                opacity_logits: NDArray[np.floating], sh: NDArray[np.floating], sh_degree: int) -> dict[str, bytes]:
    """The zip's entries (name -> bytes) for N gaussians in raw training parameters (see ``write_sog``)."""
    n = means.shape[0]
    if n == 0:
        raise ValueError("a SOG file needs at least one gaussian")
    order = morton_order(means)
    layout = Layout(n)
    files: dict[str, bytes] = {}
    low, high, means_entry = pack_means(np.asarray(means)[order])
    files["means_l.webp"], files["means_u.webp"] = webp(layout.image(low)), webp(layout.image(high))
    files["quats.webp"] = webp(layout.image(pack_quats(np.asarray(quats)[order])))
    scales = np.asarray(log_scales, dtype=np.float32)[order]
    scale_book = codebook_1d(scales)
    scale_pixels = np.full((n, 4), 255, dtype=np.uint8)
    scale_pixels[:, :3] = code(scales, scale_book)
    files["scales.webp"] = webp(layout.image(scale_pixels))
    dc = np.asarray(sh, dtype=np.float32)[order, 0, :]
    dc_book = codebook_1d(dc)
    sh0 = np.empty((n, 4), dtype=np.uint8)
    sh0[:, :3] = code(dc, dc_book)
    logit = np.asarray(opacity_logits, dtype=np.float64).reshape(n)[order]
    logit = np.where(np.isnan(logit), -np.inf, logit)
    sh0[:, 3] = np.clip(np.rint(np.exp(-np.logaddexp(0.0, -logit)) * 255.0), 0, 255).astype(np.uint8)
    files["sh0.webp"] = webp(layout.image(sh0))
    meta: dict[str, Any] = {
        "version": 2, "asset": {"generator": "vidscene"}, "count": n, "means": means_entry,
        "scales": {"codebook": scale_book.tolist(), "files": ["scales.webp"]}, "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": dc_book.tolist(), "files": ["sh0.webp"]},
    }
    if sh_degree > 0:
        rest = np.asarray(sh)[order, 1:(sh_degree + 1) ** 2, :]
        labels, centroids, meta["shN"] = pack_sh_rest(rest)
        files["shN_centroids.webp"], files["shN_labels.webp"] = webp(centroids), webp(layout.image(labels))
    return {"meta.json": json.dumps(meta).encode("utf-8"), **files}


def write_sog(path: Path, means: NDArray[np.floating], log_scales: NDArray[np.floating],
              quats: NDArray[np.floating], opacity_logits: NDArray[np.floating], sh: NDArray[np.floating], *,
              sh_degree: int | None = None) -> None:
    """Write N gaussians (raw training parameters, ``sh`` (N, K, 3) DC first) as a bundled ``.sog``, atomically.

    ``sh_degree`` (default: all of ``sh``, at most 3) is how many SH bands to keep. Raises ``ValueError`` for no
    gaussians and ``StorageFullError`` when the disk is (or would be) full.
    """
    most = min(round(math.sqrt(sh.shape[1])) - 1, MAX_SH_DEGREE)
    degree = most if sh_degree is None else sh_degree
    if not 0 <= degree <= most:
        raise ValueError(f"a SOG of these gaussians can hold SH degree 0 to {most}, not {degree}")
    entries = sog_entries(means, log_scales, quats, opacity_logits, sh, degree)
    size = sum(len(b) for b in entries.values()) + 128 * len(entries)
    with atomic_write_path(path, expected_bytes=size) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # same gaussians, same bytes
            zf.writestr(info, data)
