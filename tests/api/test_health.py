"""``/health`` (liveness), ``/health/ready`` (database, broker and store reachable) and ``/metrics``."""

from __future__ import annotations

import re
import shutil

from tests.support.api_client import Api, ApiFactory
from tests.support.server import free_port
from vidscene.db.models import Stage
from vidscene.jobs import estimates, state


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))  # as the client writes them
    pattern = re.escape(name + (f"{{{wanted}}}" if labels else "")) + r" (\S+)"
    match = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert match is not None, f"{name} {labels} not in:\n{text}"
    return float(match.group(1))


def test_ready_when_every_part_answers_and_503_naming_the_one_that_does_not(api_factory: ApiFactory) -> None:
    api = api_factory()
    assert api.client.get("/health").text == "OK"
    ready = api.client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok", "store": "ok"}}

    shutil.rmtree(api.settings.data_dir / "scenes")  # a lost mount
    answer = api.client.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["error"].startswith("Not ready: store: unreachable")
    assert answer.json()["checks"]["database"] == "ok"
    assert api.client.get("/health").text == "OK"  # alive all the same

    # Nothing listens on the broker's port: the broker is named, the others are fine.
    down = api_factory(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    answer = down.client.get("/health/ready")
    assert answer.status_code == 503
    body = answer.json()
    assert "broker" in body["error"] and "database" not in body["error"]
    assert (body["checks"]["database"], body["checks"]["store"]) == ("ok", "ok")
    # the 503 was counted
    assert metric(down.client.get("/metrics").text, "vidscene_http_5xx_responses_total", status="503") == 1


def test_metrics_read_the_queue_timings_and_workers_from_the_database(api: Api, auth: dict[str, str],
                                                                      mp4_bytes: bytes) -> None:
    for _ in range(2):
        api.scene_id(auth, mp4_bytes)
    factory = api.app.state.context.sessions
    state.beat_worker(factory, "gpu-box:7", "gpu-box", 7, ["gpu"])
    estimates.record_stage(factory, stage=Stage.sfm, training_mode="gaussian", preset="preview", units=0,
                           seconds=12.5)
    text = api.client.get("/metrics").text
    assert metric(text, "vidscene_queue_depth", queue="cpu", state="waiting") == 2
    assert metric(text, "vidscene_queue_depth", queue="gpu", state="running") == 0
    assert metric(text, "vidscene_stage_duration_seconds_count", stage="sfm") == 1
    assert metric(text, "vidscene_stage_duration_seconds_sum", stage="sfm") == 12.5
    assert metric(text, "vidscene_worker_heartbeat_age_seconds", worker="gpu-box:7", queues="gpu") < 60
    assert metric(text, "vidscene_upload_bytes_total") >= 2 * len(mp4_bytes)
