"""Fault tolerance with real processes: killed workers, a killed server, deletion mid-training, bad videos."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster
from tests.support.outputs import check_output
from tests.support.videos import SyntheticVideo, make_static_video

# Long enough to be killed mid-training at iteration 60 with a checkpoint at 40 behind it, short enough that the
# resumed run (on a worker that has to start again) stays a small part of the test.
RESUMED_TOTAL = 160


def _training_at(iteration: int):  # type: ignore[no-untyped-def]  # returns a predicate over progress bodies
    return lambda p: p.get("stage") == "nerf_list" and p.get("step") == "train" and p["current_position"] >= iteration


def test_worker_killed_mid_training_resumes_from_checkpoint(cluster: Cluster, orbit_video: SyntheticVideo) -> None:
    cluster.serve(embedded_worker=False)
    first = cluster.worker()
    client = ApiClient(cluster.base_url, "bob")
    scene_id = client.upload(orbit_video.path, outputs="splat_cloud,model", save="40", total=RESUMED_TOTAL)
    client.wait(scene_id, until=_training_at(60), timeout=600, cluster=cluster)
    first.kill(signal.SIGKILL)  # the whole worker process group, mid-training, no warning
    killed_at = client.progress(scene_id)
    assert killed_at["state"] == "processing"

    second = cluster.worker()
    final = client.wait(scene_id, timeout=600, cluster=cluster)
    assert final["state"] == "done", (final, cluster.logs())
    log = second.log_path.read_text()
    resumed = re.search(r"resuming training.*iteration=(\d+)", log)
    assert resumed, second.tail()
    assert int(resumed.group(1)) >= 40  # from a checkpoint, not from iteration 0
    meta = client.http.get(f"/user/scene/metadata/{scene_id}").json()["resources"]
    data = client.download(scene_id, "model", RESUMED_TOTAL, meta["model"][str(RESUMED_TOTAL)])
    assert check_output("model", data, mode="gaussian") == RESUMED_TOTAL


def test_server_killed_with_queued_jobs_loses_nothing(cluster: Cluster, orbit_video: SyntheticVideo) -> None:
    server = cluster.serve(embedded_worker=True)
    client = ApiClient(cluster.base_url, "carol")
    ids = [client.upload(orbit_video.path, outputs="splat_cloud", total=15, name=f"s{i}") for i in range(2)]
    server.kill(signal.SIGKILL)  # the embedded worker follows its server down
    time.sleep(3)
    cluster.serve(embedded_worker=True)
    for scene_id in ids:
        final = client.wait(scene_id, timeout=400, cluster=cluster)
        assert final["state"] == "done", (final, cluster.logs())


def test_delete_while_training_stops_worker_and_removes_files(cluster: Cluster, orbit_video: SyntheticVideo) -> None:
    cluster.serve(embedded_worker=True)
    client = ApiClient(cluster.base_url, "dave")
    scene_id = client.upload(orbit_video.path, outputs="splat_cloud,video", save="20", total=3000)
    client.wait(scene_id, until=_training_at(30), timeout=600, cluster=cluster)
    scene_dir = cluster.data_dir / "scenes" / scene_id
    assert scene_dir.exists()
    deleted_at = time.monotonic()
    assert client.http.delete(f"/user/scene/delete/{scene_id}").status_code == 200
    assert client.http.get(f"/user/scene/progress/{scene_id}").status_code == 404
    worker_log = next(p for p in cluster.procs if p.args[0] == "serve").log_path
    while time.monotonic() - deleted_at < 5:
        if "stage stopped: job cancelled" in worker_log.read_text() or "ending the worker process" in \
                worker_log.read_text():
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"worker did not stop within 5 s:\n{cluster.logs()}")
    time.sleep(2)  # nothing is written after the stop either
    assert not scene_dir.exists(), sorted(str(p) for p in scene_dir.rglob("*"))


def test_unregistrable_video_fails_clearly_and_next_job_runs(cluster: Cluster, orbit_video: SyntheticVideo,
                                                             tmp_path: Path) -> None:
    static = make_static_video(tmp_path / "static.mp4", width=160, height=120, n_frames=30)
    cluster.serve(embedded_worker=True)
    client = ApiClient(cluster.base_url, "erin")
    bad = client.upload(static, outputs="splat_cloud", total=10)
    good = client.upload(orbit_video.path, outputs="splat_cloud", total=10)
    failed = client.wait(bad, timeout=300, cluster=cluster)
    assert failed["state"] == "failed" and failed["error"] != 0
    assert "frames" in failed["message"] or "camera" in failed["message"], failed
    assert client.wait(good, timeout=300, cluster=cluster)["state"] == "done"


def test_embedded_worker_killed_is_restarted_and_scene_finishes(cluster: Cluster,
                                                                orbit_video: SyntheticVideo) -> None:
    import os

    import psutil

    server = cluster.serve(embedded_worker=True)
    client = ApiClient(cluster.base_url, "frank")
    scene_id = client.upload(orbit_video.path, outputs="splat_cloud,model", save="40", total=RESUMED_TOTAL)
    client.wait(scene_id, until=_training_at(60), timeout=600, cluster=cluster)
    assert server.proc is not None
    workers = [p for p in psutil.Process(server.proc.pid).children() if "worker" in p.cmdline()]
    assert len(workers) == 1
    os.killpg(workers[0].pid, signal.SIGKILL)  # the worker and its pool child, mid-training
    final = client.wait(scene_id, timeout=600, cluster=cluster)
    assert final["state"] == "done", (final, cluster.logs())
    log = server.log_path.read_text()
    assert "embedded worker exited" in log
    resumed = re.search(r"resuming training.*iteration=(\d+)", log)
    assert resumed and int(resumed.group(1)) >= 40, server.tail()


def test_embedded_worker_stops_soon_after_serve_dies_and_the_scene_resumes(cluster: Cluster,
                                                                           orbit_video: SyntheticVideo) -> None:
    """serve killed by SIGKILL mid-training: its worker must not train on for minutes for a server that is gone
    (it used to finish the running stage first); the next serve resumes the scene from its checkpoint."""
    import psutil

    server = cluster.serve(embedded_worker=True)
    client = ApiClient(cluster.base_url, "gwen")
    scene_id = client.upload(orbit_video.path, outputs="splat_cloud,model", save="40", total=4000)
    client.wait(scene_id, until=_training_at(60), timeout=600, cluster=cluster)
    assert server.proc is not None
    worker = next(p for p in psutil.Process(server.proc.pid).children() if "worker" in p.cmdline())
    family = [worker, *worker.children(recursive=True)]
    server.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, f"still running {time.monotonic() - killed_at:.0f} s after serve died: {alive}"
    restarted = cluster.serve(embedded_worker=True)
    # the stage is delivered again and training resumes from a checkpoint (>= 40), not from 0
    deadline = time.monotonic() + 300
    resumed = None
    while resumed is None and time.monotonic() < deadline:
        resumed = re.search(r"resuming training.*iteration=(\d+)", restarted.log_path.read_text())
        time.sleep(1)
    assert resumed and int(resumed.group(1)) >= 40, restarted.tail()
    assert client.progress(scene_id)["state"] == "processing"
