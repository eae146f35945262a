"""The whole product on the embedded default: `vidscene serve` alone turns an uploaded video into outputs."""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster
from tests.support.outputs import check_output
from tests.support.videos import SyntheticVideo
from vidscene.jobs import estimates

OUTPUTS = ["splat_cloud", "point_cloud", "video", "model"]


def test_upload_process_download_every_output(cluster: Cluster, orbit_video: SyntheticVideo) -> None:
    cluster.serve(embedded_worker=True)
    client = ApiClient(cluster.base_url, "alice")
    scene_id = client.upload(orbit_video.path, outputs=",".join(OUTPUTS), save="10", total=30)

    history: list[dict[str, Any]] = []
    final = client.wait(scene_id, timeout=400, cluster=cluster, history=history)
    assert final["state"] == "done", (final, cluster.logs())
    assert final["processing"] is False and final["error"] == 0
    running = [p for p in history if p["state"] == "processing"]
    assert running, "progress never showed the scene processing"
    assert all(p["processing"] is True and p["error"] == 0 for p in running)
    assert {p["stage"] for p in running} <= {"sfm_list", "nerf_list"}

    thumb = client.http.get(f"/user/scene/thumbnail/{scene_id}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 512

    meta = client.http.get(f"/user/scene/metadata/{scene_id}").json()
    assert set(meta["resources"]) == set(OUTPUTS)
    counts: dict[str, list[int]] = {}
    for output_type in OUTPUTS:
        assert set(meta["resources"][output_type]) == {"10", "30"}
        for iteration, entry in meta["resources"][output_type].items():
            assert entry["exists"] is True, (output_type, iteration, entry)
            data = client.download(scene_id, output_type, int(iteration), entry)
            counts.setdefault(output_type, []).append(check_output(output_type, data, mode="gaussian"))
    # The model checkpoints are the iterations they claim to be.
    assert sorted(counts["model"]) == [10, 30]
    # Same gaussians in the .splat and the .ply of one iteration.
    assert counts["splat_cloud"] == counts["point_cloud"]

    # The viewer opens from the first capture camera, and this server now times its presets itself.
    view = meta["initial_view"]
    assert view is not None and len(view["position"]) == 3 and 10 < view["fov_y_degrees"] < 120
    # (the progress polls cached the figures of before: they are re-read after CACHE_SECONDS)
    deadline = time.monotonic() + estimates.CACHE_SECONDS + 15
    while True:
        options = client.http.get("/user/scene/options").json()
        preview = next(p for p in options["presets"] if p["name"] == "preview")["estimates"]["gaussian"]
        if preview["source"] == "server" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert (preview["source"], preview["scenes"]) == ("server", 1), (preview, cluster.logs())
    assert preview["seconds_per_iteration"] > 0
