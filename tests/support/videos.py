"""Every test video, through one encoder (``encode_frames``): synthetic clips with known cameras (an orbit
round ``synthetic.SyntheticScene``, a forward sweep over ``synthetic.TabletopScene``, a tripod shot, a black
clip), tiny noise clips in any codec, raw uploads of a given size, an audio-only file, and a finished scene's
video output as the pipeline's own writer encodes it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.support.synthetic import U8, SyntheticScene, TabletopScene, forward_cameras, orbit_cameras
from vidscene.pipeline.cameras import Camera

# Quality settings per encoder: high enough that compression artefacts do not dominate SfM accuracy.
CODEC_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "16", "preset": "veryfast"},
    "libx265": {"crf": "18", "preset": "veryfast"},
    "libvpx": {"crf": "8", "b": "4M", "deadline": "realtime", "cpu-used": "8"},
    "libvpx-vp9": {"crf": "20", "b": "0", "deadline": "realtime", "cpu-used": "8"},
    "mpeg4": {"qscale": "2"},
    "mjpeg": {"q:v": "2"},
}
PIX_FMT: dict[str, str] = {"mjpeg": "yuvj420p", "ffv1": "yuv444p"}


@dataclass
class SyntheticVideo:
    """An encoded video and the true camera of every frame (display orientation, time order)."""

    path: Path
    cameras: list[Camera]
    frame_times: list[float]  # seconds, presentation time of each frame

    @property
    def width(self) -> int:
        return self.cameras[0].width

    @property
    def height(self) -> int:
        return self.cameras[0].height


def make_orbit_video(path: Path, *, width: int = 160, height: int = 120, n_frames: int = 48, fps: int = 24,
                     seed: int = 0, codec: str = "libx264", orbit_degrees: float = 120.0,
                     hfov_degrees: float = 60.0, supersample: int = 2, brightness: float = 1.0,
                     blur_frames: Sequence[int] = (), blur_px: int = 9, rotation: int = 0,
                     frame_times: Sequence[float] | None = None, codec_options: dict[str, str] | None = None,
                     container_options: dict[str, str] | None = None) -> SyntheticVideo:
    """Render and encode a camera orbit; returns the true camera of every frame.

    ``width``/``height`` are the displayed (upright) size. ``brightness`` scales pixel values (a dark but
    usable video at 0.15). ``blur_frames`` get a horizontal motion blur of ``blur_px`` pixels. ``rotation``
    (0/90/180/270) stores the frames rotated and tags the stream with display rotation metadata, like a phone
    does, so a correct decoder shows them upright again. ``frame_times`` (seconds, increasing) makes a
    variable frame rate video. The container follows the file suffix (``.mp4``, ``.mkv``, ``.webm``...);
    ``container_options`` go to its muxer (``{"movflags": "faststart"}`` puts an MP4's index first).
    """
    scene = SyntheticScene(seed)
    start = float(np.random.default_rng(seed).uniform(0.0, 360.0))
    cams = orbit_cameras(n_frames, width, height, orbit_degrees=orbit_degrees, hfov_degrees=hfov_degrees,
                         start_degrees=start)
    blurred = set(blur_frames)

    def frame(i: int) -> U8:
        img = scene.render(cams[i], supersample)
        if i in blurred:
            img = motion_blur(img, blur_px)
        if brightness != 1.0:
            img = np.clip(img.astype(np.float32) * brightness + 0.5, 0, 255).astype(np.uint8)
        return img

    times = encode_frames(path, frame, n_frames, width, height, fps=fps, codec=codec, rotation=rotation,
                    frame_times=frame_times, codec_options=codec_options, container_options=container_options)
    return SyntheticVideo(path=path, cameras=cams, frame_times=times)



def make_forward_video(path: Path, *, width: int = 160, height: int = 120, n_frames: int = 48, fps: int = 24,
                       seed: int = 0, codec: str = "libx264", turn_degrees: float = 36.0, slide: float = 1.2,
                       supersample: int = 2, texture_size: int = 512) -> SyntheticVideo:
    """Render and encode a forward-facing hand-held clip of ``TabletopScene`` (see ``forward_cameras``);
    returns the true camera of every frame."""
    scene = TabletopScene(seed, texture_size=texture_size)
    cams = forward_cameras(n_frames, width, height, turn_degrees=turn_degrees, slide=slide, seed=seed)
    times = encode_frames(path, lambda i: scene.render(cams[i], supersample), n_frames, width, height, fps=fps,
                    codec=codec)
    return SyntheticVideo(path=path, cameras=cams, frame_times=times)


def make_static_video(path: Path, *, width: int = 160, height: int = 120, n_frames: int = 48, fps: int = 24,
                      seed: int = 0, codec: str = "libx264", noise: float = 2.0) -> Path:
    """A textured view that never moves (a tripod shot): structure from motion must refuse it.

    A little per-frame sensor noise keeps the frames from being bit-identical, as real ones never are.
    """
    scene = SyntheticScene(seed)
    cam = orbit_cameras(1, width, height)[0]
    base = scene.render(cam).astype(np.float32)
    rng = np.random.default_rng(seed + 1)

    def frame(_: int) -> U8:
        return np.clip(base + rng.normal(0.0, noise, base.shape), 0, 255).astype(np.uint8)

    encode_frames(path, frame, n_frames, width, height, fps=fps, codec=codec)
    return path


def make_black_video(path: Path, *, width: int = 160, height: int = 120, n_frames: int = 48, fps: int = 24,
                     codec: str = "libx264", level: int = 0) -> Path:
    """A video of one uniform grey level (0: black, lens cap on); the frames stage must refuse it."""
    img = np.full((height, width, 3), level, dtype=np.uint8)
    encode_frames(path, lambda _: img, n_frames, width, height, fps=fps, codec=codec)
    return path


def encode_frames(path: Path, frame: Callable[[int], U8], n_frames: int, width: int, height: int,
                  *, fps: int, codec: str, rotation: int = 0, frame_times: Sequence[float] | None = None,
                  codec_options: dict[str, str] | None = None, container_options: dict[str, str] | None = None,
                  container_format: str | None = None, pix_fmt: str | None = None,
                  frame_format: str = "rgb24") -> list[float]:
    """Encode ``frame(i)`` for every i; returns the presentation times (seconds) actually written.

    The one encoder of the test videos. ``codec_options`` and ``pix_fmt`` default to ``CODEC_OPTIONS`` and
    ``PIX_FMT`` for the codec; ``container_format`` overrides the file suffix; ``frame_format`` is what
    ``frame`` returns (``"rgb24"`` images, or ``"yuv420p"`` planes for raw video).
    """
    if rotation % 90:
        raise ValueError("rotation must be a multiple of 90 degrees")
    rotation %= 360
    if frame_times is not None and len(frame_times) != n_frames:
        raise ValueError("frame_times needs one time per frame")
    stored_w, stored_h = (height, width) if rotation in (90, 270) else (width, height)
    path.parent.mkdir(parents=True, exist_ok=True)
    times: list[float] = []
    with av.open(str(path), mode="w", format=container_format, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = stored_w, stored_h
        stream.pix_fmt = pix_fmt or PIX_FMT.get(codec, "yuv420p")
        stream.options = dict(CODEC_OPTIONS.get(codec, {}) if codec_options is None else codec_options)
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            # The display matrix says how to turn stored frames for display; we store the upright image turned
            # the other way so that applying it restores the upright picture.
            stream.set_display_rotation(rotation)
        for i in range(n_frames):
            img = frame(i)
            if rotation:
                img = np.ascontiguousarray(np.rot90(img, k=-rotation // 90))
            vf = av.VideoFrame.from_ndarray(img, format=frame_format)
            if frame_times is not None:
                vf.pts = round(frame_times[i] * 1000)
                vf.time_base = Fraction(1, 1000)
                times.append(vf.pts / 1000.0)
            else:
                vf.pts = i
                vf.time_base = Fraction(1, fps)
                times.append(i / fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return times


def motion_blur(img: U8, length: int) -> U8:
    """Horizontal box blur of ``length`` pixels: what a fast pan does to a frame."""
    if length <= 1:
        return img
    pad = length // 2
    f = np.pad(img.astype(np.float32), ((0, 0), (pad, length - 1 - pad), (0, 0)), mode="edge")
    c = np.cumsum(np.pad(f, ((0, 0), (1, 0), (0, 0))), axis=1)
    out = (c[:, length:] - c[:, :-length]) / length
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def encode_video(path: Path, *, codec: str = "libx264", frames: int = 6, size: tuple[int, int] = (64, 48),
                 container_format: str | None = None, pix_fmt: str = "yuv420p") -> Path:
    """A tiny noise video encoded with PyAV (deterministic content, real container and codec)."""
    rng = np.random.default_rng(0)
    width, height = size
    encode_frames(path, lambda _: rng.integers(0, 255, (height, width, 3), dtype=np.uint8), frames, width, height,
                  fps=10, codec=codec, codec_options={}, container_format=container_format, pix_fmt=pix_fmt)
    return path


RAW_SIZE = (640, 480)
RAW_FRAME_BYTES = RAW_SIZE[0] * RAW_SIZE[1] * 3 // 2  # yuv420p


def raw_noise_video(path: Path, min_bytes: int, *, seed: int = 0) -> Path:
    """Uncompressed yuv420p noise in Matroska, at least ``min_bytes`` of frames: written at disk speed,
    decoded like any upload."""
    width, height = RAW_SIZE
    base = np.random.default_rng(seed).integers(0, 255, (height * 3 // 2, width * 2), dtype=np.uint8)

    def planes(index: int) -> U8:
        shift = (index * 7) % width
        return np.ascontiguousarray(base[:, shift:shift + width])

    encode_frames(path, planes, min_bytes // RAW_FRAME_BYTES + 1, width, height, fps=25, codec="rawvideo",
                  container_format="matroska", frame_format="yuv420p")
    return path


def encode_audio(path: Path) -> Path:
    """A short sine WAV: valid media, but no video stream."""
    with av.open(str(path), mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        assert isinstance(stream, av.AudioStream)
        samples = (np.sin(np.linspace(0, 200, 8000)) * 10000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_mp4(path: Path, frames: int = 24, size: tuple[int, int] = (160, 120)) -> None:
    from vidscene.pipeline.export.video import write_mp4

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]

    def frame(i: int) -> np.ndarray:
        img = np.zeros((h, w, 3), dtype=np.uint8)
        img[..., 0] = (xx * 255 // w + i * 8) % 256
        img[..., 1] = yy * 255 // h
        img[..., 2] = 128 + 100 * ((xx // 20 + yy // 20 + i) % 2)
        return img

    write_mp4((frame(i) for i in range(frames)), path, fps=12)
