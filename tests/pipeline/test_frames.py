"""Frames stage: sharp frames in time order, upright, at the working resolution; clear errors for bad videos."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.synthetic import SyntheticScene
from tests.support.videos import SyntheticVideo, encode_frames, make_black_video, make_orbit_video
from vidscene.pipeline.config import FramesConfig
from vidscene.pipeline.errors import VideoError
from vidscene.pipeline.frames import FramesResult, extract_frames, sharpness
from vidscene.pipeline.progress import Cancelled


@pytest.fixture(scope="module")
def orbit(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    return make_orbit_video(tmp_path_factory.mktemp("orbit") / "orbit.mp4", n_frames=48, width=160, height=120)


def _extract(video: Path, tmp_path: Path, **config: int) -> FramesResult:
    return extract_frames(video, tmp_path / "frames", tmp_path / "thumb.jpg", FramesConfig(**config))


def _load(result: FramesResult) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in result.frame_paths]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def test_keeps_target_count_in_time_order_at_working_resolution(orbit: SyntheticVideo, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    result = extract_frames(orbit.path, tmp_path / "frames", tmp_path / "thumb.jpg",
                            FramesConfig(target_count=12, max_long_side=120, thumbnail_size=64),
                            progress=lambda pos, total, msg="": calls.append((pos, total)))
    assert result.frame_names == [f"frame_{i:05d}.png" for i in range(12)]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == result.frame_names
    assert result.source_frame_indices == sorted(set(result.source_frame_indices))
    # Evenly spread: one frame from each quarter-second window of the 2 s video.
    assert result.source_frame_indices[0] < 4
    assert result.source_frame_indices[-1] >= 44
    assert (result.width, result.height) == (120, 90)
    images = _load(result)
    assert all(img.shape == (90, 120, 3) for img in images)
    # Each written frame is the source frame it claims to be.
    scene = SyntheticScene(0)
    for k in (0, 5, 11):
        truth = scene.render(orbit.cameras[result.source_frame_indices[k]].scaled(120, 90))
        others = [scene.render(orbit.cameras[j].scaled(120, 90)) for j in (0, 47) if
                  j != result.source_frame_indices[k]]
        assert _psnr(images[k], truth) > 25
        assert all(_psnr(images[k], truth) > _psnr(images[k], o) + 3 for o in others)
    thumb = Image.open(result.thumbnail)
    assert thumb.format == "JPEG"
    assert max(thumb.size) <= 64
    assert calls
    assert calls[-1][0] == calls[-1][1]
    assert result.stats["kept"] == 12
    assert result.stats["source_frames"] == 48


def test_never_upscales_and_replaces_previous_output(orbit: SyntheticVideo, tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "stale.png").write_bytes(b"old")
    result = _extract(orbit.path, tmp_path, target_count=10, max_long_side=1000)
    assert (result.width, result.height) == (160, 120)
    assert not (tmp_path / "frames" / "stale.png").exists()
    assert len(result.frame_names) == 10
    assert max(Image.open(result.thumbnail).size) == 160


def test_short_video_keeps_every_frame(orbit: SyntheticVideo, tmp_path: Path) -> None:
    result = _extract(orbit.path, tmp_path, target_count=80)
    assert result.source_frame_indices == list(range(48))


def test_motion_blurred_frames_are_rejected(tmp_path: Path) -> None:
    blurred = [i for i in range(48) if i % 4 in (1, 2)]
    video = make_orbit_video(tmp_path / "blur.mp4", n_frames=48, width=128, height=96, blur_frames=blurred)
    result = _extract(video.path, tmp_path, target_count=12, candidates_per_frame=4)
    assert len(result.frame_names) == 12
    assert not set(result.source_frame_indices) & set(blurred)


def test_dark_but_usable_video_is_kept_whole(tmp_path: Path) -> None:
    video = make_orbit_video(tmp_path / "dark.mp4", n_frames=40, width=96, height=72, brightness=0.12)
    result = _extract(video.path, tmp_path, target_count=10)
    assert len(result.frame_names) == 10
    assert float(np.mean(_load(result)[0])) < 30


def test_black_video_is_refused(tmp_path: Path) -> None:
    video = make_black_video(tmp_path / "black.mp4", n_frames=30, width=96, height=64)
    with pytest.raises(VideoError, match="too dark"):
        _extract(video, tmp_path, target_count=10)
    assert not (tmp_path / "frames").exists()
    assert not (tmp_path / "frames.part").exists()


@pytest.mark.parametrize("n_frames", [1, 5])
def test_too_short_video_is_refused(tmp_path: Path, n_frames: int) -> None:
    video = make_orbit_video(tmp_path / "short.mp4", n_frames=n_frames, width=64, height=48)
    with pytest.raises(VideoError, match=f"only {n_frames} frame"):
        _extract(video.path, tmp_path, target_count=10, min_frames=8)


def test_not_a_video_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(VideoError, match="could not be read as a video"):
        _extract(path, tmp_path)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_phone_video_comes_out_upright(tmp_path: Path, rotation: int) -> None:
    video = make_orbit_video(tmp_path / "phone.mp4", n_frames=16, width=72, height=96, rotation=rotation)
    result = _extract(video.path, tmp_path, target_count=4, max_long_side=96, min_frames=4)
    assert (result.width, result.height) == (72, 96)
    first = _load(result)[0]
    truth = SyntheticScene(0).render(video.cameras[result.source_frame_indices[0]])
    assert _psnr(first, truth) > 25
    assert _psnr(first, truth) > _psnr(first, np.ascontiguousarray(truth[::-1, ::-1])) + 5
    assert result.stats["rotation"] == rotation


def test_truncated_file_yields_the_frames_before_the_damage(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    # Index first (as phones and web tools often write): the frames before the cut stay readable.
    video = make_orbit_video(tmp_path / "cut.mp4", n_frames=40, width=96, height=72,
                             container_options={"movflags": "faststart"})
    data = video.path.read_bytes()
    video.path.write_bytes(data[: int(len(data) * 0.6)])
    with caplog.at_level(logging.WARNING, logger="vidscene.pipeline.frames"):
        result = _extract(video.path, tmp_path, target_count=10, min_frames=4)
    assert 4 <= len(result.frame_names) <= 10
    assert 4 <= result.stats["decoded_frames"] < 40
    assert result.stats["truncated"]
    assert any("damage" in r.message for r in caplog.records)


def test_truncated_mp4_without_index_is_refused_clearly(orbit: SyntheticVideo, tmp_path: Path) -> None:
    # The index (moov) is at the end and was cut off: nothing can be located, so nothing is decodable.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(orbit.path.read_bytes()[: int(orbit.path.stat().st_size * 0.6)])
    with pytest.raises(VideoError, match="could not be read as a video"):
        _extract(cut, tmp_path)


def test_truncated_mkv_yields_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Matroska is written progressively (no index needed to read it), so a cut file still demuxes.
    video = make_orbit_video(tmp_path / "cut.mkv", n_frames=40, width=96, height=72)
    data = video.path.read_bytes()
    video.path.write_bytes(data[: int(len(data) * 0.5)])
    with caplog.at_level(logging.WARNING, logger="vidscene.pipeline.frames"):
        result = _extract(video.path, tmp_path, target_count=10, min_frames=4)
    assert 4 <= len(result.frame_names) < 40
    assert result.stats["truncated"]
    assert caplog.records


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "libvpx-vp9"), (".webm", "libvpx"), (".avi", "mpeg4")])
def test_other_containers_and_codecs(tmp_path: Path, suffix: str, codec: str) -> None:
    video = make_orbit_video(tmp_path / f"clip{suffix}", n_frames=16, width=96, height=64, codec=codec)
    result = _extract(video.path, tmp_path, target_count=8)
    assert len(result.frame_names) == 8
    truth = SyntheticScene(0).render(video.cameras[result.source_frame_indices[3]])
    assert _psnr(_load(result)[3], truth) > 22


def test_variable_frame_rate_is_sampled_by_time(tmp_path: Path) -> None:
    # 40 frames in the first second, then 10 frames over the next four seconds.
    times = [i / 40 for i in range(40)] + [1.0 + 0.4 * (i + 1) for i in range(10)]
    video = make_orbit_video(tmp_path / "vfr.mp4", n_frames=50, width=64, height=48, frame_times=times)
    result = _extract(video.path, tmp_path, target_count=10, candidates_per_frame=2)
    kept_times = np.array([video.frame_times[i] for i in result.source_frame_indices])
    # Sampling by index would put 8 of 10 frames in the first second; by time only about two belong there.
    assert (kept_times < 1.0).sum() <= 3
    assert kept_times[-1] > 4.0


def test_cancellation_leaves_no_partial_output(orbit: SyntheticVideo, tmp_path: Path) -> None:
    def cancel(position: int, total: int, message: str = "") -> None:
        if position > 10:
            raise Cancelled

    with pytest.raises(Cancelled):
        extract_frames(orbit.path, tmp_path / "frames", tmp_path / "thumb.jpg", FramesConfig(), cancel)
    assert list(tmp_path.iterdir()) == []


def test_sharpness_orders_blur() -> None:
    rng = np.random.default_rng(0)
    crisp = rng.uniform(0, 255, (64, 64)).astype(np.float32)
    soft = (crisp + np.roll(crisp, 1, 1) + np.roll(crisp, 2, 1) + np.roll(crisp, 3, 1)) / 4
    assert sharpness(crisp) > 3 * sharpness(soft)
    assert sharpness(np.zeros((16, 16), np.float32)) == 0.0


@pytest.mark.slow
def test_long_video_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """10 000 frames: every one is decoded, only candidates are converted, and memory does not grow with length."""
    import tracemalloc

    path = tmp_path / "long.mp4"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    encode_frames(path, lambda i: np.roll(base, i % 128, axis=1), 10_000, 128, 96, fps=30, codec="libx264",
                  codec_options={"preset": "ultrafast"})
    tracemalloc.start()
    try:
        result = _extract(path, tmp_path, target_count=40, max_long_side=128)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.frame_names) == 40
    assert result.stats["decoded_frames"] == 10_000
    assert result.stats["candidates"] == 160
    assert peak < 20 * 2**20  # a few frames' worth, not 10 000 x 37 kB (370 MB)
