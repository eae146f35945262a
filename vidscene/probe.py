"""Decide whether a file is a usable video by decoding it, not by trusting its name or container header.

Used by the API to refuse non-videos with 415 before a job exists (the frames stage then decodes the whole
file with its own checks). Kept out of ``vidscene.pipeline`` so the API imports no pipeline code.

A refused file is named: which format FFmpeg found (``vidscene.format_probe``, from the first bytes, without
opening it), and what is accepted. ``judge_head`` gives the same verdict from the first bytes of an upload
still arriving, so a photo or a playlist is refused after its first MiB instead of after the whole body.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import av
import av.error

from vidscene import format_probe
from vidscene.format_probe import Detection

# The only demuxers FFmpeg may pick, and the only protocol it may use: an upload probed by content could
# otherwise be an HLS playlist or an ffconcat list naming other local files (or URLs) that FFmpeg would
# open, or a still image (png_pipe, image2) that "decodes" to one frame. Every demuxer here reads the one
# file it is given and nothing else.
CONTAINER_DEMUXERS = (
    "mov", "mp4", "3gp",  # one demuxer: "mov,mp4,m4a,3gp,3g2,mj2" (phones)
    "matroska", "webm",  # one demuxer: "matroska,webm"
    "avi",
    "mpeg",  # MPEG-PS: .mpg, .vob (DVD recorders), .mod/.tod (JVC, Panasonic camcorders)
    "mpegts",  # MPEG-TS and M2TS/MTS (AVCHD camcorders: 192-byte packets)
    "flv", "asf",  # Flash video (screen recorders, streams saved), ASF/WMV (Windows recorders)
    "ogg", "mxf", "dv",  # Ogg (Theora, VP8), MXF (broadcast and cinema cameras), DV (tape camcorders)
)
# Raw elementary streams (no container: some cameras, encoders and dashcams write them as they come).
RAW_STREAM_DEMUXERS = ("mpegvideo", "h264", "hevc", "m4v")  # MPEG-1/2, H.264, HEVC, MPEG-4 part 2
ALLOWED_DEMUXERS = CONTAINER_DEMUXERS + RAW_STREAM_DEMUXERS
ACCEPTED = ("Accepted: MP4/MOV/3GP, Matroska/WebM, AVI, MPEG-PS (.mpg, .vob, .mod), MPEG-TS/M2TS (.ts, .mts, "
            ".m2ts), FLV, ASF/WMV, Ogg, MXF and DV files, and raw H.264, HEVC, MPEG-1/2 and MPEG-4 video "
            "streams.")
_OPEN_OPTIONS = {"format_whitelist": ",".join(ALLOWED_DEMUXERS), "protocol_whitelist": "file"}

MAX_FPS = 1000.0  # a rate above this is a header's artefact (DV's average rate reads 60000), not the video's
# A raw stream has no header saying how long it is: its packets (one per frame) are counted, in this many
# bytes at most, and the count is scaled to the file's size past them.
RAW_COUNT_BYTES = 64 * 1024 * 1024

# What the refused formats people upload are, in words ("The uploaded file is ...").
_DESCRIPTIONS = {
    "hls": "an HLS playlist", "concat": "an FFmpeg concat list", "sdp": "an SDP session description",
    "image2": "an image", "gif": "a GIF image", "apng": "an animated PNG image", "mjpeg": "a JPEG image",
    "mp3": "an MP3 audio file", "wav": "a WAV audio file", "aac": "an AAC audio file", "flac": "a FLAC audio file",
    "aiff": "an AIFF audio file", "amr": "an AMR audio file", "tty": "a text file", "srt": "a subtitle file",
    "ass": "a subtitle file", "webvtt": "a subtitle file",
}
# Files FFmpeg finds no demuxer for at all (with an .m3u8 name it would: hls), or any file when libavformat
# cannot be asked: named by their first bytes.
_MAGIC = (
    (b"#EXTM3U", "an HLS playlist"), (b"ffconcat version", "an FFmpeg concat list"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"), (b"%PDF-", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"),
    (b"<?xml", "an XML document"), (b"[playlist]", "a playlist"),
)


class RemoteMedia(Protocol):
    """An upload that is not a local file (one in an object store, read by ranges: ``storage.objects``):
    what probing needs of it. ``str()`` is its name, as a path's is."""

    @property
    def size(self) -> int: ...

    def open(self, mode: str = "rb") -> IO[bytes]: ...


Media = Path | RemoteMedia


def media_size(media: Media) -> int:
    return media.stat().st_size if isinstance(media, Path) else media.size


def open_video(path: Media) -> av.container.InputContainer:
    """``av.open`` limited to the video formats above and to plain local files (or a remote upload's own
    reader, which names no other file either); FFmpeg errors propagate."""
    source = str(path) if isinstance(path, Path) else path.open("rb")
    return av.open(source, mode="r", metadata_errors="ignore", container_options=_OPEN_OPTIONS)


def is_accepted(demuxer: str) -> bool:
    """Whether FFmpeg's whitelist lets ``demuxer`` (a name such as "mov,mp4,m4a,3gp,3g2,mj2") open."""
    return any(part in ALLOWED_DEMUXERS for part in demuxer.split(","))


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
    frame_count: int  # from the header; counted for a raw stream; estimated from duration x rate otherwise

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def describe(detection: Detection | None, head: bytes) -> str | None:
    """The refused format in words ("a PNG image (png_pipe)"), or ``None`` when it has no name."""
    if detection is not None and detection.demuxer is not None and detection.score > format_probe.SCORE_RETRY:
        name = detection.demuxer
        words = _DESCRIPTIONS.get(name)
        if words is None and name.endswith("_pipe"):
            kind = name.removesuffix("_pipe").upper()
            words = f"{'an' if kind[:1] in 'AEFHILMNORSX' else 'a'} {kind} image"
        if words is None:
            words = f"a file in the {_long_name(name)} format"
        return f"{words} ({name})"
    return next((words for magic, words in _MAGIC if head.startswith(magic)), None)


def _long_name(demuxer: str) -> str:
    try:
        return str(av.ContainerFormat(demuxer.split(",")[0], "r").long_name)
    except ValueError:
        return demuxer


def refusal(detection: Detection | None, head: bytes) -> str:
    """The sentence answering a file FFmpeg will not open as a video."""
    words = describe(detection, head)
    if words is None:
        return f"The uploaded file is not a video that can be decoded. {ACCEPTED}"
    return f"The uploaded file is {words}, not a video. {ACCEPTED}"


def judge_head(head: bytes, path: Media | str, *, whole_file: bool) -> str | None:
    """A refusal sentence when the first bytes of a file (an upload still arriving) already decide that FFmpeg
    will not open it; ``None`` when they decide for an accepted format, or do not decide yet.

    Exactly FFmpeg's own choice (``format_probe.detect``): a file refused here would be refused at its end,
    and an accepted video never is. ``path`` is where the file is, as ``probe_video`` will be given it."""
    detection = format_probe.detect(head, path, whole_file=whole_file)
    if detection is None or (detection.demuxer is not None and is_accepted(detection.demuxer)):
        return None
    return refusal(detection, head)


def probe_video(path: Media) -> VideoInfo:
    """Open ``path`` with FFmpeg (PyAV) and decode its first video frame.

    Raises ``NotAVideoError`` for empty files, non-media files, formats outside ``ALLOWED_DEMUXERS`` (images,
    playlists; named when FFmpeg or the first bytes say what they are), media without a video stream and
    video streams that yield no decodable frame.
    """
    size = media_size(path)
    if size == 0:
        raise NotAVideoError("The uploaded file is empty.")
    head, whole = format_probe.read_head(path)
    detection = format_probe.detect(head, path, whole_file=whole)
    if detection is not None and (detection.demuxer is None or not is_accepted(detection.demuxer)):
        raise NotAVideoError(refusal(detection, head))
    try:
        info = _decode_first_frame(path)
        if info.container in RAW_STREAM_DEMUXERS:
            info = _with_counted_frames(path, info, size)
        return info
    except NotAVideoError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise NotAVideoError(_unreadable(detection, head)) from exc


def _unreadable(detection: Detection | None, head: bytes) -> str:
    if detection is not None and detection.demuxer is not None and detection.score > format_probe.SCORE_RETRY:
        return (f"The uploaded file looks like {_long_name(detection.demuxer)} ({detection.demuxer}) but could "
                "not be decoded: it may be damaged or cut short.")
    return refusal(detection, head)


def _decode_first_frame(path: Media) -> VideoInfo:
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
        fps = _frame_rate(stream)
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


def _frame_rate(stream: av.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and 0 < float(rate) <= MAX_FPS:
            return float(rate)
    return 0.0


def _with_counted_frames(path: Media, info: VideoInfo, size: int) -> VideoInfo:
    """A raw stream's frame count and duration: its header has neither (FFmpeg's guess from the bit rate
    field of an MPEG-1 sequence header is milliseconds), so its packets are counted."""
    count = 0
    through = 0
    with open_video(path) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream flush packet
            count += 1
            if packet.pos is not None and packet.pos >= 0:
                through = packet.pos + packet.size
            if through >= RAW_COUNT_BYTES:
                count = max(count, round(count * size / through))
                break
    frames = max(count, 1)
    duration = frames / info.fps if info.fps > 0 else 0.0
    return VideoInfo(**{**asdict(info), "frame_count": frames, "duration_s": duration})


