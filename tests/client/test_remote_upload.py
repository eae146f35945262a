"""``vidscene remote upload`` and ``vidscene.client`` against a real ``vidscene serve`` with its embedded worker:
a personal API token, a tus upload that resumes from the server's offset, waiting, downloading every output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster
from tests.support.outputs import check_output
from tests.support.videos import SyntheticVideo, make_orbit_video
from vidscene.client import ApiError, Client, UploadFields

CHUNK = 16 * 1024  # the server's smallest upload chunk: the tiny video takes several PATCHes


class UploadInterruptedError(Exception):
    """Stands for a killed script or a dropped connection after the first chunk arrived."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster.create(tmp_path_factory.mktemp("remote"))
    c.serve(embedded_worker=True)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    return make_orbit_video(tmp_path_factory.mktemp("video") / "orbit.mp4", width=160, height=120, n_frames=36,
                            fps=12, seed=3)


@pytest.fixture(scope="module")
def owner(cluster: Cluster) -> ApiClient:
    return ApiClient(cluster.base_url, "remote_owner")


def api_token(owner: ApiClient, *scopes: str) -> str:
    answer = owner.http.post("/user/tokens", json={"name": "ci", "scopes": list(scopes)})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def test_resumed_upload_continues_from_the_servers_offset(cluster: Cluster, owner: ApiClient,
                                                          video: SyntheticVideo, tmp_path: Path) -> None:
    size = video.path.stat().st_size
    assert size > 2 * CHUNK
    state = tmp_path / "orbit.upload.json"
    fields = UploadFields(training_mode="gaussian", output_types=("point_cloud",), total_iterations=2)

    def stop_after_first_chunk(offset: int, _size: int) -> None:
        if offset > 0:
            raise UploadInterruptedError

    with Client(cluster.base_url, api_token(owner, "scenes:write")) as client:
        with pytest.raises(UploadInterruptedError):
            client.upload(video.path, fields, state_file=state, chunk_bytes=CHUNK, on_progress=stop_after_first_chunk)
        url = json.loads(state.read_text())["url"]
        assert owner.http.get(url).json()["offset"] == CHUNK  # the server kept the first chunk

        seen: list[int] = []
        scene = client.upload(video.path, fields, state_file=state, chunk_bytes=CHUNK,
                              on_progress=lambda offset, _size: seen.append(offset))
    assert seen[0] == CHUNK and seen[-1] == size  # resumed where the server was, not from 0
    assert seen == sorted(seen) and len(seen) == 1 + -(-(size - CHUNK) // CHUNK)
    saved = json.loads(state.read_text())
    assert (saved["url"], saved["scene_id"]) == (url, scene)
    status = owner.http.get(url).json()
    assert (status["id"], status["offset"], status["length"]) == (scene, size, size)
    assert owner.http.get("/user/scene/history").json()["resources"] == [scene]
    # Only the upload was under test: free the worker for the next test.
    assert owner.http.delete(f"/user/scene/delete/{scene}").status_code == 200


def test_refusals_carry_the_servers_message(cluster: Cluster, owner: ApiClient, video: SyntheticVideo,
                                            tmp_path: Path) -> None:
    fields = UploadFields(training_mode="gaussian", output_types=("point_cloud",), total_iterations=2)
    with Client(cluster.base_url, api_token(owner, "scenes:read")) as client, pytest.raises(ApiError) as refused:
        client.upload(video.path, fields, state_file=tmp_path / "state.json", chunk_bytes=CHUNK)
    assert (refused.value.status, refused.value.message) == (403, "This token lacks the scenes:write scope")
    assert not (tmp_path / "state.json").exists()


def test_remote_upload_waits_and_downloads_every_output(cluster: Cluster, owner: ApiClient, video: SyntheticVideo,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "VIDSCENE_TOKEN": api_token(owner, "scenes:read", "scenes:write")}
    command = [sys.executable, "-m", "vidscene", "remote", "upload", str(video.path), "--server", cluster.base_url,
               "--wait", "--out", str(out), "--preset", "preview", "--outputs", "point_cloud,model",
               "--iterations", "4", "--save", "2", "--name", "remote", "--poll-seconds", "0.5"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{cluster.logs()}"
    scene = done.stdout.splitlines()[0].removeprefix("scene ")
    shown = done.stderr.splitlines()  # a stage may pass between two polls: some, not all, are shown
    assert any(line.startswith("processing ") for line in shown) and shown[-1] == "done export 100%"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "model-2.ckpt", "model-4.ckpt", "point_cloud-2.ply", "point_cloud-4.ply"]
    meta = owner.http.get(f"/user/scene/metadata/{scene}").json()
    assert meta["name"] == "remote"
    for output_type, iterations in meta["resources"].items():
        for iteration, info in iterations.items():
            data = (out / f"{output_type}-{iteration}{'.ckpt' if output_type == 'model' else '.ply'}").read_bytes()
            assert len(data) == info["size"]
            check_output(output_type, data, mode="gaussian")
    # Run again: the state file knows the scene, so nothing is uploaded twice and the files are already there.
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == f"scene {scene}"
    assert owner.http.get("/user/scene/history").json()["resources"][-1] == scene
