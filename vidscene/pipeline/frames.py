"""Frames stage: decode the video once, keep the sharpest frame of every short time window, write them upright.

Selection works in two passes over the file so that memory never depends on the video's length:

1. demux only (no decoding, fast): the presentation timestamp of every frame. From them we pick
   ``target_count * candidates_per_frame`` candidates evenly spaced in *time* (variable frame rate phone videos
   have uneven gaps, so frame indices would bunch the samples), grouped into ``target_count`` windows;
2. decode every frame (codecs need it) but convert only the candidates to RGB at the working resolution, score
   their sharpness (variance of the Laplacian) and keep the best of each window, writing it out as soon as
   the window closes.

Comparing only within a window means a uniformly dark or soft video still yields a full set of frames; only
frames worse than their neighbours are dropped. Frames with practically no detail (black, lens cap) are
skipped, and a video made only of them is refused with a sentence the user can act on.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from vidscene.pipeline.config import FramesConfig
from vidscene.pipeline.errors import VideoError
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.probe import MAX_FPS, open_video

log = logging.getLogger(__name__)

U8 = NDArray[np.uint8]

FRAME_PATTERN = "frame_{:05d}.png"
# Standard deviation of grey levels (0-255) below which a frame has no usable detail: compression noise on a
# black frame stays well under it, while a dark but real scene (10-15% brightness) stays well above.
MIN_DETAIL_STD = 1.5
THUMBNAIL_QUALITY = 85
_THUMBNAIL_FROM_FIRST = 8  # the thumbnail is the sharpest of the first kept frames: early, but not blurred


@dataclass
class FramesResult:
    """Frames written by ``extract_frames``; ``frame_names`` sort in time order."""

    frames_dir: Path
    frame_names: list[str]
    thumbnail: Path
    source_frame_indices: list[int]  # presentation-order index in the source video of each kept frame
    width: int  # all frames share this size (display orientation)
    height: int
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_paths(self) -> list[Path]:
        return [self.frames_dir / name for name in self.frame_names]


@dataclass
class Candidate:
    """The sharpest candidate seen so far in the current window."""

    group: int
    index: int
    sharpness: float
    image: U8


def sharpness(gray: NDArray[np.float32]) -> float:
    """Variance of the 4-neighbour Laplacian: high for crisp edges, low for motion or focus blur."""
    lap = (gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1]) - 4.0 * gray[1:-1, 1:-1]
    return float(lap.var())


def extract_frames(video: Path, out_dir: Path, thumbnail: Path, config: FramesConfig,
                   progress: ProgressFn = no_progress) -> FramesResult:
    """Pick and write ``config.target_count`` sharp frames of ``video`` (fewer if the video is short).

    Frames are written as ``frame_00000.png``... in time order into ``out_dir`` (replaced as a whole, so a
    cancelled or failed run leaves the previous content or nothing), upright according to the stream's
    rotation metadata, with the long side at most ``config.max_long_side`` (never upscaled). ``thumbnail`` is a
    JPEG whose long side is at most ``config.thumbnail_size``.

    Raises ``VideoError`` when the file is not a decodable video, has fewer than ``config.min_frames`` usable
    frames, or shows nothing (black or uniform). A file cut short is used up to the damage, with a warning.
    Exceptions raised by ``progress`` (``Cancelled``) propagate.
    """
    started = time.perf_counter()
    ctx = {"stage": "frames", "video": str(video)}
    timeline = _read_timeline(video, config.max_decode_frames)
    n_frames = len(timeline.times)
    if n_frames < max(2, config.min_frames):
        raise VideoError(f"The video has only {n_frames} frame{'s' if n_frames != 1 else ''}; at least "
                         f"{max(2, config.min_frames)} are needed. Please upload a longer video.")
    groups = candidate_groups(timeline.times, config.target_count, config.candidates_per_frame)
    group_of = {idx: g for g, members in enumerate(groups) for idx in members}
    progress(0, n_frames, "Reading the video")

    tmp_dir = out_dir.with_name(out_dir.name + ".part")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        writer = FrameWriter(tmp_dir)
        decoded, size, rotation, truncated = _decode_candidates(video, timeline, group_of, config, writer,
                                                                progress, ctx)
        writer.flush()
        _refuse_too_few(writer, decoded, truncated, config.min_frames)
        publish_frames(writer, tmp_dir, out_dir, thumbnail, config.thumbnail_size)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    assert size is not None
    kept_sharpness = np.array(writer.sharpness_kept) if writer.sharpness_kept else np.zeros(1)
    stats: dict[str, Any] = {
        "source_frames": n_frames, "decoded_frames": decoded, "candidates": len(group_of),
        "kept": len(writer.names), "skipped_featureless": writer.featureless, "rotation": rotation,
        "source_width": timeline.width, "source_height": timeline.height,
        "duration_s": round(timeline.times[-1] - timeline.times[0], 3), "truncated": truncated,
        "sharpness_kept_min": round(float(kept_sharpness.min()), 2),
        "sharpness_kept_median": round(float(np.median(kept_sharpness)), 2),
        "seconds": round(time.perf_counter() - started, 3),
    }
    progress(n_frames, n_frames, f"Kept {len(writer.names)} sharp frames")
    log.info("frames extracted", extra={**ctx, **stats})
    return FramesResult(frames_dir=out_dir, frame_names=writer.names, thumbnail=thumbnail,
                        source_frame_indices=writer.source_indices, width=size[0], height=size[1], stats=stats)


def _refuse_too_few(writer: FrameWriter, decoded: int, truncated: bool, min_frames: int) -> None:
    """Raise ``VideoError`` saying why, when fewer than ``min_frames`` frames were kept: damage, darkness, length."""
    if decoded < max(2, min_frames) and truncated:
        raise VideoError("The video file is damaged: too few of its frames could be decoded.")
    if writer.featureless and len(writer.names) < min_frames:
        raise VideoError("The video is too dark or has no visible detail; please film a well-lit, "
                         "textured scene.")
    if len(writer.names) < min_frames:
        raise VideoError(f"Only {len(writer.names)} usable frames could be taken from the video; at least "
                         f"{min_frames} are needed. Please upload a longer video.")


def publish_frames(writer: FrameWriter, tmp_dir: Path, out_dir: Path, thumbnail: Path, thumbnail_size: int) -> None:
    """Write the thumbnail, then replace ``out_dir`` with the finished ``tmp_dir`` and put the thumbnail in place.

    Both are written under a temporary name first, so a failure before the swap leaves the previous content.
    """
    thumb_tmp = thumbnail.with_name(thumbnail.name + ".part")
    thumbnail.parent.mkdir(parents=True, exist_ok=True)
    _write_thumbnail(writer.thumbnail_candidate(), thumb_tmp, thumbnail_size)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp_dir.replace(out_dir)
    thumb_tmp.replace(thumbnail)


@dataclass
class _Timeline:
    times: list[float]  # seconds, presentation order
    index_of_pts: dict[int, int]  # packet pts -> presentation index; empty when the container gives no pts
    width: int
    height: int
    cut_short: bool = False  # the stream ended well before the length its header announces


def _open(video: Path) -> av.container.InputContainer:
    try:
        return open_video(video)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise VideoError("The file could not be read as a video.") from exc


def _read_timeline(video: Path, max_frames: int) -> _Timeline:
    """Presentation times of the video frames from a demux-only pass (cheap: nothing is decoded)."""
    pts_list: list[int] = []
    count = 0
    with _open(video) as container:
        if not container.streams.video:
            raise VideoError("The file has no video stream.")
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90_000)
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        missing_pts = False
        expected = _expected_frames(container, stream)
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream flush packet
                if packet.pts is None:
                    missing_pts = True
                else:
                    pts_list.append(int(packet.pts))
                count += 1
                if count >= max_frames:
                    break
        except av.error.FFmpegError as exc:
            log.warning("video damaged while scanning; using the frames before the damage",
                        extra={"stage": "frames", "video": str(video), "error": str(exc)})
            expected = max(expected, count + 2)
    cut_short = count < max_frames and expected > 0 and count < 0.97 * expected - 1
    if cut_short:
        log.warning("video ended after %d of the %d frames its header announces; it is probably damaged or "
                    "truncated, using the frames before the damage", count, expected,
                    extra={"stage": "frames", "video": str(video)})
    if missing_pts or len(set(pts_list)) != len(pts_list):
        # Raw streams without timestamps: fall back to a constant frame rate.
        return _Timeline([i / float(rate) for i in range(count)], {}, width, height, cut_short)
    ordered = sorted(pts_list)
    return _Timeline([float(p * time_base) for p in ordered], {p: i for i, p in enumerate(ordered)}, width,
                     height, cut_short)


def _expected_frames(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """Frame count the header announces (0 when it does not say), to notice a file cut short."""
    if stream.frames:
        return int(stream.frames)
    # DV's header reads an average rate of 60000 fps, which is no measure of its length; its guessed one is.
    rate = next((r for r in (stream.average_rate, stream.guessed_rate) if r and float(r) <= MAX_FPS), None)
    if not rate:
        return 0
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base) * float(rate))
    if container.duration is not None:
        return round(container.duration / av.time_base * float(rate))
    return 0


def candidate_groups(times: list[float], target: int, per_frame: int) -> list[list[int]]:
    """Indices of candidate frames, evenly spaced in time, split into at most ``target`` consecutive windows."""
    t = np.asarray(times)
    n_candidates = max(1, target * max(1, per_frame))
    if n_candidates >= len(t):
        candidates = np.arange(len(t))
    else:
        wanted = np.linspace(t[0], t[-1], n_candidates)
        pos = np.clip(np.searchsorted(t, wanted), 1, len(t) - 1)
        nearest = np.where(np.abs(t[pos - 1] - wanted) <= np.abs(t[pos] - wanted), pos - 1, pos)
        candidates = np.unique(nearest)
    return [list(map(int, g)) for g in np.array_split(candidates, min(target, len(candidates))) if len(g)]


class FrameWriter:
    """Receives window winners in time order and writes them; remembers what the thumbnail needs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.names: list[str] = []
        self.source_indices: list[int] = []
        self.sharpness_kept: list[float] = []
        self.featureless = 0
        self.pending: Candidate | None = None
        self._early: list[tuple[float, U8]] = []

    def offer(self, best: Candidate) -> None:
        """A candidate of window ``best.group``; windows arrive in order, so a new one closes the last."""
        if self.pending is not None and self.pending.group != best.group:
            self.flush()
        if self.pending is None or best.sharpness > self.pending.sharpness:
            self.pending = best

    def flush(self) -> None:
        best, self.pending = self.pending, None
        if best is None:
            return
        if float(best.image.mean(axis=2).std()) < MIN_DETAIL_STD:
            self.featureless += 1
            return
        name = FRAME_PATTERN.format(len(self.names))
        Image.fromarray(best.image).save(self.directory / name, compress_level=1)
        self.names.append(name)
        self.source_indices.append(best.index)
        self.sharpness_kept.append(best.sharpness)
        if len(self._early) < _THUMBNAIL_FROM_FIRST:
            self._early.append((best.sharpness, best.image))

    def thumbnail_candidate(self) -> U8:
        return max(self._early, key=lambda e: e[0])[1]


def _decode_candidates(video: Path, timeline: _Timeline, group_of: dict[int, int], config: FramesConfig,
                       writer: FrameWriter, progress: ProgressFn,
                       ctx: dict[str, str]) -> tuple[int, tuple[int, int] | None, int, bool]:
    """Decode the whole video, hand every candidate frame to ``writer``.

    Returns (frames decoded, output size (w, h), rotation in degrees, whether decoding stopped on damage).
    """
    n_total = len(timeline.times)
    step = max(1, n_total // 100)
    decoded = 0
    size: tuple[int, int] | None = None
    stored_size: tuple[int, int] | None = None
    rotation = 0
    truncated = timeline.cut_short
    with _open(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if timeline.index_of_pts and frame.pts is not None and frame.pts in timeline.index_of_pts:
                    index = timeline.index_of_pts[frame.pts]
                else:
                    index = decoded
                decoded += 1
                if index in group_of:
                    if stored_size is None:
                        rotation = int(frame.rotation or 0) % 360
                        stored_size = working_size(frame.width, frame.height, config.max_long_side)
                        sw, sh = stored_size
                        size = (sh, sw) if rotation in (90, 270) else (sw, sh)
                    rgb: U8 = np.asarray(frame.reformat(width=stored_size[0], height=stored_size[1],
                                                        format="rgb24", interpolation="AREA").to_ndarray(),
                                         dtype=np.uint8)
                    if rotation:
                        # frame.rotation is counter-clockwise degrees to apply for display (the display matrix).
                        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
                    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
                    writer.offer(Candidate(group_of[index], index, sharpness(gray), rgb))
                if decoded % step == 0:
                    progress(min(decoded, n_total), n_total, "Selecting sharp frames")
                if decoded >= n_total:
                    break
        except av.error.FFmpegError as exc:
            truncated = True
            log.warning("video damaged; using the %d frames decoded before the damage", decoded,
                        extra={**ctx, "error": str(exc)})
    if decoded == 0:
        raise VideoError("The video contains no decodable frames.")
    # A frame or two fewer than packets is normal (leading B-frames of an open GOP are dropped).
    if decoded < 0.97 * n_total - 1 and not truncated:
        truncated = True
        log.warning("video ended after %d of %d frames; using what was decoded", decoded, n_total, extra=ctx)
    return decoded, size, rotation, truncated


def working_size(width: int, height: int, max_long_side: int) -> tuple[int, int]:
    """Downscaled size keeping the aspect ratio; never larger than the source, even numbers of pixels."""
    scale = min(1.0, max_long_side / max(width, height))
    if scale >= 1.0:
        return width, height
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _write_thumbnail(image: U8, path: Path, max_side: int) -> None:
    img = Image.fromarray(image)
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    img.save(path, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
