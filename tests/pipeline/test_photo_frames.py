"""A zip of photos becomes a scene the same way a video does: frames in name order, upright, one shape,
and structure from motion places them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from tests.support.synthetic import SyntheticScene, orbit_cameras
from vidscene.pipeline.capture_check import CaptureReport
from vidscene.pipeline.errors import VideoError
from vidscene.pipeline.presets import preset_config
from vidscene.pipeline.scene import SceneWork, run_frames, run_sfm
from vidscene.storage.local import SceneFiles

W, H, N = 192, 144, 24


def _orbit_photos() -> list[Image.Image]:
    scene = SyntheticScene(0)
    return [Image.fromarray(scene.render(cam, 2)) for cam in orbit_cameras(N, W, H)]


def _encoded(img: Image.Image, kind: str, orientation: int = 1) -> bytes:
    out = io.BytesIO()
    if kind == "HEIF":
        pillow_heif.from_pillow(img).save(out, quality=90)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(out, format=kind, exif=exif.tobytes()) if kind == "JPEG" else img.save(out, format=kind)
    return out.getvalue()


def _archive(path: Path, photos: list[Image.Image]) -> Path:
    """IMG_1..IMG_24 in three formats, stored out of order, with a sidecar and macOS litter to ignore; photo 4
    is stored turned a quarter with an EXIF orientation saying so, as phones do."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("capture.json", "{}")
        archive.writestr("__MACOSX/._IMG_1.jpg", b"\0" * 10)
        for i in reversed(range(N)):
            kind, ext = [("JPEG", "jpg"), ("PNG", "png"), ("HEIF", "heic")][i % 3]
            img, orientation = photos[i], 1
            if i == 3:
                img, orientation = photos[i].transpose(Image.Transpose.ROTATE_90), 6  # "turn 90° clockwise to view"
            archive.writestr(f"shoot/IMG_{i + 1}.{ext}", _encoded(img, kind, orientation))
    return path


def _work(tmp_path: Path, video: Path) -> SceneWork:
    files = SceneFiles(tmp_path / "scene")
    files.create()
    return SceneWork.create(scene_id="p", video=video, files=files, training_mode="gaussian", output_types=["video"],
                            save_iterations=[], total_iterations=10, config=preset_config("preview"))


def test_a_photo_archive_becomes_frames_and_cameras(tmp_path: Path) -> None:
    photos = _orbit_photos()
    work = _work(tmp_path, _archive(tmp_path / "photos.zip", photos))
    run_frames(work)
    frames = sorted(work.files.frames_dir.glob("*.png"))
    assert len(frames) == N
    for i in (0, 1, 2, 3, 10):  # name order (IMG_2 before IMG_10), every format, the turned one upright
        got = np.asarray(Image.open(frames[i]), dtype=np.float32)
        assert got.shape == (H, W, 3)
        assert np.abs(got - np.asarray(photos[i], dtype=np.float32)).mean() < 8.0, i
    report = CaptureReport.read(work.files.capture_report)
    assert report is not None and report.coverage["time_unit"] == "photo"
    assert [f.index for f in report.frames] == list(range(N))
    run_sfm(work)
    report = CaptureReport.read(work.files.capture_report)
    assert report is not None and report.coverage["registered"] >= N - 2


def test_photos_of_another_shape_are_left_out(tmp_path: Path) -> None:
    photos = _orbit_photos()
    photos[5] = photos[5].resize((W, W))  # a square one among 4:3 photos
    work = _work(tmp_path, _archive(tmp_path / "mixed.zip", photos))
    run_frames(work)
    assert len(list(work.files.frames_dir.glob("*.png"))) == N - 1


def test_an_archive_of_too_few_photos_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "few.zip", "w") as archive:
        for i in range(3):
            archive.writestr(f"{i}.jpg", _encoded(_orbit_photos()[i], "JPEG"))
    with pytest.raises(VideoError, match="holds 3 photos"):
        run_frames(_work(tmp_path, tmp_path / "few.zip"))
