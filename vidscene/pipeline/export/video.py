"""H.264 MP4 writing with PyAV (libx264 ships inside the wheel; no ffmpeg binary needed)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

from vidscene.pipeline.errors import StorageFullError
from vidscene.pipeline.export import atomic_write_path
from vidscene.storage import is_disk_full

logger = logging.getLogger(__name__)


def _as_rgb24(frame: np.ndarray) -> np.ndarray:
    """uint8 RGB with even width and height (yuv420p subsamples chroma by 2 on both axes)."""
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) frame, got shape {frame.shape}")
    rgb = frame[:, :, :3]
    if rgb.dtype != np.uint8:
        rgb = (np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w = rgb.shape[:2]
    # Crop one row/column rather than pad: padding would show as a coloured line in the viewer.
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


def write_mp4(frames: Iterable[np.ndarray], path: Path, *, fps: int, crf: int = 20) -> None:
    """Encode ``frames`` ((H, W, 3) uint8 RGB, or float in 0..1) to an H.264 yuv420p MP4 at ``path``.

    Odd dimensions are cropped to even ones. The moov atom is moved to the front (``+faststart``) so browsers
    can start playing before the download ends. The file appears atomically (written as ``.part``, then
    renamed). Raises ``ValueError`` for no frames or frames of changing size, ``StorageFullError`` when the
    disk fills.
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    count = 0
    with atomic_write_path(path) as tmp:
        try:
            with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
                stream: av.VideoStream | None = None
                size: tuple[int, int] | None = None
                for frame in frames:
                    rgb = _as_rgb24(np.asarray(frame))
                    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
                        raise ValueError(f"frame too small for H.264: {frame.shape}")
                    if stream is None:
                        stream = container.add_stream("libx264", rate=fps)
                        stream.width, stream.height = rgb.shape[1], rgb.shape[0]
                        stream.pix_fmt = "yuv420p"
                        stream.options = {"crf": str(crf), "preset": "medium"}
                        size = rgb.shape[:2]
                    elif rgb.shape[:2] != size:
                        raise ValueError(f"frame {count} has size {rgb.shape[:2]}, expected {size}")
                    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    for packet in stream.encode(vf):
                        container.mux(packet)
                    count += 1
                if stream is None:
                    raise ValueError("no frames to write")
                for packet in stream.encode(None):
                    container.mux(packet)
        except av.FFmpegError as exc:
            if is_disk_full(exc):
                raise StorageFullError("The server ran out of disk space while writing the video.") from exc
            raise
    logger.info("wrote video", extra={"path": str(path), "frames": count, "fps": fps})
