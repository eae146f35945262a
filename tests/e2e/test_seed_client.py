"""The existing React client of the seed's API, step by step as it drives a server: urlencoded register and
login, a multipart upload with the fields first, polling progress until ``processing`` is false, then the
outputs in 1 MiB Range chunks as metadata describes them. Another scene is queued ahead of it, which is
where the client used to give up: a queued scene reported ``processing: false``."""

from __future__ import annotations

import stat
import time
from typing import Any

import httpx

from tests.support.api_client import CHUNK
from tests.support.cluster import Cluster
from tests.support.outputs import check_output
from tests.support.videos import SyntheticVideo

PASSWORD = "seed client pass"


def _seed_login(http: httpx.Client, username: str) -> None:
    form = {"username": username, "password": PASSWORD}
    assert http.post("/user/account/register", data=form).status_code == 201
    r = http.post("/user/account/login", data=form)  # application/x-www-form-urlencoded, as the client sends
    assert r.status_code == 200, r.text
    http.headers["Authorization"] = f"Bearer {r.json()['jwtToken']}"


def _seed_upload(http: httpx.Client, video: SyntheticVideo, total: int) -> str:
    fields = {"training_mode": "gaussian", "output_types": "splat_cloud,video", "save_iterations": str(total),
              "total_iterations": str(total), "scene_name": "seed client"}
    with video.path.open("rb") as f:
        r = http.post("/user/scene/new", data=fields, files={"file": ("capture.mp4", f, "video/mp4")})
    assert r.status_code == 202, r.text
    assert r.json()["message"] == "Video received and processing scene. Check back later for updates."
    return str(r.json()["id"])


def _poll_like_the_seed_client(http: httpx.Client, scene_id: str, timeout: float) -> list[dict[str, Any]]:
    """``fetchSceneProgress`` every second until ``processing`` is false."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = http.get(f"/user/scene/progress/{scene_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if not seen[-1]["processing"]:
            return seen
        time.sleep(1.0)
    raise AssertionError(f"still processing after {timeout} s: {seen[-1]}")


def test_the_seed_client_journey(cluster: Cluster, orbit_video: SyntheticVideo) -> None:
    cluster.serve(embedded_worker=True)
    http = httpx.Client(base_url=cluster.base_url, timeout=60)
    _seed_login(http, "seedclient")
    ahead = _seed_upload(http, orbit_video, 20)
    scene_id = _seed_upload(http, orbit_video, 30)

    seen = _poll_like_the_seed_client(http, scene_id, timeout=600)
    queued = [p for p in seen if p.get("state") == "queued"]
    assert queued, "the scene was never seen waiting behind the first one"
    assert all(p["processing"] is True and p["overall_position"] >= 0 for p in queued)
    final = seen[-1]
    assert (final["state"], final["error"]) == ("done", 0), final
    assert http.get(f"/user/scene/progress/{ahead}").json()["state"] == "done"

    meta = http.get(f"/user/scene/metadata/{scene_id}").json()  # fetchSceneMetadata
    for output_type in ("splat_cloud", "video"):
        entry = meta["resources"][output_type]["30"]
        assert entry["exists"] is True
        chunks = []
        for i in range(entry["chunks"]):  # fetchSceneOutput, 1 MiB at a time
            start = i * CHUNK
            size = entry["last_chunk_size"] if i == entry["chunks"] - 1 else CHUNK
            r = http.get(f"/user/scene/output/{output_type}/{scene_id}", params={"iteration": 30},
                         headers={"Range": f"bytes={start}-{start + size - 1}"})
            assert r.status_code == 206, r.text
            chunks.append(r.content)
        check_output(output_type, b"".join(chunks), mode="gaussian")

    # quality numbers, per saved iteration (the seed's client does not ask; the web app does)
    quality = http.get(f"/user/scene/metrics/{scene_id}").json()
    assert quality["preset"] == "preview" and set(quality["metrics"]) == {"30"}
    measured = quality["metrics"]["30"]
    assert measured["psnr"] > 12 and 0 < measured["ssim"] <= 1 and measured["gaussians"] > 0, measured
    assert measured["resolution"] == [160, 120]  # the frames' own size, not the training downscale

    # what the embedded worker wrote is its owner's alone (serve and worker run with umask 077)
    scene_dir = cluster.data_dir / "scenes" / scene_id
    for path in [scene_dir, *scene_dir.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
