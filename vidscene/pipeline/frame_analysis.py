"""What the kept frames alone say about how a video was filmed, before any 3D work.

Each frame is reduced to a small grey signature (``SIGNATURE_SIDE`` pixels on the long side). From the
signatures:

- **brightness and sharpness** per frame, the capture check's blur, dark and exposure readings;
- **a still camera**: the per-pixel temporal median of a still camera's frames is its background, and the
  textured pixels of almost every frame match it; a hand-held camera's textured pixels do not, because the
  view shifts by many pixels over a clip. Textured pixels only, because a white wall matches whatever the
  camera does. Each frame is divided by its mean first, so auto-exposure does not read as motion;
- **what moved in front of a still camera**: the share of each frame that differs from that background;
- **cuts**: consecutive kept frames of one shot are a fraction of a second apart and look alike (normalised
  cross-correlation near 1 whatever the exposure); across a cut they do not, and the second shot does not
  resemble anything before it either.

The thresholds were set on generated clips (``tests/pipeline/test_capture_check.py``, 192x144): a still
camera with people walking through (a fifth of the view) matches its background in 0.67 and more of its
textured pixels per frame, a 30-degree orbit of the synthetic room in 0.19-0.61, a pan none (its median keeps
no texture). An object turned by hand keeps changing 2% of the view, people walking past 0.1%.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from vidscene.pipeline.frames import sharpness

F32 = NDArray[np.float32]

SIGNATURE_SIDE = 96
TEXTURE_GRADIENT = 0.06  # relative gradient (of the frame's mean level) that makes a pixel "textured"
STILL_TOLERANCE = 0.07  # relative difference under which a pixel matches the background
MOVED_TOLERANCE = 0.15  # relative difference over which a pixel shows something that moved
PERSISTENT_SHARE = 0.4  # a spot that differs from the background in this share of the frames keeps moving
MIN_TEXTURE_KEPT = 0.5  # a median with less texture than this share of the frames': the view moved
STILL_FRAME_MATCH = 0.65  # a frame whose textured pixels match the background this well: camera still
CUT_MAX_CORRELATION = 0.45  # consecutive frames of one shot correlate far above this
CUT_BACK_CORRELATION = 0.6  # a new shot resembles no earlier frame more than this
CUT_MAX_SHIFT = 16  # signature pixels (a sixth of its width): how far a pan may move the view between frames


@dataclass(frozen=True)
class FrameReading:
    """One kept frame, as the capture check sees it."""

    brightness: float  # mean grey level, 0-255
    sharpness: float  # variance of the Laplacian of the grey frame over its mean level, at its stored size


@dataclass(frozen=True)
class StillCamera:
    """How much of the clip a still camera explains."""

    background_match: list[float]  # per frame: share of its textured pixels that match the temporal median
    moving_fraction: list[float]  # per frame: share of its pixels that differ from the temporal median
    # Share of the view where something differs from the background in at least PERSISTENT_SHARE of the frames:
    # an object moved or turned by hand keeps changing in one place, people walking past cover each spot briefly.
    persistent_motion: float = 0.0
    texture_kept: float = 0.0  # textured share of the median over that of the frames (about 1: a still camera)

    def still_share(self, threshold: float = STILL_FRAME_MATCH) -> float:
        """Share of frames whose textured pixels mostly match the background (the camera stood still)."""
        if not self.background_match or self.texture_kept < MIN_TEXTURE_KEPT:
            return 0.0
        return float(np.mean([m >= threshold for m in self.background_match]))


def read_frames(paths: Sequence[Path]) -> tuple[list[FrameReading], F32]:
    """Brightness and sharpness of each frame, and their grey signatures ``(N, h, w)`` in 0..255."""
    readings: list[FrameReading] = []
    signatures: list[F32] = []
    for path in paths:
        with Image.open(path) as img:
            grey = img.convert("L")
            pixels = np.asarray(grey, dtype=np.float32)
            scale = SIGNATURE_SIDE / max(grey.size)
            small = grey.resize((max(8, round(grey.size[0] * scale)), max(8, round(grey.size[1] * scale))),
                                Image.Resampling.BOX).filter(ImageFilter.BoxBlur(1))
        # Sharpness of the frame divided by its mean level: the Laplacian's variance grows with the square of
        # the exposure, and a phone re-exposing must not read as frames turning blurred.
        level = max(float(pixels.mean()), 1.0)
        readings.append(FrameReading(brightness=level, sharpness=sharpness(pixels / level)))
        signatures.append(np.asarray(small, dtype=np.float32))
    return readings, np.asarray(np.stack(signatures) if signatures else np.zeros((0, 8, 8)), dtype=np.float32)



def _gain_normalised(signatures: F32) -> F32:
    means = signatures.reshape(len(signatures), -1).mean(axis=1)
    normalised: F32 = (signatures / np.maximum(means, 1.0)[:, None, None]).astype(np.float32)
    return normalised


def _textured(image: F32) -> NDArray[np.bool_]:
    gy, gx = np.gradient(image)
    return np.asarray(np.hypot(gx, gy) > TEXTURE_GRADIENT)


def still_camera(signatures: F32) -> StillCamera:
    """Background match and moving share of every frame against the clip's temporal median."""
    if len(signatures) < 2:
        return StillCamera([], [], texture_kept=0.0)
    frames = _gain_normalised(signatures)
    background = np.median(frames, axis=0)
    # A still camera's median keeps the texture of its frames; a moving camera's median is a blur.
    textured = _textured(background)
    frame_texture = float(np.mean([_textured(f).mean() for f in frames]))
    texture_kept = float(textured.mean()) / max(frame_texture, 1e-6)
    match: list[float] = []
    moving: list[float] = []
    moved_count = np.zeros(background.shape, np.int32)
    for frame in frames:
        diff = np.abs(frame - background)
        match.append(float((diff[textured] < STILL_TOLERANCE).mean()) if textured.any() else 0.0)
        moved = diff > MOVED_TOLERANCE
        moving.append(float(moved.mean()))
        moved_count += moved
    persistent = float((moved_count >= PERSISTENT_SHARE * len(frames)).mean())
    return StillCamera(match, moving, persistent, texture_kept)


def correlation(a: F32, b: F32) -> float:
    """Normalised cross-correlation of two signatures (1: same picture up to brightness and contrast)."""
    a0, b0 = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a0 * a0).sum() * (b0 * b0).sum()))
    return float((a0 * b0).sum() / denom) if denom > 1e-6 else 1.0


def shifted_correlation(a: F32, b: F32, max_shift: int = CUT_MAX_SHIFT, step: int = 2) -> float:
    """The best ``correlation`` of ``b`` against ``a`` shifted by up to ``max_shift`` pixels each way: a fast
    pan moves the picture, a cut replaces it."""
    h, w = a.shape
    best = -1.0
    for dy in range(-max_shift, max_shift + 1, step):
        for dx in range(-max_shift, max_shift + 1, step):
            ya, yb = max(0, dy), max(0, -dy)
            xa, xb = max(0, dx), max(0, -dx)
            hh, ww = h - abs(dy), w - abs(dx)
            best = max(best, correlation(a[ya:ya + hh, xa:xa + ww], b[yb:yb + hh, xb:xb + ww]))
    return best


def cuts(signatures: F32) -> list[int]:
    """Indices ``i`` where a new shot begins at frame ``i`` (frames ``i-1`` and ``i`` are from different shots)."""
    found: list[int] = []
    shot_start = 0
    for i in range(1, len(signatures)):
        if correlation(signatures[i - 1], signatures[i]) >= CUT_MAX_CORRELATION:
            continue
        if shifted_correlation(signatures[i - 1], signatures[i]) >= CUT_MAX_CORRELATION:
            continue  # a fast pan
        # A passer-by filling the view also breaks the correlation for a frame or two; a cut starts a picture
        # that resembles nothing earlier in the shot.
        earlier = signatures[max(shot_start, i - 30):i]
        if max(correlation(s, signatures[i]) for s in earlier) < CUT_BACK_CORRELATION:
            found.append(i)
            shot_start = i
    return found


def shots(count: int, cut_at: Sequence[int]) -> list[range]:
    """The frame ranges between cuts."""
    bounds = [0, *cut_at, count]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]
