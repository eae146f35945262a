"""Scene reads: history, name, progress, metadata, thumbnail, output downloads with ranges, deletion, IDOR."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.api_client import Api
from tests.support.scenes import add_output, open_db, set_job
from vidscene.db.models import Job, Output, utcnow
from vidscene.storage import Storage

MiB = 1024 * 1024


@pytest.fixture
def scene(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> str:
    return api.scene_id(auth, mp4_bytes, output_types="splat_cloud,video", save_iterations="100",
                        total_iterations="200", scene_name="Kitchen / täble")


def test_history_oldest_first_and_per_user(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    ids = [api.scene_id(auth, mp4_bytes) for _ in range(3)]
    _, other = api.user()
    api.scene_id(other, mp4_bytes)
    assert api.client.get("/user/scene/history", headers=auth).json() == {"resources": ids}


def test_name(api: Api, auth: dict[str, str], scene: str) -> None:
    resp = api.client.get(f"/user/scene/name/{scene}", headers=auth)
    assert resp.status_code == 200
    assert resp.json() == {"name": "Kitchen / täble"}


SEED_PROGRESS_KEYS = {"uuid", "status", "error", "message", "processing", "overall_position", "overall_size",
                      "stage", "current_position", "current_size"}


def test_progress_through_the_states(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    first, second, third = (api.scene_id(auth, mp4_bytes) for _ in range(3))

    def progress(scene_id: str) -> dict[str, Any]:
        resp = api.client.get(f"/user/scene/progress/{scene_id}", headers=auth)
        assert resp.status_code == 200
        body: dict[str, Any] = resp.json()
        assert set(body) >= SEED_PROGRESS_KEYS | {"state", "step", "percent", "eta_seconds"}
        return body

    queued = progress(third)
    assert queued["uuid"] == third
    assert (queued["status"], queued["error"]) == (200, 0)
    assert queued["message"] == "Scene progress retrieved successfully"
    # queued is still processing for the seed's clients, which poll until processing is false
    assert (queued["state"], queued["processing"], queued["stage"]) == ("queued", True, "sfm_list")
    assert (queued["overall_position"], queued["overall_size"]) == (2, 3)
    assert queued["percent"] == 0

    set_job(db_url, first, state="processing", stage="sfm", current_position=3, current_size=10)
    body = progress(first)
    assert (body["processing"], body["stage"], body["step"]) == (True, "sfm_list", "sfm")
    assert (body["current_position"], body["current_size"]) == (3, 10)
    assert (body["overall_position"], body["overall_size"]) == (0, 3)
    assert 0 < body["percent"] < 30  # frames and 3/10 of SfM: a small share of a standard scene's time
    in_sfm = body["percent"]

    set_job(db_url, first, stage="train", current_position=1200, current_size=7000, eta_seconds=95)
    body = progress(first)
    assert (body["stage"], body["step"], body["current_position"], body["current_size"]) == (
        "nerf_list", "train", 1200, 7000)
    assert body["eta_seconds"] >= 95  # the rest of training, and the export after it
    assert in_sfm + 10 < body["percent"] < 95  # SfM done and a sixth of training: the biggest share

    set_job(db_url, first, state="done", stage="export", current_position=4, current_size=4,
            finished_at=utcnow())
    body = progress(first)
    assert (body["state"], body["processing"], body["percent"], body["error"]) == ("done", False, 100, 0)
    assert (body["overall_position"], body["overall_size"]) == (0, 2)
    assert progress(second)["overall_position"] == 0
    assert progress(third)["overall_position"] == 1
    assert progress(third)["processing"] is True  # one scene still ahead of it

    set_job(db_url, second, state="failed", stage="sfm", error_code=3,
            message="Structure from motion could not place enough frames.")
    body = progress(second)
    assert (body["state"], body["error"], body["processing"]) == ("failed", 3, False)
    assert body["message"] == "Structure from motion could not place enough frames."
    assert (body["overall_position"], body["overall_size"]) == (0, 1)

    set_job(db_url, third, state="cancelled")
    assert (progress(third)["state"], progress(third)["processing"]) == ("cancelled", False)


def test_progress_orders_by_creation_across_users(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                  db_url: str) -> None:
    mine = api.scene_id(auth, mp4_bytes)
    _, other = api.user()
    theirs = api.scene_id(other, mp4_bytes)
    # make the other user's job older: it is ahead in the global queue
    set_job(db_url, theirs, created_at=utcnow() - timedelta(hours=1))
    body = api.client.get(f"/user/scene/progress/{mine}", headers=auth).json()
    assert (body["overall_position"], body["overall_size"]) == (1, 2)


def test_metadata(api: Api, auth: dict[str, str], scene: str, db_url: str) -> None:
    add_output(api, db_url, scene, "splat_cloud", 100, b"s" * (2 * MiB))
    add_output(api, db_url, scene, "video", 200, b"v" * (MiB + 5))
    add_output(api, db_url, scene, "video", 100, b"x" * 10, write_file=False)  # row without a file yet
    resp = api.client.get(f"/user/scene/metadata/{scene}", headers=auth)
    assert resp.status_code == 200
    body = resp.json()
    assert body["uuid"] == scene
    assert (body["status"], body["error"], body["message"]) == (200, 0, "Scene metadata retrieved successfully")
    missing = {"exists": False, "size": 0, "chunks": 0, "last_chunk_size": 0}
    assert body["resources"] == {
        "splat_cloud": {"100": {"exists": True, "size": 2 * MiB, "chunks": 2, "last_chunk_size": MiB},
                        "200": missing},
        "video": {"100": missing,
                  "200": {"exists": True, "size": MiB + 5, "chunks": 2, "last_chunk_size": 5}},
    }


def test_metadata_chunk_arithmetic() -> None:
    from vidscene.api.scenes.service import resource_info

    for size in (1, 1000, MiB - 1, MiB, MiB + 1, 5 * MiB, 7 * MiB + 3):
        info = resource_info(size)
        assert info.chunks == math.ceil(size / MiB)
        assert info.last_chunk_size == size - (info.chunks - 1) * MiB
        assert 0 < info.last_chunk_size <= MiB
    assert resource_info(0).chunks == 0


def test_thumbnail(api: Api, auth: dict[str, str], scene: str) -> None:
    url = f"/user/scene/thumbnail/{scene}"
    resp = api.client.get(url, headers=auth)
    assert resp.status_code == 404
    assert set(resp.json()) == {"error"}
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 100 + b"\xff\xd9"
    Storage(api.settings.data_dir).scene(scene).thumbnail.write_bytes(jpeg)
    resp = api.client.get(url, headers=auth)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/jpeg"
    assert resp.content == jpeg


def _write_capture_report(api: Api, scene: str) -> dict[str, Any]:
    """What the frames and SfM stages write (``pipeline.capture_check``): a warning and two frames."""
    report = {"verdict": "usable", "stage": "sfm",
              "problems": [{"code": "partial_registration", "severity": "warning", "message": "Only 1 of 2 frames",
                            "frames": [30]}],
              "frames": [{"index": 0, "time_s": 0.0, "sharpness": 1.02, "brightness": 120.5, "registered": True,
                          "moving_fraction": 0.0},
                         {"index": 30, "time_s": 1.0, "sharpness": 0.2, "brightness": 118.0, "registered": False,
                          "moving_fraction": 0.0}],
              "coverage": {"frames": 2, "registered": 1, "models": 1, "points": 500, "arc_deg": 40.0}}
    Storage(api.settings.data_dir).scene(scene).capture_report.write_text(json.dumps(report))
    return report


def test_capture_check(api: Api, auth: dict[str, str], scene: str) -> None:
    url = f"/user/scene/capture/{scene}"
    resp = api.client.get(url, headers=auth)
    assert resp.status_code == 404  # before the frames stage wrote it
    assert "not ready" in resp.json()["error"]
    report = _write_capture_report(api, scene)
    resp = api.client.get(url, headers=auth)
    assert resp.status_code == 200
    assert resp.json() == {"uuid": scene, **report}
    assert api.client.get(url).status_code == 401


def test_output_download_whole_file(api: Api, auth: dict[str, str], scene: str, db_url: str) -> None:
    data = os.urandom(3000)
    add_output(api, db_url, scene, "video", 100, data)
    resp = api.client.get(f"/user/scene/output/video/{scene}", headers=auth)
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["content-type"] == "video/mp4"
    assert resp.headers["content-length"] == "3000"
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    filename = re.search(r'filename="([^"]+)"', disposition)
    assert filename is not None
    assert filename.group(1) == "Kitchen_table-video-100.mp4"


def test_output_latest_and_by_iteration(api: Api, auth: dict[str, str], scene: str, db_url: str) -> None:
    add_output(api, db_url, scene, "splat_cloud", 100, b"a" * 64)
    base = f"/user/scene/output/splat_cloud/{scene}"
    assert api.client.get(base, headers=auth).content == b"a" * 64
    add_output(api, db_url, scene, "splat_cloud", 200, b"b" * 96)
    latest = api.client.get(base, headers=auth)
    assert latest.content == b"b" * 96
    assert latest.headers["content-type"] == "application/octet-stream"
    assert "splat_cloud-200.splat" in latest.headers["content-disposition"]
    assert api.client.get(f"{base}?iteration=100", headers=auth).content == b"a" * 64
    # a row whose file vanished is skipped for "latest"
    Storage(api.settings.data_dir).scene(scene).output_path("splat_cloud", 200).unlink()
    assert api.client.get(base, headers=auth).content == b"a" * 64
    assert api.client.get(f"{base}?iteration=200", headers=auth).status_code == 404


@pytest.mark.parametrize("relpath", ["../../vidscene.db", "/etc/passwd", "outputs/../../../vidscene.db", "outputs"])
def test_output_rows_pointing_outside_the_scene_or_at_a_folder_are_not_served(
        api: Api, auth: dict[str, str], scene: str, db_url: str, relpath: str) -> None:
    with open_db(db_url) as session:
        session.add(Output(scene_id=scene, output_type="video", iteration=100, relpath=relpath, size=1))
        session.commit()
    Storage(api.settings.data_dir).scene(scene).outputs_dir.mkdir(parents=True, exist_ok=True)
    assert api.client.get(f"/user/scene/output/video/{scene}", headers=auth).status_code == 404
    info = api.client.get(f"/user/scene/metadata/{scene}", headers=auth).json()["resources"]["video"]["100"]
    assert info == {"exists": False, "size": 0, "chunks": 0, "last_chunk_size": 0}


@pytest.mark.parametrize(("path", "status"), [
    ("/user/scene/output/hologram/{id}", 400),      # unknown type
    ("/user/scene/output/model/{id}", 404),         # not requested for this scene
    ("/user/scene/output/video/{id}", 404),         # requested, not produced yet
    ("/user/scene/output/video/{id}?iteration=abc", 400),
    ("/user/scene/output/video/{id}?iteration=0", 400),
    ("/user/scene/output/video/{id}?iteration=150", 404),
])
def test_output_errors(api: Api, auth: dict[str, str], scene: str, path: str, status: int) -> None:
    resp = api.client.get(path.format(id=scene), headers=auth)
    assert resp.status_code == status
    assert set(resp.json()) == {"error"}
    assert resp.headers["content-type"] == "application/json"


def test_output_ranges(api: Api, auth: dict[str, str], scene: str, db_url: str) -> None:
    data = os.urandom(10_000)
    add_output(api, db_url, scene, "video", 200, data)
    url = f"/user/scene/output/video/{scene}"

    def get(range_header: str) -> Any:
        return api.client.get(url, headers={**auth, "Range": range_header})

    resp = get("bytes=100-199")
    assert resp.status_code == 206
    assert resp.content == data[100:200]
    assert resp.headers["content-range"] == "bytes 100-199/10000"
    assert resp.headers["content-length"] == "100"

    resp = get("bytes=9990-")
    assert (resp.status_code, resp.content) == (206, data[9990:])
    assert resp.headers["content-range"] == "bytes 9990-9999/10000"

    resp = get("bytes=-25")
    assert (resp.status_code, resp.content) == (206, data[-25:])
    assert resp.headers["content-range"] == "bytes 9975-9999/10000"

    resp = get("bytes=9000-20000")  # end past the file is clamped
    assert (resp.status_code, resp.content) == (206, data[9000:])

    resp = get("bytes=0-9,20-29")
    assert resp.status_code == 206
    assert resp.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert data[0:10] in resp.content
    assert data[20:30] in resp.content
    assert b"Content-Range: bytes 0-9/10000" in resp.content
    assert b"Content-Range: bytes 20-29/10000" in resp.content

    for unsatisfiable in ("bytes=10000-", "bytes=20000-20010", "bytes=-0"):
        resp = get(unsatisfiable)
        assert resp.status_code == 416, unsatisfiable
        assert resp.headers["content-range"] == "bytes */10000"
        assert resp.headers["content-type"] == "application/json"
        assert set(resp.json()) == {"error"}

    resp = get("bytes=50-10")
    assert resp.status_code == 400
    assert set(resp.json()) == {"error"}

    resp = get("items=0-5")  # an unknown unit is ignored: the whole file
    assert (resp.status_code, resp.content) == (200, data)


def test_multi_chunk_download_reassembles_byte_for_byte(api: Api, auth: dict[str, str], scene: str,
                                                        db_url: str) -> None:
    """What the web client does: read chunk counts from /metadata, then fetch 1 MiB Range requests."""
    data = os.urandom(3 * MiB + 12345)
    add_output(api, db_url, scene, "splat_cloud", 200, data)
    meta = api.client.get(f"/user/scene/metadata/{scene}", headers=auth).json()
    info = meta["resources"]["splat_cloud"]["200"]
    assert (info["exists"], info["size"], info["chunks"], info["last_chunk_size"]) == (True, len(data), 4, 12345)
    parts = []
    for index in range(info["chunks"]):
        start = index * MiB
        end = start + (MiB if index < info["chunks"] - 1 else info["last_chunk_size"]) - 1
        resp = api.client.get(f"/user/scene/output/splat_cloud/{scene}?iteration=200",
                              headers={**auth, "Range": f"bytes={start}-{end}"})
        assert resp.status_code == 206
        assert resp.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        parts.append(resp.content)
    assert b"".join(parts) == data


def test_delete_scene(api: Api, auth: dict[str, str], scene: str, db_url: str) -> None:
    add_output(api, db_url, scene, "video", 200, b"v" * 100)
    root = Storage(api.settings.data_dir).scene(scene).root
    assert root.is_dir()
    set_job(db_url, scene, state="processing", stage="train")
    resp = api.client.delete(f"/user/scene/delete/{scene}", headers=auth)
    assert resp.status_code == 200
    assert resp.json() == {"message": "Scene deleted"}
    assert not root.exists()
    with open_db(db_url) as session:
        assert session.scalars(select(Job).where(Job.scene_id == scene)).all() == []
        assert session.scalars(select(Output).where(Output.scene_id == scene)).all() == []
    for path in ("name", "progress", "metadata", "thumbnail"):
        assert api.client.get(f"/user/scene/{path}/{scene}", headers=auth).status_code == 404
    assert api.client.delete(f"/user/scene/delete/{scene}", headers=auth).status_code == 404
    assert api.client.get("/user/scene/history", headers=auth).json() == {"resources": []}


SCENE_ROUTES = [
    ("GET", "/user/scene/name/{id}"),
    ("GET", "/user/scene/progress/{id}"),
    ("GET", "/user/scene/metadata/{id}"),
    ("GET", "/user/scene/thumbnail/{id}"),
    ("GET", "/user/scene/capture/{id}"),
    ("GET", "/user/scene/output/video/{id}"),
    ("GET", "/user/scene/output/video/{id}?iteration=200"),
    ("DELETE", "/user/scene/delete/{id}"),
]


def test_another_users_scene_answers_like_an_unknown_id(api: Api, auth: dict[str, str], scene: str,
                                                        db_url: str) -> None:
    add_output(api, db_url, scene, "video", 200, b"v" * 100)
    Storage(api.settings.data_dir).scene(scene).thumbnail.write_bytes(b"\xff\xd8\xff\xd9")
    _write_capture_report(api, scene)
    _, intruder = api.user()
    unknown = "A" * 22
    for method, template in SCENE_ROUTES:
        theirs = api.client.request(method, template.format(id=scene), headers=intruder)
        missing = api.client.request(method, template.format(id=unknown), headers=intruder)
        assert theirs.status_code == missing.status_code == 404, template
        assert theirs.json() == missing.json() == {"error": "Scene not found."}
        assert theirs.headers.get("content-type") == missing.headers.get("content-type")
        # and without a token it is 401 before anything is looked up
        assert api.client.request(method, template.format(id=scene)).status_code == 401
    assert api.client.get("/user/scene/history", headers=intruder).json() == {"resources": []}
    # the owner still has everything
    assert api.client.get(f"/user/scene/output/video/{scene}", headers=auth).status_code == 200
    assert Storage(api.settings.data_dir).scene(scene).root.is_dir()


@pytest.mark.parametrize("scene_id", ["..", "...", "%2e%2e", "a%2Fb", "x" * 300])
def test_odd_ids_are_404(api: Api, auth: dict[str, str], scene_id: str) -> None:
    resp = api.client.get(f"/user/scene/name/{scene_id}", headers=auth)
    assert resp.status_code == 404
    assert set(resp.json()) == {"error"}
