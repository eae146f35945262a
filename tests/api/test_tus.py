"""Resumable uploads (tus 1.0) through the app, on SQLite and PostgreSQL: creation with the form's fields
validated up front, HEAD, PATCH in pieces, offset conflicts, locks, limits, termination, completion into a
scene (or a refusal with nothing kept), ownership and expiry."""

from __future__ import annotations

import os
import stat
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from tests.support.api_client import PASSWORD, Api, ApiFactory
from tests.support.scenes import files_under, open_db
from tests.support.uploads import FIELDS, OFFSET_BODY, TUS, create, metadata, patch, scene_count
from vidscene.api.tus import files as tus_files
from vidscene.api.tus import service as tus_service
from vidscene.db.models import TusUpload, utcnow


def test_options_advertise_version_extensions_and_the_servers_limit(api_factory: ApiFactory) -> None:
    api = api_factory(max_upload_bytes=12345)
    r = api.client.options("/user/scene/uploads")
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert r.headers["Tus-Resumable"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) == {"creation", "termination", "expiration"}
    assert r.headers["Tus-Max-Size"] == "12345"


def test_upload_in_pieces_becomes_one_scene(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    created = create(api, auth, len(mp4_bytes))
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    assert url.startswith("/user/scene/uploads/")
    assert created.headers["Upload-Expires"].endswith("GMT")
    part = tus_files.part_path(api.settings.data_dir / "tmp", url.rsplit("/", 1)[1])
    assert stat.S_IMODE(part.stat().st_mode) == 0o600

    head = api.client.head(url, headers={**auth, **TUS})
    assert head.status_code == 200
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("0", str(len(mp4_bytes)))
    assert head.headers["Cache-Control"] == "no-store"

    third = len(mp4_bytes) // 3
    pieces = [mp4_bytes[:third], mp4_bytes[third:2 * third], mp4_bytes[2 * third:]]
    offset = 0
    for index, piece in enumerate(pieces):
        r = patch(api, auth, url, offset, piece)
        assert r.status_code == 204, r.text
        offset += len(piece)
        assert r.headers["Upload-Offset"] == str(offset)
        assert "Upload-Expires" in r.headers
        if index < 2:
            assert "Upload-Scene-Id" not in r.headers
            assert api.enqueued == []
    scene_id = r.headers["Upload-Scene-Id"]
    assert len(api.enqueued) == 1

    status = api.client.get(url, headers=auth)
    assert status.status_code == 200
    assert status.json()["id"] == scene_id and status.json()["offset"] == len(mp4_bytes)
    assert api.client.head(url, headers={**auth, **TUS}).headers["Upload-Scene-Id"] == scene_id
    # The scene is the multipart route's: same fields, same stored video, queued.
    progress = api.client.get(f"/user/scene/progress/{scene_id}", headers=auth).json()
    assert progress["state"] == "queued"
    assert api.client.get(f"/user/scene/name/{scene_id}", headers=auth).json()["name"] == "Garden walk"
    meta = api.client.get(f"/user/scene/metadata/{scene_id}", headers=auth).json()["resources"]
    assert set(meta) == {"splat_cloud", "video"} and set(meta["video"]) == {"100", "200"}
    stored = api.settings.data_dir / "scenes" / scene_id / "upload" / "video.mp4"
    assert stored.read_bytes() == mp4_bytes
    assert not part.exists()
    # A client whose last answer was lost sends the end again: the same scene, not a second one.
    again = patch(api, auth, url, len(mp4_bytes), b"")
    assert again.status_code == 204 and again.headers["Upload-Scene-Id"] == scene_id
    assert scene_count(api) == 1 and len(api.enqueued) == 1


def test_offset_mismatch_is_409_and_changes_nothing(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    assert patch(api, auth, url, 0, mp4_bytes[:100]).status_code == 204
    for offset in (0, 50, 101):
        r = patch(api, auth, url, offset, mp4_bytes[offset:offset + 10])
        assert r.status_code == 409, r.text
        assert "Upload-Offset" in r.json()["error"]
        assert r.headers["Tus-Resumable"] == "1.0.0"
    assert api.client.head(url, headers={**auth, **TUS}).headers["Upload-Offset"] == "100"
    part = tus_files.part_path(api.settings.data_dir / "tmp", url.rsplit("/", 1)[1])
    assert part.read_bytes() == mp4_bytes[:100]


def test_protocol_errors_answer_the_right_status(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    no_version = api.client.head(url, headers=auth)
    assert no_version.status_code == 412 and no_version.headers["Tus-Version"] == "1.0.0"
    wrong_type = api.client.patch(url, content=b"x", headers={**auth, **TUS, "Upload-Offset": "0",
                                                                "Content-Type": "application/octet-stream"})
    assert wrong_type.status_code == 415 and "offset+octet-stream" in wrong_type.json()["error"]
    for bad in ("", "-1", "ten", "1" * 30):
        r = patch(api, auth, url, 0, b"x", **{"Upload-Offset": bad})
        assert r.status_code == 400 and "Upload-Offset" in r.json()["error"], (bad, r.text)
    no_length = api.client.post("/user/scene/uploads", headers={**auth, **TUS, "Upload-Metadata": metadata(**FIELDS)})
    assert no_length.status_code == 400 and no_length.json()["error"] == "Missing header: Upload-Length."
    deferred = api.client.post("/user/scene/uploads", headers={**auth, **TUS, "Upload-Defer-Length": "1",
                                                                "Upload-Metadata": metadata(**FIELDS)})
    assert deferred.status_code == 400
    for bad_meta in ("training_mode", "training_mode !!notbase64", "a b c", "k dmlk,k dmlk"):
        r = api.client.post("/user/scene/uploads", headers={**auth, **TUS, "Upload-Length": "10",
                                                             "Upload-Metadata": bad_meta})
        assert r.status_code == 400, (bad_meta, r.text)
    assert api.client.post("/user/scene/uploads", headers={**TUS, "Upload-Length": "10"}).status_code == 401


BAD_FIELDS = [
    ({"training_mode": "nerf"}, "training_mode"),
    ({"output_types": "splat_cloud,hologram"}, "output_types"),
    ({"total_iterations": "0"}, "total_iterations"),
    ({"save_iterations": "999"}, "save_iterations"),
    ({"preset": "ultra"}, "preset"),
    ({"scene_name": "x" * 201}, "scene_name"),
]


def test_bad_fields_are_refused_at_creation(api: Api, auth: dict[str, str]) -> None:
    for fields, named in BAD_FIELDS:
        r = create(api, auth, 1000, **fields)
        assert r.status_code == 400, (fields, r.text)
        assert named in r.json()["error"]
    assert files_under(api.settings.data_dir / "tmp") == []
    with open_db(api.settings.resolved_database_url) as session:
        assert session.scalar(select(func.count()).select_from(TusUpload)) == 0


def test_a_missing_field_is_refused_at_creation(api: Api, auth: dict[str, str]) -> None:
    pairs = {k: v for k, v in FIELDS.items() if k != "total_iterations"}
    r = api.client.post("/user/scene/uploads", headers={**auth, **TUS, "Upload-Length": "10",
                                                         "Upload-Metadata": metadata(**pairs)})
    assert r.status_code == 400 and r.json()["error"] == "Missing field: total_iterations."


def test_limits_too_large_and_overlong_patch(api_factory: ApiFactory, mp4_bytes: bytes) -> None:
    api = api_factory(max_upload_bytes=len(mp4_bytes))
    auth = api.user()[1]
    too_big = create(api, auth, len(mp4_bytes) + 1)
    assert too_big.status_code == 413 and str(len(mp4_bytes)) in too_big.json()["error"]
    assert files_under(api.settings.data_dir / "tmp") == []

    url = create(api, auth, 100).headers["Location"]
    assert patch(api, auth, url, 0, mp4_bytes[:60]).status_code == 204
    # Announced past the length: refused before reading.
    r = patch(api, auth, url, 60, mp4_bytes[60:101])
    assert r.status_code == 413
    # Not announced (chunked): refused once the stream goes past the length, and nothing of it is kept.
    r = api.client.patch(url, content=iter([mp4_bytes[60:90], mp4_bytes[90:130]]),
                         headers={**auth, **TUS, **OFFSET_BODY, "Upload-Offset": "60"})
    assert r.status_code == 413, r.text
    assert api.client.head(url, headers={**auth, **TUS}).headers["Upload-Offset"] == "60"
    part = tus_files.part_path(api.settings.data_dir / "tmp", url.rsplit("/", 1)[1])
    assert part.stat().st_size == 60
    assert scene_count(api) == 0


def test_a_non_video_is_refused_at_completion_with_nothing_kept(api: Api, auth: dict[str, str],
                                                                tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
    url = create(api, auth, len(png)).headers["Location"]
    assert patch(api, auth, url, 0, png[:1000]).status_code == 204
    r = patch(api, auth, url, 1000, png[1000:])
    assert r.status_code == 415, r.text
    assert r.json()["error"]
    assert "Upload-Scene-Id" not in r.headers
    assert files_under(api.settings.data_dir / "tmp") == []
    assert files_under(api.settings.data_dir / "scenes") == []
    assert scene_count(api) == 0 and api.enqueued == []
    assert api.client.head(url, headers={**auth, **TUS}).status_code == 404
    with open_db(api.settings.resolved_database_url) as session:
        assert session.scalar(select(func.count()).select_from(TusUpload)) == 0


def test_termination_removes_everything(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    assert patch(api, auth, url, 0, mp4_bytes[:500]).status_code == 204
    r = api.client.delete(url, headers={**auth, **TUS})
    assert r.status_code == 204 and r.headers["Tus-Resumable"] == "1.0.0"
    assert files_under(api.settings.data_dir / "tmp") == []
    assert api.client.head(url, headers={**auth, **TUS}).status_code == 404
    assert patch(api, auth, url, 500, mp4_bytes[500:]).status_code == 404
    assert api.client.delete(url, headers={**auth, **TUS}).status_code == 404
    assert scene_count(api) == 0


def test_another_users_upload_is_404(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    other = api.user()[1]
    unknown = "/user/scene/uploads/" + "A" * 22
    for target in (url, unknown):
        assert api.client.head(target, headers={**other, **TUS}).status_code == 404
        assert api.client.get(target, headers=other).json() == {"error": "Upload not found."}
        assert patch(api, other, target, 0, mp4_bytes).status_code == 404
        assert api.client.delete(target, headers={**other, **TUS}).status_code == 404
    assert api.client.head(url, headers={**auth, **TUS}).headers["Upload-Offset"] == "0"


def test_a_second_patch_while_one_appends_is_refused(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    """The lock: while one PATCH holds the file, another on the same upload gets 423 and writes nothing."""
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    upload_id = url.rsplit("/", 1)[1]
    holder = tus_files.PartAppender(tus_files.part_path(api.settings.data_dir / "tmp", upload_id), 0)
    try:
        r = patch(api, auth, url, 0, mp4_bytes)
        assert r.status_code == 423, r.text
    finally:
        holder.close()
    assert api.client.head(url, headers={**auth, **TUS}).headers["Upload-Offset"] == "0"
    assert patch(api, auth, url, 0, mp4_bytes).status_code == 204
    assert scene_count(api) == 1


def test_expired_uploads_answer_410_and_are_swept(api_factory: ApiFactory, mp4_bytes: bytes) -> None:
    api = api_factory(upload_expiry_seconds=1, upload_sweep_seconds=0.2)
    auth = api.user()[1]
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    upload_id = url.rsplit("/", 1)[1]
    assert patch(api, auth, url, 0, mp4_bytes[:100]).status_code == 204
    # Expired, not yet swept: 410. Stop the sweeper's view of time by moving the expiry into the past.
    with open_db(api.settings.resolved_database_url) as session:
        session.execute(update(TusUpload).values(expires_at=utcnow() - timedelta(seconds=5)))
        session.commit()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and files_under(api.settings.data_dir / "tmp"):
        time.sleep(0.1)
    assert files_under(api.settings.data_dir / "tmp") == [], "the API's sweeper removed the bytes"
    assert api.client.head(url, headers={**auth, **TUS}).status_code == 404
    with open_db(api.settings.resolved_database_url) as session:
        assert session.scalar(select(func.count()).select_from(TusUpload).where(TusUpload.id == upload_id)) == 0


def test_expiry_410_before_the_sweep_and_orphans(api_factory: ApiFactory, mp4_bytes: bytes) -> None:
    api = api_factory(upload_sweep_seconds=3600)  # the lifespan sweep ran once at start; no more
    auth = api.user()[1]
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    with open_db(api.settings.resolved_database_url) as session:
        session.execute(update(TusUpload).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    gone = api.client.head(url, headers={**auth, **TUS})
    assert gone.status_code == 410
    assert patch(api, auth, url, 0, mp4_bytes).status_code == 410
    tmp = api.settings.data_dir / "tmp"
    orphan = tus_files.part_path(tmp, "orphan" + "x" * 16)
    orphan.write_bytes(b"left by a crash")
    old = time.time() - 2 * tus_service.ORPHAN_GRACE_SECONDS
    os.utime(orphan, (old, old))
    fresh = tus_files.part_path(tmp, "fresh" + "y" * 17)
    fresh.write_bytes(b"being created by another process")
    context = api.app.state.context
    assert tus_service.sweep(context.unit_of_work, context.storage) == 2
    assert files_under(tmp) == [fresh]


def test_deleting_the_account_removes_its_uploads(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    assert patch(api, auth, url, 0, mp4_bytes[:300]).status_code == 204
    r = api.client.request("DELETE", "/user/account/delete", json={"password": PASSWORD}, headers=auth)
    assert r.status_code == 200, r.text
    assert files_under(api.settings.data_dir / "tmp") == []
    with open_db(api.settings.resolved_database_url) as session:
        assert session.scalar(select(func.count()).select_from(TusUpload)) == 0


def test_an_upload_whose_bytes_all_arrived_before_a_crash_completes_on_an_empty_patch(
        api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    """The server stopped between storing the last byte and making the scene: HEAD says it is all there,
    and a PATCH at the end with no body makes the scene (what the web app sends when GET names none)."""
    url = create(api, auth, len(mp4_bytes)).headers["Location"]
    upload_id = url.rsplit("/", 1)[1]
    tus_files.part_path(api.settings.data_dir / "tmp", upload_id).write_bytes(mp4_bytes)
    with open_db(api.settings.resolved_database_url) as session:
        session.execute(update(TusUpload).values(offset=len(mp4_bytes)))
        session.commit()
    assert api.client.get(url, headers=auth).json()["id"] is None
    r = patch(api, auth, url, len(mp4_bytes), b"")
    assert r.status_code == 204, r.text
    assert api.client.get(url, headers=auth).json()["id"] == r.headers["Upload-Scene-Id"]
    assert scene_count(api) == 1
