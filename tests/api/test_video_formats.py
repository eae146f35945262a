"""What people actually film: every video file a camera, a camcorder or a screen recorder writes is accepted
(the containers and the raw elementary streams, made here with PyAV's own FFmpeg), and what is not a video
(a playlist, a concat list, an image) is refused with 415 naming its format, by the probe, the multipart route
and the resumable route, as soon as its first bytes decide it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.support.api_client import Api
from tests.support.scenes import files_under, open_db
from tests.support.uploads import TUS, big_file_then_fields, create, patch, scene_count, stream_upload
from vidscene import format_probe
from vidscene.db.models import Scene
from vidscene.pipeline.config import FramesConfig
from vidscene.pipeline.frames import extract_frames
from vidscene.probe import ACCEPTED, NotAVideoError, open_video, probe_video

FRAMES = 12
FIELDS = {"training_mode": "gaussian", "output_types": "video", "total_iterations": "200",
          "save_iterations": "100"}


@dataclass(frozen=True)
class Kind:
    name: str  # file name, as the camera would write it
    muxer: str  # PyAV output format
    codec: str
    demuxer: str  # what FFmpeg detects when it reads the file back
    size: tuple[int, int] = (64, 48)
    rate: Fraction = Fraction(25)
    pix_fmt: str = "yuv420p"
    options: dict[str, str] = field(default_factory=dict)
    codec_options: dict[str, str] = field(default_factory=dict)


KINDS = [
    Kind("raw.m1v", "mpeg1video", "mpeg1video", "mpegvideo"),  # raw MPEG-1 video, the report
    Kind("raw.m2v", "mpeg2video", "mpeg2video", "mpegvideo"),
    Kind("raw.h264", "h264", "libx264", "h264"),
    Kind("raw.hevc", "hevc", "libx265", "hevc", codec_options={"x265-params": "log-level=none"}),
    Kind("raw.m4v", "m4v", "mpeg4", "m4v"),
    Kind("dvd.vob", "vob", "mpeg2video", "mpeg"),  # also JVC .mod and Panasonic .tod camcorders (MPEG-PS)
    Kind("system.mpg", "mpeg", "mpeg1video", "mpeg"),
    Kind("avchd.m2ts", "mpegts", "libx264", "mpegts", options={"mpegts_m2ts_mode": "1"}),
    Kind("broadcast.ts", "mpegts", "mpeg2video", "mpegts"),
    Kind("screen.flv", "flv", "flv", "flv"),
    Kind("windows.wmv", "asf", "wmv2", "asf"),
    Kind("web.ogv", "ogg", "libvpx", "ogg"),  # this FFmpeg has no Theora encoder; the Ogg demuxer is the subject
    Kind("camera.mxf", "mxf", "mpeg2video", "mxf"),
    Kind("pal.dv", "dv", "dvvideo", "dv", size=(720, 576)),
    Kind("ntsc.dv", "dv", "dvvideo", "dv", size=(720, 480), rate=Fraction(30000, 1001), pix_fmt="yuv411p"),
]
RAW = [kind for kind in KINDS if kind.name.startswith("raw.")]


def encode(path: Path, kind: Kind, frames: int = FRAMES, *, noise: bool = False) -> Path:
    """A moving pattern (textured enough for the frames stage) encoded as ``kind``."""
    try:
        av.codec.Codec(kind.codec, "w")
    except av.error.FFmpegError:
        pytest.skip(f"PyAV's FFmpeg has no {kind.codec} encoder")
    width, height = kind.size
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format=kind.muxer, options=kind.options) as container:
        stream = container.add_stream(kind.codec, rate=kind.rate, options=kind.codec_options)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, kind.pix_fmt
        for index in range(frames):
            image = rng.integers(0, 255, base.shape, dtype=np.uint8) if noise else np.roll(base, 3 * index, 1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    return {kind.name: folder / kind.name for kind in KINDS}


def video(made: dict[str, Path], kind: Kind) -> Path:
    path = made[kind.name]
    return path if path.exists() else encode(path, kind)


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


# Not videos, each with the words its refusal must use.
HLS = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nsegment0.ts\n#EXT-X-ENDLIST\n"
CONCAT = b"ffconcat version 1.0\nfile '/etc/passwd'\nfile 'clip.mp4'\n"
REFUSED = {"hls": (HLS, "an HLS playlist"), "concat": (CONCAT, "an FFmpeg concat list (concat)"),
           "png": (_png(), "a PNG image (png_pipe)")}


# ---- accepted ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_the_probe_accepts_it_with_sane_numbers(made: dict[str, Path], kind: Kind) -> None:
    path = video(made, kind)
    info = probe_video(path)
    assert kind.demuxer in info.container.split(",")
    assert (info.width, info.height) == kind.size
    assert info.fps == pytest.approx(float(kind.rate), rel=0.01)
    # Raw streams have no header for these: they are counted (an MPEG-1 header's bit rate said 2 ms). A
    # container's figures come from its timestamps: first to last (MPEG-PS), give or take a frame or two.
    assert abs(info.frame_count - FRAMES) <= 3, info
    assert abs(info.duration_s - FRAMES / float(kind.rate)) <= 3 / float(kind.rate), info


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_the_demuxer_named_is_the_one_ffmpeg_opens(made: dict[str, Path], kind: Kind) -> None:
    """``format_probe`` replays FFmpeg's own probing: it names what ``av.open`` picks, from the first bytes."""
    path = video(made, kind)
    head, whole = format_probe.read_head(path)
    detection = format_probe.detect(head, path, whole_file=whole)
    assert detection is not None and detection.demuxer is not None
    with open_video(path) as container:
        assert detection.demuxer == container.format.name


@pytest.mark.parametrize("kind", RAW, ids=lambda kind: kind.name)
def test_the_frames_stage_decodes_raw_streams(made: dict[str, Path], kind: Kind, tmp_path: Path) -> None:
    result = extract_frames(video(made, kind), tmp_path / "frames", tmp_path / "thumb.jpg",
                            FramesConfig(target_count=6, min_frames=4, candidates_per_frame=2))
    assert len(result.frame_names) == 6
    assert result.stats["decoded_frames"] == FRAMES
    assert (result.width, result.height) == kind.size


@pytest.mark.parametrize("kind", [k for k in KINDS if k.muxer == "dv"], ids=lambda kind: kind.name)
def test_a_whole_dv_file_is_not_taken_for_a_damaged_one(made: dict[str, Path], kind: Kind, tmp_path: Path) -> None:
    """DV's header reads an average rate of 60000 fps: the frames stage expected 60000 x the duration frames and
    called every DV file cut short."""
    result = extract_frames(video(made, kind), tmp_path / "frames", tmp_path / "thumb.jpg",
                            FramesConfig(target_count=6, min_frames=4, candidates_per_frame=2))
    assert result.stats["decoded_frames"] == FRAMES
    assert result.stats["truncated"] is False


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.name)
def test_the_upload_route_accepts_it(api: Api, auth: dict[str, str], made: dict[str, Path], kind: Kind,
                                     db_url: str) -> None:
    data = video(made, kind).read_bytes()
    resp = api.new_scene(auth, data, filename=kind.name)
    assert resp.status_code == 202, resp.text
    with open_db(db_url) as session:
        scene = session.get(Scene, resp.json()["id"])
        assert scene is not None
        assert kind.demuxer in scene.video_info["container"].split(",")
        stored = api.settings.data_dir / "scenes" / scene.id / "upload" / scene.video_filename
    assert stored.read_bytes() == data and stored.suffix != ".bin"
    probe_video(stored)  # the worker's frames stage opens it under this name


def test_a_big_raw_stream_is_accepted_by_both_routes(api: Api, auth: dict[str, str], tmp_path: Path) -> None:
    """Past the MiB its format is judged from while it arrives: a raw stream (FFmpeg's least sure guess)
    is not refused early by either route."""
    path = encode(tmp_path / "big.m1v", Kind("big.m1v", "mpeg1video", "mpeg1video", "mpegvideo", size=(320, 240),
                                             codec_options={"qmin": "1", "qmax": "2"}), frames=40, noise=True)
    data = path.read_bytes()
    assert len(data) > 2 * format_probe.PROBE_BUF_MAX
    assert api.new_scene(auth, data, filename="big.m1v").status_code == 202
    url = create(api, auth, len(data)).headers["Location"]
    assert patch(api, auth, url, 0, data).status_code == 204
    assert scene_count(api) == 2


# ---- refused ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REFUSED)
def test_the_probe_refuses_naming_the_format(tmp_path: Path, name: str) -> None:
    data, words = REFUSED[name]
    path = tmp_path / "upload-x.part"
    path.write_bytes(data)
    with pytest.raises(NotAVideoError) as refused:
        probe_video(path)
    assert f"The uploaded file is {words}, not a video." in str(refused.value)
    assert ACCEPTED in str(refused.value)


@pytest.mark.parametrize("name", REFUSED)
def test_both_routes_refuse_naming_the_format(api: Api, auth: dict[str, str], name: str) -> None:
    data, words = REFUSED[name]
    resp = api.new_scene(auth, data, filename="clip.mp4")
    assert resp.status_code == 415, resp.text
    assert words in resp.json()["error"] and "Accepted: MP4/MOV/3GP" in resp.json()["error"]
    url = create(api, auth, len(data)).headers["Location"]
    resp = patch(api, auth, url, 0, data)
    assert resp.status_code == 415 and words in resp.json()["error"]
    assert files_under(api.settings.data_dir) == []


def test_without_libavformat_refusals_are_named_by_their_first_bytes(api: Api, auth: dict[str, str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(format_probe, "probe_function", lambda: None)
    assert format_probe.detect(_png(), "x.part", whole_file=True) is None
    for data, words in ((_png(), "a PNG image"), (HLS, "an HLS playlist"), (CONCAT, "an FFmpeg concat list")):
        resp = api.new_scene(auth, data)
        assert resp.status_code == 415 and f"The uploaded file is {words}, not a video." in resp.json()["error"]


# ---- refused from the first bytes, while the rest is still to come -----------------------------------------

FILE_BYTES = 24 * 1024 * 1024


@pytest.mark.parametrize(("first", "words"), [(_png(), "a PNG image (png_pipe)"), (CONCAT, "concat list"),
                                              (b"", "not a video that can be decoded")],
                         ids=["png", "concat", "zeros"])
def test_multipart_refuses_from_the_first_mib(api: Api, auth: dict[str, str], first: bytes, words: str) -> None:
    """A 'large' file that is a PNG (then zeros), a concat list, or zeros FFmpeg finds no format in: 415 after
    its first MiB, not after the whole body."""
    body, total = big_file_then_fields(FIELDS, {}, FILE_BYTES, first_bytes=first)
    answer = stream_upload(api, auth, "/user/scene/new", body, total)
    assert answer.status == 415, answer.body
    assert words in answer.error
    assert answer.read_before_answer <= format_probe.PROBE_BUF_MAX + 128 * 1024, answer.read_before_answer
    assert files_under(api.settings.data_dir) == []


def _zeros_after(first: bytes, total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    yield first
    left = total - len(first)
    while left > 0:
        yield bytes(min(chunk, left))
        left -= chunk


@pytest.mark.parametrize("pieces", [1, 3])
def test_tus_refuses_from_the_first_mib(api: Api, auth: dict[str, str], pieces: int) -> None:
    """One PATCH for the whole file (tus-js-client's default) or several: the PATCH whose bytes reach the
    first MiB is answered 415, the rest is not read, and the upload and its bytes are gone."""
    url = create(api, auth, FILE_BYTES).headers["Location"]
    offset = 0
    first = _png()
    if pieces > 1:  # two PATCHes below the MiB decide nothing
        for size in (400 * 1024, 400 * 1024):
            piece = b"".join(_zeros_after(first if offset == 0 else b"", size))
            assert patch(api, auth, url, offset, piece).status_code == 204
            offset += size
    headers = {**TUS, "Upload-Offset": str(offset)}
    answer = stream_upload(api, auth, url, _zeros_after(first if offset == 0 else b"", FILE_BYTES - offset),
                           FILE_BYTES - offset, content_type="application/offset+octet-stream", headers=headers)
    assert answer.status == 415, answer.body
    assert "a PNG image (png_pipe)" in answer.error
    assert offset + answer.read_before_answer <= format_probe.PROBE_BUF_MAX + 128 * 1024
    assert api.client.head(url, headers={**auth, **TUS}).status_code == 404
    assert files_under(api.settings.data_dir / "tmp") == []
    assert scene_count(api) == 0
