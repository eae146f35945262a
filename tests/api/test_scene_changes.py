"""Choosing a preset, renaming a scene, and trying a scene again with other settings (owner only)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.api_client import Api
from tests.support.scenes import add_output, open_db, set_job
from vidscene.db.models import Job, Output, Scene
from vidscene.storage import Storage

RETRY = {"training_mode": "gaussian", "output_types": "splat_cloud,model", "total_iterations": "300",
         "save_iterations": "100"}


def _progress(api: Api, auth: dict[str, str], scene_id: str) -> dict[str, Any]:
    resp = api.client.get(f"/user/scene/progress/{scene_id}", headers=auth)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# ---- preset ---------------------------------------------------------------------------------------------


def test_preset_is_stored_and_reported(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    chosen = api.scene_id(auth, mp4_bytes, preset=" standard ")
    default = api.scene_id(auth, mp4_bytes)
    body = _progress(api, auth, chosen)
    assert body["preset"] == "standard"
    assert body["created_at"] and body["started_at"] is None and body["finished_at"] is None
    assert _progress(api, auth, default)["preset"] == api.settings.default_preset
    with open_db(db_url) as session:
        scene = session.get(Scene, chosen)
        assert scene is not None and scene.preset == "standard"


def test_the_server_default_preset_applies(api_factory: Any, mp4_bytes: bytes) -> None:
    api = api_factory(default_preset="quality")
    _, auth = api.user()
    assert _progress(api, auth, api.scene_id(auth, mp4_bytes))["preset"] == "quality"


@pytest.mark.parametrize("preset", ["ultra", "PREVIEW", "x" * 5000])
def test_unknown_preset_is_400_naming_the_field(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                preset: str) -> None:
    resp = api.new_scene(auth, mp4_bytes, preset=preset)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("Invalid preset:")
    assert len(resp.json()["error"]) < 200


# ---- rename ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_rename(api: Api, auth: dict[str, str], mp4_bytes: bytes, encoding: str) -> None:
    scene = api.scene_id(auth, mp4_bytes, scene_name="before")
    body = {"name": "  Kitchen, take 2  "}
    kwargs: dict[str, Any] = {"json": body} if encoding == "json" else {"data": body}
    resp = api.client.patch(f"/user/scene/name/{scene}", headers=auth, **kwargs)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"name": "Kitchen, take 2"}
    assert api.client.get(f"/user/scene/name/{scene}", headers=auth).json() == {"name": "Kitchen, take 2"}


@pytest.mark.parametrize(("body", "fragment"), [
    ({"name": "   "}, "Invalid name"), ({"name": "x" * 201}, "Invalid name"), ({}, "Missing field: name"),
    ({"name": 5}, "Invalid name")])
def test_rename_validation(api: Api, auth: dict[str, str], mp4_bytes: bytes, body: dict[str, Any],
                           fragment: str) -> None:
    scene = api.scene_id(auth, mp4_bytes, scene_name="kept")
    resp = api.client.patch(f"/user/scene/name/{scene}", headers=auth, json=body)
    assert resp.status_code == 400
    assert fragment in resp.json()["error"]
    assert api.client.get(f"/user/scene/name/{scene}", headers=auth).json() == {"name": "kept"}


def test_rename_is_owner_only(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    scene = api.scene_id(auth, mp4_bytes, scene_name="mine")
    _, other = api.user()
    for headers in (other, auth):
        target = scene if headers is other else "nope"
        resp = api.client.patch(f"/user/scene/name/{target}", headers=headers, json={"name": "theirs"})
        assert resp.status_code == 404
        assert resp.json() == {"error": "Scene not found."}
    assert api.client.patch(f"/user/scene/name/{scene}", json={"name": "x"}).status_code == 401
    assert api.client.get(f"/user/scene/name/{scene}", headers=auth).json() == {"name": "mine"}


# ---- retry ----------------------------------------------------------------------------------------------


def _finish(api: Api, db_url: str, scene: str, *, state: str, stage_done: str | None) -> None:
    set_job(db_url, scene, state=state, stage_done=stage_done, stage=stage_done, error_code=3 if state == "failed"
            else 0, message="Structure from motion could not place enough frames." if state == "failed" else "")
    files = Storage(api.settings.data_dir).scene(scene)
    for folder in (files.frames_dir, files.sfm_dir, files.train_dir):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result").write_bytes(b"x")
    add_output(api, db_url, scene, "splat_cloud", 200, b"old")


def test_retry_of_a_failed_scene_starts_over_with_the_new_settings(api: Api, auth: dict[str, str],
                                                                    mp4_bytes: bytes, db_url: str) -> None:
    scene = api.scene_id(auth, mp4_bytes, scene_name="hall")
    _finish(api, db_url, scene, state="failed", stage_done="frames")
    api.enqueued.clear()
    resp = api.client.post(f"/user/scene/retry/{scene}", headers=auth, data={**RETRY, "preset": "standard"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["id"] == scene
    body = _progress(api, auth, scene)
    assert (body["state"], body["error"], body["processing"], body["preset"]) == ("queued", 0, True, "standard")
    files = Storage(api.settings.data_dir).scene(scene)
    assert not files.frames_dir.exists() and not files.sfm_dir.exists() and not files.train_dir.exists()
    assert (files.upload_dir).is_dir()
    with open_db(db_url) as session:
        row = session.scalar(select(Scene).where(Scene.id == scene))
        job = session.scalar(select(Job).where(Job.scene_id == scene))
        assert row is not None and job is not None
        assert (row.name, row.output_types, row.save_iterations, row.total_iterations) == (
            "hall", ["splat_cloud", "model"], [100, 300], 300)
        assert job.stage_done is None and job.attempts == 0
        assert session.scalars(select(Output).where(Output.scene_id == scene)).all() == []
        assert api.enqueued == [job.id]
    meta = api.client.get(f"/user/scene/metadata/{scene}", headers=auth).json()
    assert set(meta["resources"]) == {"splat_cloud", "model"}
    assert all(not e["exists"] for entries in meta["resources"].values() for e in entries.values())


def test_retry_with_the_same_preset_keeps_the_camera_poses(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                           db_url: str) -> None:
    scene = api.scene_id(auth, mp4_bytes)
    _finish(api, db_url, scene, state="done", stage_done="export")
    resp = api.client.post(f"/user/scene/retry/{scene}", headers=auth, json={**RETRY, "total_iterations": 400,
                                                                             "scene_name": "longer"})
    assert resp.status_code == 202, resp.text
    files = Storage(api.settings.data_dir).scene(scene)
    assert files.sfm_dir.is_dir() and files.frames_dir.is_dir()
    assert not files.train_dir.exists() and not files.outputs_dir.exists()
    with open_db(db_url) as session:
        job = session.scalar(select(Job).where(Job.scene_id == scene))
        assert job is not None and (job.state, job.stage_done, job.stage) == ("queued", "sfm", "train")
    assert api.client.get(f"/user/scene/name/{scene}", headers=auth).json() == {"name": "longer"}


def test_retry_refuses_a_scene_still_processing_and_bad_fields(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                               db_url: str) -> None:
    scene = api.scene_id(auth, mp4_bytes)
    resp = api.client.post(f"/user/scene/retry/{scene}", headers=auth, data=RETRY)
    assert resp.status_code == 409
    assert "still being processed" in resp.json()["error"]
    _finish(api, db_url, scene, state="failed", stage_done=None)
    for fields, fragment in [({**RETRY, "training_mode": "nerf"}, "Invalid training_mode"),
                             ({**RETRY, "preset": "ultra"}, "Invalid preset"),
                             ({k: v for k, v in RETRY.items() if k != "total_iterations"},
                              "Missing field: total_iterations"),
                             ({**RETRY, "training_mode": "tensorf", "output_types": "splat_cloud"}, "needs")]:
        resp = api.client.post(f"/user/scene/retry/{scene}", headers=auth, data=fields)
        assert resp.status_code == 400, fields
        assert fragment in resp.json()["error"]
    assert _progress(api, auth, scene)["state"] == "failed"  # nothing changed by the refused retries


def test_retry_is_owner_only(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    scene = api.scene_id(auth, mp4_bytes)
    _finish(api, db_url, scene, state="failed", stage_done=None)
    _, other = api.user()
    resp = api.client.post(f"/user/scene/retry/{scene}", headers=other, data=RETRY)
    assert (resp.status_code, resp.json()) == (404, {"error": "Scene not found."})
    assert api.client.post(f"/user/scene/retry/{scene}", data=RETRY).status_code == 401
    assert _progress(api, auth, scene)["state"] == "failed"


def test_metadata_says_the_mode_and_preset(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    """Extra members beside the seed's: a client names files by the mode's extensions (a TensoRF model is .th)."""
    scene = api.scene_id(auth, mp4_bytes, training_mode="tensorf", output_types="video,model", preset="standard")
    body = api.client.get(f"/user/scene/metadata/{scene}", headers=auth).json()
    assert (body["training_mode"], body["preset"]) == ("tensorf", "standard")


def test_metrics_per_saved_iteration_owner_only(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    scene = api.scene_id(auth, mp4_bytes, preset="standard")
    empty = api.client.get(f"/user/scene/metrics/{scene}", headers=auth)
    assert empty.status_code == 200
    assert empty.json() == {"uuid": scene, "preset": "standard", "metrics": {}}
    metrics_dir = Storage(api.settings.data_dir).scene(scene).metrics_dir
    metrics_dir.mkdir(parents=True)
    quality = {"psnr": 31.2, "ssim": 0.93, "gaussians": 181000, "seconds": 412.5, "eval_views": 10,
               "heldout": True, "resolution": [384, 288]}
    (metrics_dir / "100.json").write_text(json.dumps(quality))
    (metrics_dir / "200.json.part").write_text("{half")  # being written: not listed
    body = api.client.get(f"/user/scene/metrics/{scene}", headers=auth).json()
    assert body["metrics"] == {"100": {**quality, "masked": 0.0}}  # files from before the masked share: none
    _, other = api.user()
    assert api.client.get(f"/user/scene/metrics/{scene}", headers=other).status_code == 404
    assert api.client.get(f"/user/scene/metrics/{scene}").status_code == 401
