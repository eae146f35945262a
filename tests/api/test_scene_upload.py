"""``POST /user/scene/new``: streaming upload, probing by content, field validation, limits, hand-off."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.api_client import Api, ApiFactory, TestClient
from tests.support.scenes import files_under, open_db
from tests.support.uploads import BOUNDARY, big_file_then_fields, form_part, stream_upload
from vidscene.api import upload as upload_module
from vidscene.db.models import Job, Scene
from vidscene.storage import Storage


def test_upload_creates_scene_and_job(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    resp = api.new_scene(auth, mp4_bytes, scene_name="  My room  ", output_types=" video , splat_cloud,video ,",
                         save_iterations="150, 50,150", total_iterations="200")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["message"] == "Video received and processing scene. Check back later for updates."
    scene_id = body["id"]
    assert len(scene_id) >= 22
    assert all(c.isalnum() or c in "-_" for c in scene_id)

    with open_db(db_url) as session:
        scene = session.get(Scene, scene_id)
        assert scene is not None
        job = session.scalar(select(Job).where(Job.scene_id == scene_id))
        assert job is not None
        assert (scene.name, scene.training_mode) == ("My room", "gaussian")
        assert scene.output_types == ["video", "splat_cloud"]
        assert scene.save_iterations == [50, 150, 200]
        assert scene.total_iterations == 200
        assert scene.preset == api.settings.default_preset
        assert scene.video_info["codec"] == "h264"
        assert scene.video_info["width"] == 64
        assert job.state == "queued"
        stored = Storage(api.settings.data_dir).scene(scene_id).upload_dir / scene.video_filename
        assert stored.read_bytes() == mp4_bytes
        assert api.enqueued == [job.id]
    # nothing left in the temporary folder
    assert list((api.settings.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize(("fixture", "filename"), [("mkv_bytes", "clip.mkv"), ("webm_bytes", "clip.webm"),
                                                   ("mp4_bytes", "notes.txt"), ("mp4_bytes", "noextension")])
def test_any_decodable_video_is_accepted_whatever_its_name(api: Api, auth: dict[str, str],
                                                           request: pytest.FixtureRequest, fixture: str,
                                                           filename: str) -> None:
    video: bytes = request.getfixturevalue(fixture)
    resp = api.new_scene(auth, video, filename=filename)
    assert resp.status_code == 202, resp.text


def test_default_name_and_tensorf(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    scene_id = api.scene_id(auth, mp4_bytes, training_mode="tensorf", output_types="video,model,point_cloud")
    assert api.client.get(f"/user/scene/name/{scene_id}", headers=auth).json() == {"name": "Untitled Scene"}


@pytest.mark.parametrize(("fixture", "filename"), [("empty", "clip.mp4"), ("text", "clip.mp4"),
                                                   ("garbage", "clip.mp4"), ("wav_bytes", "clip.wav"),
                                                   ("truncated", "clip.mp4")])
def test_non_videos_are_415_and_leave_nothing(api: Api, auth: dict[str, str], request: pytest.FixtureRequest,
                                              mp4_bytes: bytes, fixture: str, filename: str, db_url: str) -> None:
    contents = {"empty": b"", "text": b"hello, this is a text file\n" * 40,
                "garbage": bytes(range(256)) * 64, "truncated": mp4_bytes[:200]}
    data = contents[fixture] if fixture in contents else request.getfixturevalue(fixture)
    resp = api.new_scene(auth, data, filename=filename)
    assert resp.status_code == 415, resp.text
    assert set(resp.json()) == {"error"}
    assert files_under(api.settings.data_dir) == []
    with open_db(db_url) as session:
        assert session.scalars(select(Scene)).all() == []
    assert api.enqueued == []


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"training_mode": None}, "training_mode"),
    ({"training_mode": "nerf"}, "nerf"),
    ({"output_types": None}, "output_types"),
    ({"output_types": "splat_cloud,hologram"}, "hologram"),
    ({"output_types": " , "}, "output_types"),
    ({"training_mode": "tensorf", "output_types": "video,splat_cloud"}, "training_mode=gaussian"),
    ({"total_iterations": None}, "total_iterations"),
    ({"total_iterations": "abc"}, "total_iterations"),
    ({"total_iterations": "0"}, "total_iterations"),
    ({"total_iterations": "30001"}, "total_iterations"),
    ({"total_iterations": "1e3"}, "total_iterations"),
    ({"save_iterations": None}, "save_iterations"),
    ({"save_iterations": "100,abc"}, "save_iterations"),
    ({"save_iterations": "300"}, "save_iterations"),
    ({"save_iterations": "0"}, "save_iterations"),
    ({"save_iterations": "-5"}, "save_iterations"),
    ({"scene_name": "n" * 201}, "scene_name"),
])
def test_bad_fields_are_400_naming_the_field(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                              fields: dict[str, str | None], fragment: str) -> None:
    data: dict[str, str] = {"training_mode": "gaussian", "output_types": "splat_cloud,video",
                            "save_iterations": "100", "total_iterations": "200"}
    for key, value in fields.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    resp = api.client.post("/user/scene/new", headers=auth, data=data,
                           files={"file": ("clip.mp4", mp4_bytes, "video/mp4")})
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]
    assert files_under(api.settings.data_dir) == []


def test_limits_of_fields_are_accepted(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    scene_id = api.scene_id(auth, mp4_bytes, total_iterations="30000", save_iterations="1,30000",
                            scene_name="n" * 200, output_types="splat_cloud,point_cloud,video,model")
    assert api.client.get(f"/user/scene/name/{scene_id}", headers=auth).json() == {"name": "n" * 200}


def test_file_after_fields_and_fields_after_file(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    boundary = "vidsceneboundary42"

    def part(name: str, value: bytes, filename: str | None = None) -> bytes:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        return f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"

    fields = [part("training_mode", b"gaussian"), part("output_types", b"video"),
              part("save_iterations", b"10"), part("total_iterations", b"20")]
    file_part = part("file", mp4_bytes, "v.mp4")
    for parts in ([file_part, *fields], [*fields[:2], file_part, *fields[2:]]):
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        resp = api.client.post("/user/scene/new", content=body,
                               headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert resp.status_code == 202, resp.text


@pytest.mark.parametrize(("content", "content_type", "fragment"), [
    (b'{"training_mode": "gaussian"}', "application/json", "multipart"),
    (b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nval", "multipart/form-data; boundary=b",
     "incomplete"),
    (b"", "multipart/form-data; boundary=b", "incomplete"),
    (b"--b\r\nContent-Disposition: form-data; name=\"training_mode\"\r\n\r\ngaussian\r\n--b--\r\n",
     "multipart/form-data; boundary=b", "file"),
])
def test_malformed_multipart(api: Api, auth: dict[str, str], content: bytes, content_type: str,
                             fragment: str) -> None:
    resp = api.client.post("/user/scene/new", content=content, headers={**auth, "Content-Type": content_type})
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"].lower()
    assert files_under(api.settings.data_dir) == []


def test_upload_needs_a_token(api: Api, mp4_bytes: bytes) -> None:
    resp = api.new_scene({}, mp4_bytes)
    assert resp.status_code == 401
    assert files_under(api.settings.data_dir) == []


def test_over_limit_upload_is_413_streamed(api_factory: ApiFactory, mp4_bytes: bytes) -> None:
    api = api_factory(max_upload_bytes=len(mp4_bytes) - 1)
    _, auth = api.user()
    resp = api.new_scene(auth, mp4_bytes)
    assert resp.status_code == 413
    assert "limit" in resp.json()["error"]
    assert files_under(api.settings.data_dir) == []
    # exactly at the limit is fine
    api2 = api_factory(max_upload_bytes=len(mp4_bytes))
    _, auth2 = api2.user()
    assert api2.new_scene(auth2, mp4_bytes).status_code == 202


def test_over_limit_upload_is_413_chunked_without_length(api_factory: ApiFactory) -> None:
    api = api_factory(max_upload_bytes=100_000)
    _, auth = api.user()
    boundary = "chunkedboundary"

    def body() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n"
               .encode())
        for _ in range(40):
            yield b"\0" * 8192
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = api.client.post("/user/scene/new", content=body(),
                           headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 413
    assert files_under(api.settings.data_dir) == []


def test_announced_length_over_limit_is_413_up_front(api_factory: ApiFactory) -> None:
    api = api_factory(max_upload_bytes=1000)
    _, auth = api.user()
    big = b"\0" * (upload_module.FORM_OVERHEAD_BYTES + 2000)
    resp = api.new_scene(auth, big)
    assert resp.status_code == 413
    assert files_under(api.settings.data_dir) == []


class _FullDisk:
    """A temporary file whose writes fail like a full disk (ENOSPC), to drive the real error mapping."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.name = real.name

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self.real.close()


def test_disk_full_while_writing_is_507(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = upload_module.open_temp_file
    monkeypatch.setattr(upload_module, "open_temp_file", lambda tmp_dir: _FullDisk(real_open(tmp_dir)))
    resp = api.new_scene(auth, mp4_bytes)
    assert resp.status_code == 507
    assert set(resp.json()) == {"error"}
    assert files_under(api.settings.data_dir) == []


def test_low_free_space_is_507_before_reading(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Storage, "free_bytes", lambda self: upload_module.MIN_FREE_BYTES + 10)
    resp = api.new_scene(auth, mp4_bytes)
    assert resp.status_code == 507
    assert files_under(api.settings.data_dir) == []


def test_enqueue_runs_after_commit(api_factory: ApiFactory, mp4_bytes: bytes, db_url: str) -> None:
    seen: list[tuple[int, str]] = []

    def enqueue(job_id: int) -> None:
        # a separate connection (as a worker would have) must already see the committed job
        with open_db(db_url) as session:
            job = session.get(Job, job_id)
            assert job is not None
            seen.append((job_id, job.state))

    api = api_factory(enqueue=enqueue)
    _, auth = api.user()
    api.scene_id(auth, mp4_bytes)
    assert len(seen) == 1
    assert seen[0][1] == "queued"
    assert api.app.state.context.enqueue is enqueue


def test_enqueue_failure_keeps_the_queued_job(api_factory: ApiFactory, mp4_bytes: bytes, db_url: str) -> None:
    def broken(job_id: int) -> None:
        raise ConnectionError("broker down")

    api = api_factory(enqueue=broken)
    _, auth = api.user()
    scene_id = api.scene_id(auth, mp4_bytes)
    with open_db(db_url) as session:
        job = session.scalar(select(Job).where(Job.scene_id == scene_id))
        assert job is not None
        assert job.state == "queued"


def test_failed_database_insert_removes_the_files(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                  monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    from vidscene.api.scenes import repository

    # a naive timestamp makes the insert itself fail, after the video was moved into the scene folder
    monkeypatch.setattr(repository, "utcnow", lambda: datetime(2020, 1, 1))
    resp = api.new_scene(auth, mp4_bytes)
    assert resp.status_code == 500
    assert resp.json() == {"error": "Internal server error."}
    assert files_under(api.settings.data_dir) == []
    assert list((api.settings.data_dir / "scenes").iterdir()) == []
    with open_db(db_url) as session:
        assert session.scalars(select(Scene)).all() == []


def test_stale_temporary_uploads_are_removed_at_startup(api_factory: ApiFactory, tmp_path: Path) -> None:
    api = api_factory()
    tmp_dir = api.settings.data_dir / "tmp"
    stale = tmp_dir / f"{upload_module.TEMP_PREFIX}old{upload_module.TEMP_SUFFIX}"
    fresh = tmp_dir / f"{upload_module.TEMP_PREFIX}new{upload_module.TEMP_SUFFIX}"
    other = tmp_dir / "frames-work.part"
    for path in (stale, fresh, other):
        path.write_bytes(b"x")
    old = time.time() - upload_module.STALE_UPLOAD_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    api.client.__exit__(None, None, None)
    with TestClient(api.app):
        pass
    assert sorted(p.name for p in tmp_dir.iterdir()) == sorted([fresh.name, other.name])


# ---- early refusal: answered while the client still holds most of the body ------------------------------

@pytest.mark.parametrize(("before", "fragment"), [
    ({"training_mode": "bogus"}, "Invalid training_mode"),
    ({"training_mode": "tensorf", "output_types": "splat_cloud"}, "Invalid output_types"),
    ({"output_types": "hologram"}, "Invalid output_types"),
    ({"total_iterations": "0"}, "Invalid total_iterations"),
    ({"save_iterations": "100,abc"}, "Invalid save_iterations"),
    ({"total_iterations": "200", "save_iterations": "300"}, "Invalid save_iterations"),
    ({"preset": "ultra"}, "Invalid preset"),
    ({"scene_name": "n" * 201}, "Invalid scene_name"),
])
def test_a_field_wrong_before_the_file_is_refused_when_the_file_begins(
        api: Api, auth: dict[str, str], before: dict[str, str], fragment: str) -> None:
    """The other fields come after a 'large' file: the 400 must not wait for them (nor for the file)."""
    after = {key: value for key, value in {"training_mode": "gaussian", "output_types": "video",
                                           "total_iterations": "200", "save_iterations": "100"}.items()
             if key not in before}
    body, total = big_file_then_fields(before, after, 32 * 1024 * 1024)
    answer = stream_upload(api, auth, "/user/scene/new", body, total)
    assert answer.status == 400, answer.body
    assert fragment in answer.error
    assert answer.read_before_answer < 256 * 1024, answer.read_before_answer
    assert files_under(api.settings.data_dir / "tmp") == []


def test_fields_before_the_file_that_are_right_so_far_wait_for_the_rest(api: Api, auth: dict[str, str],
                                                                        mp4_bytes: bytes) -> None:
    """save_iterations=300 is only wrong once total_iterations=200 follows the file: judged at the end."""
    for before, after, expected in [({"save_iterations": "300"}, {"total_iterations": "200"}, 400),
                                    ({"save_iterations": "300"}, {"total_iterations": "400"}, 202)]:
        fields = {"training_mode": "gaussian", "output_types": "video", **before}
        body = (b"".join(form_part(k, v.encode()) for k, v in fields.items())
                + form_part("file", mp4_bytes, "clip.mp4")
                + b"".join(form_part(k, v.encode()) for k, v in after.items()) + f"--{BOUNDARY}--\r\n".encode())
        resp = api.client.post("/user/scene/new", content=body,
                               headers={**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
        assert resp.status_code == expected, resp.text
