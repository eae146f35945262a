"""Automation on the real processes: a script uploads with a personal API token, and the worker that `vidscene
serve` starts (never the API) sends the signed webhook when the scene fails."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster
from tests.support.videos import encode_video
from tests.support.webhooks import serve, verify


@pytest.fixture
def automation_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster.create(tmp_path, extra_env={"VIDSCENE_WEBHOOK_ALLOW_PRIVATE": "true",
                                            "VIDSCENE_WEBHOOK_POLL_SECONDS": "0.5"})
    yield c
    c.stop()


def test_token_upload_and_a_webhook_sent_by_the_worker(automation_cluster: Cluster, tmp_path: Path) -> None:
    cluster = automation_cluster
    cluster.serve(embedded_worker=True)
    owner = ApiClient(cluster.base_url, "robot")
    token = owner.http.post("/user/tokens", json={"name": "ci", "scopes": ["scenes:read", "scenes:write"]})
    assert token.status_code == 201, token.text
    script = httpx.Client(base_url=cluster.base_url, timeout=60,
                          headers={"Authorization": f"Bearer {token.json()['token']}"})
    with serve() as receiver:
        hook = owner.http.post("/user/webhooks", json={"url": receiver.url, "events": ["scene.failed"]}).json()
        video = encode_video(tmp_path / "too-short.mp4")  # six frames: the frames stage refuses it
        created = script.post("/user/scene/new", files={"file": (video.name, video.read_bytes(), "video/mp4")},
                              data={"training_mode": "gaussian", "output_types": "video", "save_iterations": "10",
                                    "total_iterations": "10"})
        assert created.status_code == 202, created.text
        scene = created.json()["id"]
        deadline = time.monotonic() + 180
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.25)
        assert receiver.requests, cluster.logs()
        (request,) = receiver.requests
        body = json.loads(request["body"])
        assert body["event"] == "scene.failed" and body["scene"]["uuid"] == scene and body["scene"]["error"] == 2
        assert verify(hook["secret"], request["headers"]["Vidscene-Signature"], request["body"], now=time.time())
        progress = script.get(f"/user/scene/progress/{scene}").json()
        assert progress["state"] == "failed" and progress["message"] == body["scene"]["message"]
        (delivery,) = owner.http.get(f"/user/webhooks/{hook['id']}/deliveries").json()["deliveries"]
        assert delivery["id"] == body["id"]
