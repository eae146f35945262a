"""Time estimates from what the server measured (catalogue costs, whole-job ETA, the wait in the queue) and
the first capture camera served with the metadata (``initial_view``)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from tests.support.api_client import Api
from tests.support.scenes import open_db
from vidscene.db.models import Job, Scene, StageTiming, WorkerBeat, utcnow
from vidscene.jobs import estimates
from vidscene.storage import Storage

REF = estimates.REFERENCE_COSTS[("gaussian", "preview")]  # for the reference clip (the catalogue's figure)


def scene_ref(db_url: str, scene_id: str, preset: str = "preview") -> estimates.ModeCosts:
    """The reference figures for this scene's video: frames and SfM scale with its length."""
    with open_db(db_url) as session:
        info = session.scalar(select(Scene.video_info).where(Scene.id == scene_id))
    return estimates.reference_costs("gaussian", preset, estimates.video_frames(info))


def set_job(db_url: str, scene_id: str, **values: Any) -> None:
    with open_db(db_url) as session:
        session.execute(update(Job).where(Job.scene_id == scene_id).values(**values))
        session.commit()


def add_rows(db_url: str, *rows: object) -> None:
    with open_db(db_url) as session:
        session.add_all(rows)
        session.commit()


def fresh_estimates(api: Api) -> None:
    """The figures are cached for ``CACHE_SECONDS``; a test that just added timings wants them now."""
    estimates.forget_cached(api.app.state.context.engine)


def progress(api: Api, auth: dict[str, str], scene_id: str) -> dict[str, Any]:
    """The progress as of now: the queue's sums are cached for a few seconds, and these tests change it."""
    fresh_estimates(api)
    resp = api.client.get(f"/user/scene/progress/{scene_id}", headers=auth)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_catalogue_costs_come_from_the_reference_cpu_then_from_this_server(api: Api, db_url: str) -> None:
    presets = {p["name"]: p for p in api.client.get("/user/scene/options").json()["presets"]}
    preview = presets["preview"]["estimates"]["gaussian"]
    assert preview["source"] == "reference" and preview["scenes"] == 0
    assert preview["seconds_per_iteration"] == round(REF.seconds_per_iteration or 0, 4)
    assert preview["estimated_seconds"] == round(REF.total_seconds(1500) or 0)
    assert "reference 2-core CPU" in preview["basis"]
    # the reference CPU (bench/RESULTS.md, "Cost: session 9"): the mean of two 10 s clips at standard's 100k
    # budget, 4.25 + 31.7 + 7000 x 0.09325 + 8.8 s (catalogue.py)
    assert presets["standard"]["estimates"]["gaussian"]["estimated_seconds"] == 698
    assert presets["standard"]["estimates"]["gaussian"]["source"] == "reference"
    # nobody measured quality on the reference CPU: unknown, not made up
    assert presets["quality"]["estimates"]["gaussian"] == {
        "seconds_per_iteration": None, "estimated_seconds": None, "source": None, "scenes": 0,
        "basis": "not measured yet on this server or the reference CPU"}

    # two finished standard scenes on this server: 0.5 and 0.7 s/iteration over 7000 iterations
    now = utcnow()
    add_rows(db_url, *(StageTiming(stage=stage, training_mode="gaussian", preset="standard", units=units,
                                   seconds=seconds, finished_at=now - timedelta(minutes=n))
                       for n, (stage, units, seconds) in enumerate([
                           ("frames", 0, 4.0), ("sfm", 0, 60.0), ("train", 7000, 3500.0), ("export", 2, 10.0),
                           ("frames", 0, 6.0), ("sfm", 0, 80.0), ("train", 7000, 4900.0), ("export", 2, 20.0)])))
    assert api.client.get("/user/scene/options").json()["presets"][1]["estimates"]["gaussian"]["source"] == "reference"
    fresh_estimates(api)  # cached until then
    standard = {p["name"]: p for p in api.client.get("/user/scene/options").json()["presets"]}["standard"]
    figure = standard["estimates"]["gaussian"]
    assert (figure["source"], figure["scenes"]) == ("server", 2)
    assert figure["seconds_per_iteration"] == 0.6  # the median
    assert figure["estimated_seconds"] == round(5.0 + 70.0 + 0.6 * 7000 + 15.0)
    assert figure["basis"] == "measured on this server over 2 scenes"
    assert standard["estimates"]["tensorf"]["source"] is None  # another mode learns nothing from it


def test_queued_scene_behind_another_gets_a_start_estimate(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                           db_url: str) -> None:
    first = api.scene_id(auth, mp4_bytes, total_iterations="1000", save_iterations="1000")
    second = api.scene_id(auth, mp4_bytes, total_iterations="1500", save_iterations="1500")
    alone = progress(api, auth, second)
    ref = scene_ref(db_url, second)
    assert ref.sfm != REF.sfm  # a short clip: less to decode and reconstruct than the reference's 240 frames
    assert (alone["state"], alone["overall_position"]) == ("queued", 1)
    assert alone["starts_in_seconds"] is None  # no worker alive: nobody knows when it starts
    assert alone["eta_seconds"] == round(ref.total_seconds(1500) or 0)  # its own work, at reference speed

    # one worker, training the first scene: 300 of its 1000 iterations left at 40 s
    add_rows(db_url, WorkerBeat(worker_id="w1", hostname="h", pid=1, queues="cpu,gpu", seen_at=utcnow()))
    set_job(db_url, first, state="processing", stage="train", stage_done="sfm", lease_owner="w1",
            current_position=700, current_size=1000, eta_seconds=40, started_at=utcnow(),
            stage_started_at=utcnow())
    running = progress(api, auth, first)
    assert running["starts_in_seconds"] is None  # it has started
    assert running["eta_seconds"] == round(40 + (REF.export or 0))  # the rest of training, then export
    queued = progress(api, auth, second)
    assert queued["starts_in_seconds"] == running["eta_seconds"]
    assert queued["overall_position"] == 1  # "1 scene ahead"

    # a second worker shares the work ahead
    add_rows(db_url, WorkerBeat(worker_id="w2", hostname="h", pid=2, queues="cpu,gpu", seen_at=utcnow()))
    assert progress(api, auth, second)["starts_in_seconds"] == round(running["eta_seconds"] / 2)
    # a worker not seen for minutes is not counted
    with open_db(db_url) as session:
        session.execute(update(WorkerBeat).where(WorkerBeat.worker_id == "w2")
                        .values(seen_at=utcnow() - timedelta(minutes=10)))
        session.commit()
    assert progress(api, auth, second)["starts_in_seconds"] == running["eta_seconds"]

    set_job(db_url, first, state="done", finished_at=utcnow(), lease_owner=None)
    done = progress(api, auth, first)
    assert (done["eta_seconds"], done["starts_in_seconds"]) == (None, None)
    assert progress(api, auth, second)["starts_in_seconds"] == 0  # nothing ahead any more


def test_running_scene_eta_covers_the_steps_after_the_current_one(api: Api, auth: dict[str, str],
                                                                  mp4_bytes: bytes, db_url: str) -> None:
    scene = api.scene_id(auth, mp4_bytes, total_iterations="1500", save_iterations="1500")
    # SfM under way for 5 s, no progress figure yet: the rest of its typical time, training and export
    set_job(db_url, scene, state="processing", stage="sfm", stage_done="frames", lease_owner="w1",
            stage_started_at=utcnow() - timedelta(seconds=5), started_at=utcnow())
    body = progress(api, auth, scene)
    rest_of_sfm = max(0.0, (scene_ref(db_url, scene).sfm or 0) - 5)
    expected = rest_of_sfm + 1500 * (REF.seconds_per_iteration or 0) + (REF.export or 0)
    assert abs(body["eta_seconds"] - expected) <= 1
    # between stages (sfm finished, training not yet claimed): all of training and the export
    set_job(db_url, scene, stage="train", stage_done="sfm", lease_owner=None, eta_seconds=None)
    assert progress(api, auth, scene)["eta_seconds"] == round(1500 * (REF.seconds_per_iteration or 0)
                                                             + (REF.export or 0))


def test_percent_follows_each_stages_share_of_the_time(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                       db_url: str) -> None:
    """The bar moves with the time the stages take. Fixed shares put the end of SfM at 30% of the bar, where at
    standard it is 4% of the time: then 26 points came at once and training crawled through the rest."""
    scene = api.scene_id(auth, mp4_bytes, preset="standard", total_iterations="7000", save_iterations="7000")
    std = scene_ref(db_url, scene, "standard")
    total = std.total_seconds(7000) or 0
    before_training = 100 * ((std.frames or 0) + (std.sfm or 0)) / total
    set_job(db_url, scene, state="processing", stage="sfm", stage_done="frames", lease_owner="w1",
            current_position=10, current_size=10, started_at=utcnow())
    assert abs(progress(api, auth, scene)["percent"] - before_training) <= 0.1
    assert before_training < 5
    set_job(db_url, scene, stage="train", stage_done="sfm", current_position=3500, current_size=7000)
    halfway = 100 * ((std.frames or 0) + (std.sfm or 0) + 3500 * (std.seconds_per_iteration or 0)) / total
    assert abs(progress(api, auth, scene)["percent"] - halfway) <= 0.1
    # stopped there: a cancelled scene keeps the place it was shown at
    set_job(db_url, scene, state="cancelled", lease_owner=None)
    assert abs(progress(api, auth, scene)["percent"] - halfway) <= 0.1


def test_metadata_serves_the_first_capture_camera_to_owner_and_share_link(api: Api, auth: dict[str, str],
                                                                          mp4_bytes: bytes) -> None:
    scene = api.scene_id(auth, mp4_bytes)
    assert api.client.get(f"/user/scene/metadata/{scene}", headers=auth).json()["initial_view"] is None
    view = {"position": [0.1, -0.2, -1.0], "forward": [0.0, 0.0, 1.0], "up": [0.0, -1.0, 0.0],
            "fov_y_degrees": 48.5, "aspect": 4 / 3, "image_size": [320, 240], "image_name": "00001.png",
            "frame": "splat"}
    files = Storage(api.settings.data_dir).scene(scene)
    files.initial_view.parent.mkdir(parents=True, exist_ok=True)
    files.initial_view.write_text(json.dumps(view))
    assert api.client.get(f"/user/scene/metadata/{scene}", headers=auth).json()["initial_view"] == view
    token = api.client.post(f"/user/scene/share/{scene}", headers=auth).json()["token"]
    assert api.client.get(f"/public/{token}/metadata").json()["initial_view"] == view
    files.initial_view.write_text("{not json")  # half a file can never be read (atomic writes), nor served
    assert api.client.get(f"/user/scene/metadata/{scene}", headers=auth).json()["initial_view"] is None


def test_openapi_documents_the_new_fields(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    assert "starts_in_seconds" in schemas["SceneProgress"]["properties"]
    assert "initial_view" in schemas["SceneMetadata"]["properties"]
    assert {"seconds_per_iteration", "estimated_seconds", "source"} <= set(
        schemas["PresetEstimate"]["properties"])


def test_the_queue_is_summed_once_for_every_poll_of_a_few_seconds(api: Api, auth: dict[str, str],
                                                                 mp4_bytes: bytes, db_url: str) -> None:
    first = api.scene_id(auth, mp4_bytes, total_iterations="1000", save_iterations="1000")
    second = api.scene_id(auth, mp4_bytes, total_iterations="1000", save_iterations="1000")
    add_rows(db_url, WorkerBeat(worker_id="w1", hostname="h", pid=1, queues="cpu,gpu", seen_at=utcnow()))
    set_job(db_url, first, state="processing", stage="train", stage_done="sfm", lease_owner="w1",
            current_position=500, current_size=1000, eta_seconds=100)
    starts = progress(api, auth, second)["starts_in_seconds"]
    assert starts == round(100 + (REF.export or 0))

    def cached(scene_id: str) -> dict[str, Any]:
        body: dict[str, Any] = api.client.get(f"/user/scene/progress/{scene_id}", headers=auth).json()
        return body

    set_job(db_url, first, eta_seconds=10)
    assert cached(second)["starts_in_seconds"] == starts  # the snapshot of a moment ago
    third = api.scene_id(auth, mp4_bytes, total_iterations="1000", save_iterations="1000")
    # a scene queued since is not in that snapshot: the queue is summed again, with the new figures
    behind = cached(third)["starts_in_seconds"]
    whole_job = round(scene_ref(db_url, second).total_seconds(1000) or 0)
    assert behind == round(10 + (REF.export or 0)) + whole_job  # whole seconds a job
    assert cached(second)["starts_in_seconds"] == round(10 + (REF.export or 0))
