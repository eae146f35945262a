"""The S3 store, the stored upload probed by ranged reads, and a stage's staging, on moto's real server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.s3 import S3Server
from tests.support.server import free_port
from tests.support.videos import encode_video
from vidscene.api.upload import remove_stale_uploads
from vidscene.probe import probe_video
from vidscene.storage import Storage, StoreUnavailableError, scene_key
from vidscene.storage.objects import StoredUpload
from vidscene.storage.s3 import PART_BYTES, S3Store
from vidscene.storage.staging import StagedScene, StagePlan

# Slow (each moto round trip is tens of ms, a part 8 MiB): the default run's s3 checks are the e2e pipeline
# (tests/e2e/test_s3.py) and the outage answers (test_s3_api.py), within the CI budget.
pytestmark = pytest.mark.slow


def test_objects_round_trip_and_ranged_reads(store: S3Store, s3_server: S3Server, bucket: str,
                                             tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    source = tmp_path / "blob"
    source.write_bytes(data)
    store.put_file("scenes/a/outputs/x/1.bin", source)
    store.put_bytes("scenes/a/metrics/1.json", b'{"psnr": 20}')
    info = store.stat("scenes/a/outputs/x/1.bin")
    assert info is not None and info.size == len(data)
    assert store.stat("scenes/a/missing") is None and store.read_bytes("scenes/a/missing") is None
    assert store.read_range("scenes/a/outputs/x/1.bin", 1000, 24) == data[1000:1024]
    assert sorted(store.listing("scenes/a/")) == ["metrics/1.json", "outputs/x/1.bin"]
    storage = Storage(tmp_path / "data", objects=store)
    assert storage.read_metrics("a") == {1: {"psnr": 20}}
    found = storage.open_file("a", "outputs/x/1.bin")
    assert found is not None and found.size == len(data) and found.read_at(5, 3) == data[5:8]
    assert storage.open_file("a", "../b/outputs/x/1.bin") is None
    storage.remove_scenes(["a"])
    assert s3_server.keys(bucket) == []


def test_multipart_upload_is_whole_or_nothing(store: S3Store, s3_server: S3Server, bucket: str,
                                              tmp_path: Path) -> None:
    sending = store.start_upload("tmp/upload-1.part")
    sending.write(b"x" * (PART_BYTES + 10))
    assert s3_server.keys(bucket) == []  # invisible until complete
    sending.abort()
    assert s3_server.keys(bucket) == []
    assert s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    sending = store.start_upload("tmp/upload-2.part")
    sending.write(b"y" * (PART_BYTES + 10))
    sending.complete()
    info = store.stat("tmp/upload-2.part")
    assert info is not None and info.size == PART_BYTES + 10
    # left by an API that died before the scene was made: removed at the next start once old enough
    assert remove_stale_uploads(tmp_path, store=store) == 0
    assert remove_stale_uploads(tmp_path, older_than_s=-60, store=store) == 1
    assert s3_server.keys(bucket) == []


def test_multipart_upload_keeps_every_byte_across_part_boundaries(store: S3Store, s3_server: S3Server,
                                                                    bucket: str) -> None:
    """Pieces of odd sizes straddle the parts (the upload copies them into one reused part buffer); a
    caller's bytearray changed after ``write`` returns changes nothing sent."""
    data = bytes(range(251)) * (2 * PART_BYTES // 251 + 2)  # two full parts and a tail, no period of 8 MiB
    sending = store.start_upload("tmp/upload-3.part")
    offset, sizes = 0, [1, PART_BYTES - 2, 3, 65_537, PART_BYTES]
    for size in sizes:
        sending.write(memoryview(data)[offset:offset + size])
        offset += size
    reused = bytearray(data[offset:])
    sending.write(reused)
    reused[:] = b"\0" * len(reused)
    sending.complete()
    assert store.read_range("tmp/upload-3.part", 0, len(data)) == data
    head = s3_server.client().head_object(Bucket=bucket, Key=store._key("tmp/upload-3.part"))
    assert head["ETag"].strip('"').endswith("-3")  # two parts of PART_BYTES and the tail


def test_a_stored_upload_is_probed_by_ranged_reads(store: S3Store, tmp_path: Path) -> None:
    video = encode_video(tmp_path / "clip.mp4")
    store.put_file("tmp/upload-v.part", video)
    info = probe_video(StoredUpload(store, "tmp/upload-v.part", video.stat().st_size))
    assert (info.width, info.height, info.codec) == (64, 48, "h264")


def test_staging_fetches_inputs_and_mirrors_results(store: S3Store, s3_server: S3Server, bucket: str,
                                                    tmp_path: Path) -> None:
    """A half-sent earlier run's results are never fetched for the same stage, and are replaced (the stale
    ones deleted) when the stage finishes; files being written (``.part``) never reach the store."""
    store.put_bytes(scene_key("s", "frames/frame_00000.png"), b"frame")
    store.put_bytes(scene_key("s", "sfm/stale-from-a-killed-run"), b"old")
    plan = StagePlan(fetch=("frames/",), mirror=("sfm/",))
    staged = StagedScene(store, "s", tmp_path / "scratch" / "s", plan)
    staged.fetch()
    root = staged.files.root
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["frames/frame_00000.png"]
    (root / "sfm").mkdir()
    (root / "sfm" / "cameras.json").write_text("{}")
    (root / "sfm" / "points.part.npz").write_bytes(b"half")
    staged.finish()
    staged.remove()
    assert s3_server.keys(bucket, "pre/scenes/s/") == ["pre/scenes/s/frames/frame_00000.png",
                                                       "pre/scenes/s/sfm/cameras.json"]
    assert not root.exists()


def test_a_store_that_is_down_is_a_clear_error_at_once(tmp_path: Path, s3_env: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    down = S3Store("s3://some-bucket/p")
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="s3://some-bucket/p unreachable"):
        down.check()
    with pytest.raises(StoreUnavailableError):
        Storage(tmp_path, objects=down).open_file("a", "thumbnail.jpg")
    assert time.monotonic() - started < 30
