"""Decide whether a file is a usable video by decoding it, not by trusting its name or container header.

Used by the API to refuse non-videos with 415 before a job exists (the frames stage then decodes the whole
file with its own checks). Kept out of ``vidscene.pipeline`` so the API imports no pipeline code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

# The only demuxers FFmpeg may pick, and the only protocol it may use: an upload probed by content could
# otherwise be an HLS playlist or an ffconcat list naming other local files (or URLs) that FFmpeg would
# open, or a still image (png_pipe, image2) that "decodes" to one frame.
ALLOWED_DEMUXERS = ("mov", "mp4", "3gp", "matroska", "webm", "avi", "mpegts", "mpeg")
_OPEN_OPTIONS = {"format_whitelist": ",".join(ALLOWED_DEMUXERS), "protocol_whitelist": "file"}


def open_video(path: Path) -> av.container.InputContainer:
    """``av.open`` limited to the video containers above and to plain local files; FFmpeg errors propagate."""
    return av.open(str(path), mode="r", metadata_errors="ignore", container_options=_OPEN_OPTIONS)


class NotAVideoError(Exception):
    """The file does not decode to video frames; ``str()`` is a sentence for the user."""


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    width: int  # as displayed, after rotation metadata is applied
    height: int
    rotation: int  # degrees counter-clockwise the frames must be rotated for display
    fps: float
    duration_s: float
    frame_count: int  # from the header, or estimated from duration x rate when the header has none

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def probe_video(path: Path) -> VideoInfo:
    """Open ``path`` with FFmpeg (PyAV) and decode its first video frame.

    Raises ``NotAVideoError`` for empty files, non-media files, containers outside ``ALLOWED_DEMUXERS``
    (images, playlists), media without a video stream and video streams that yield no decodable frame.
    """
    if path.stat().st_size == 0:
        raise NotAVideoError("The uploaded file is empty.")
    try:
        with open_video(path) as container:
            if not container.streams.video:
                raise NotAVideoError("The uploaded file has no video stream.")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            first = None
            for frame in container.decode(stream):
                first = frame
                break
            if first is None:
                raise NotAVideoError("The uploaded video contains no decodable frames.")
            rotation = int(getattr(first, "rotation", 0) or 0) % 360
            width, height = first.width, first.height
            if rotation in (90, 270):
                width, height = height, width
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            fps = float(rate) if rate else 0.0
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            frames = int(stream.frames or 0)
            if frames <= 0 and fps > 0 and duration > 0:
                frames = max(1, round(duration * fps))
            return VideoInfo(container=container.format.name, codec=stream.codec_context.name, width=width,
                             height=height, rotation=rotation, fps=fps, duration_s=duration,
                             frame_count=max(frames, 1))
    except NotAVideoError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise NotAVideoError("The uploaded file is not a video that can be decoded.") from exc
