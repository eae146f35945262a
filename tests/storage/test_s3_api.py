"""The API on ``s3://``, in process: an upload streamed into the bucket with no copy on the API's disk,
downloads answered from the store (ranges, presigned redirects), and a store that goes down answered 503."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import uploads
from tests.support.api_client import PASSWORD, Api, api_over_store, make_settings
from tests.support.s3 import S3Server, running_s3_server
from tests.support.videos import encode_video
from vidscene.api import create_app
from vidscene.storage import StoreUnavailableError, open_storage, scene_key


@pytest.fixture
def private_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A server of this test's own, which it may stop."""
    with running_s3_server(tmp_path / "moto.log") as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        yield server




@pytest.mark.slow  # the default run's s3 budget goes to the e2e pipeline and the outage answers
def test_upload_goes_to_the_bucket_and_downloads_come_from_it(s3_api: Api, s3_server: S3Server, bucket: str,
                                                               tmp_path: Path) -> None:
    _, auth = s3_api.user()
    video = encode_video(tmp_path / "clip.mp4").read_bytes()
    scene_id = s3_api.scene_id(auth, video)
    assert s3_server.keys(bucket) == [f"p/scenes/{scene_id}/upload/video.mp4"]  # the temporary object is gone
    data_dir = s3_api.settings.data_dir
    assert [p for p in data_dir.rglob("*") if p.is_file() and p.suffix != ".db"] == []  # nothing on disk
    assert s3_api.client.get(f"/user/scene/thumbnail/{scene_id}", headers=auth).status_code == 404
    storage = open_storage(data_dir, f"s3://{bucket}/p")
    assert storage.objects is not None
    storage.objects.put_bytes(scene_key(scene_id, "thumbnail.jpg"), b"\xff\xd8\xff" + bytes(997))
    thumb = s3_api.client.get(f"/user/scene/thumbnail/{scene_id}", headers={**auth, "Range": "bytes=10-19"})
    assert thumb.status_code == 206 and thumb.headers["content-range"] == "bytes 10-19/1000"
    big = bytes(range(256)) * (10 * 1024 + 7)  # 2.5 MiB and a bit: one streamed GET, sent 1 MiB at a time
    storage.objects.put_bytes(scene_key(scene_id, "thumbnail.jpg"), big)
    whole = s3_api.client.get(f"/user/scene/thumbnail/{scene_id}", headers=auth)
    assert whole.status_code == 200 and whole.content == big
    refused = s3_api.new_scene(auth, b"%PDF-1.7" * 1000)
    assert refused.status_code == 415, refused.text
    assert s3_server.keys(bucket) == [f"p/scenes/{scene_id}/thumbnail.jpg", f"p/scenes/{scene_id}/upload/video.mp4"]
    assert s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    gone = s3_api.client.request("DELETE", "/user/account/delete", json={"password": PASSWORD}, headers=auth)
    assert gone.status_code == 200, gone.text
    assert s3_server.keys(bucket) == []  # the account's scenes, every object of them


@pytest.mark.slow  # the default run's s3 budget goes to the e2e pipeline and the outage answers
def test_a_resumable_upload_is_sent_to_the_bucket_when_complete(s3_api: Api, s3_server: S3Server, bucket: str,
                                                                 tmp_path: Path) -> None:
    _, auth = s3_api.user()
    video = encode_video(tmp_path / "clip.mp4").read_bytes()
    created = uploads.create(s3_api, auth, len(video))
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    half = len(video) // 2
    assert uploads.patch(s3_api, auth, url, 0, video[:half]).status_code == 204
    assert s3_server.keys(bucket) == []  # spooled on the API host until complete (README: why)
    assert uploads.patch(s3_api, auth, url, half, video[half:]).status_code == 204
    [key] = s3_server.keys(bucket)
    assert key.startswith("p/scenes/") and key.endswith("/upload/video.mp4")
    assert list(s3_api.settings.data_dir.glob("tmp/*")) == []


@pytest.mark.slow  # the default run's s3 budget goes to the e2e pipeline and the outage answers
def test_presigned_downloads_redirect(tmp_path: Path, s3_server: S3Server, bucket: str) -> None:
    for api in api_over_store(tmp_path, f"s3://{bucket}/p", s3_presigned_downloads=True, s3_presign_seconds=60):
        _, auth = api.user()
        scene_id = api.scene_id(auth, encode_video(tmp_path / "clip.mp4").read_bytes())
        storage = open_storage(api.settings.data_dir, f"s3://{bucket}/p")
        assert storage.objects is not None
        storage.objects.put_bytes(scene_key(scene_id, "thumbnail.jpg"), b"jpeg bytes")
        answer = api.client.get(f"/user/scene/thumbnail/{scene_id}", headers=auth, follow_redirects=False)
        assert answer.status_code == 307 and "X-Amz-Expires=60" in answer.headers["location"]
        fetched = httpx.get(answer.headers["location"], headers={"Range": "bytes=0-3"})
        assert fetched.status_code == 206 and fetched.content == b"jpeg"


def test_a_store_that_goes_down_answers_503(tmp_path: Path, private_s3: S3Server) -> None:
    bucket = private_s3.new_bucket()
    for api in api_over_store(tmp_path, f"s3://{bucket}/p"):
        _, auth = api.user()
        scene_id = api.scene_id(auth, encode_video(tmp_path / "clip.mp4").read_bytes())
        private_s3.stop()
        for answer in (api.client.get(f"/user/scene/metadata/{scene_id}", headers=auth),
                       api.client.get(f"/user/scene/thumbnail/{scene_id}", headers=auth),
                       api.new_scene(auth, b"0" * 5000)):
            assert answer.status_code == 503, answer.text
            assert "storage is unavailable" in answer.json()["error"]
        assert api.client.get("/health").status_code == 200  # the API itself is up


def test_start_up_refused_when_the_bucket_is_missing(tmp_path: Path, s3_env: dict[str, str]) -> None:
    settings = make_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'db'}", storage_url="s3://no-such-bucket/p")
    with pytest.raises(StoreUnavailableError, match="no-such-bucket"):
        create_app(settings, enqueue=None)
