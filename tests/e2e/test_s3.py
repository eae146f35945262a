"""Scaled out on an object store: the API and the worker each in a data dir of its own, sharing nothing but
PostgreSQL, Redis and a bucket on a real S3-compatible server (moto's, ``tests/support/s3.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster, empty_redis_db
from tests.support.outputs import check_output
from tests.support.s3 import S3Server
from tests.support.server import Proc
from tests.support.videos import SyntheticVideo

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PREFIX = "site-a"


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    with empty_redis_db(redis_url, 9) as url:
        yield url


def _s3_cluster(tmp_path: Path, s3_server: S3Server, bucket: str, postgres_url: str, redis_db: str) -> Cluster:
    env = {**s3_server.env, "VIDSCENE_STORAGE_URL": f"s3://{bucket}/{PREFIX}"}
    cluster = Cluster.create(tmp_path, database_url=postgres_url, broker_url=redis_db, extra_env=env)
    cluster.separate_dirs = True
    return cluster


def _local_files(data_dir: Path) -> list[str]:
    """Scene files a process keeps in its own data dir (there must be none: they live in the bucket)."""
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.glob("scenes/**/*") if p.is_file())


def _staged(scratch: Path) -> list[Path]:
    """Files staged in a scratch dir (each worker process's lock file aside)."""
    return [p for p in scratch.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_pipeline_downloads_and_delete_on_s3(tmp_path: Path, s3_server: S3Server, postgres_url: str, redis_db: str,
                                             orbit_video: SyntheticVideo) -> None:
    bucket = s3_server.new_bucket()
    cluster = _s3_cluster(tmp_path, s3_server, bucket, postgres_url, redis_db)
    try:
        cluster.serve(embedded_worker=False)
        cluster.worker("-Q", "cpu,gpu")
        client = ApiClient(cluster.base_url, "s3user")
        scene_id = client.upload(orbit_video.path, outputs="splat_cloud,point_cloud", total=15)
        final = client.wait(scene_id, timeout=500, cluster=cluster)
        assert final["state"] == "done", (final, cluster.logs())

        keys = s3_server.keys(bucket, f"{PREFIX}/scenes/{scene_id}/")
        assert f"{PREFIX}/scenes/{scene_id}/upload/video.mp4" in keys
        assert f"{PREFIX}/scenes/{scene_id}/thumbnail.jpg" in keys
        assert not [k for k in keys if k.endswith(".part") or "/train/resume." in k], keys
        for index in range(2):  # nothing of the scene stays on either machine's disk
            assert _local_files(cluster.data_dir_of(index)) == []

        meta = client.http.get(f"/user/scene/metadata/{scene_id}").json()["resources"]
        for output_type in ("splat_cloud", "point_cloud"):  # 1 MiB Range requests, streamed from the bucket
            check_output(output_type, client.download(scene_id, output_type, 15, meta[output_type]["15"]),
                         mode="gaussian")
        token = client.http.post(f"/user/scene/share/{scene_id}").json()["token"]
        shared = httpx.get(f"{cluster.base_url}/public/{token}/output/splat_cloud", headers={"Range": "bytes=0-99"})
        assert shared.status_code == 206 and len(shared.content) == 100, shared.text
        assert shared.headers["content-range"] == f"bytes 0-99/{meta['splat_cloud']['15']['size']}"
        thumb = client.http.get(f"/user/scene/thumbnail/{scene_id}")
        assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
        assert client.http.get(f"/user/scene/metrics/{scene_id}").json()["metrics"]

        assert client.http.delete(f"/user/scene/delete/{scene_id}").status_code == 200
        assert s3_server.keys(bucket, f"{PREFIX}/") == []
    finally:
        cluster.stop()


@pytest.mark.slow  # a whole `serve` start; tests/storage/test_s3_api.py checks the same refusal in process
def test_start_refused_when_the_store_is_unreachable(tmp_path: Path, s3_server: S3Server) -> None:
    """A bucket that does not exist (or a store that is down): ``serve`` stops at once with the reason."""
    cluster = Cluster.create(tmp_path, extra_env={**s3_server.env, "VIDSCENE_STORAGE_URL": "s3://no-such-bucket/x"})
    proc = Proc(["serve", "--port", str(cluster.port), "--no-worker"], cluster.env, tmp_path / "serve.log").start()
    assert proc.proc is not None
    assert proc.proc.wait(timeout=60) == 2
    assert "cannot use the storage s3://no-such-bucket/x" in proc.tail()


@pytest.mark.slow  # minutes: training interrupted and resumed
def test_a_killed_worker_resumes_training_from_the_bucket(tmp_path: Path, s3_server: S3Server, postgres_url: str,
                                                          redis_db: str, orbit_video: SyntheticVideo) -> None:
    """A worker killed mid-training leaves its checkpoint in the bucket; a worker on another machine (data dir)
    resumes from it, and nothing half-made is left. The two workers share one scratch dir, as workers on one
    machine would: what the killed one had staged there is removed when the next one starts."""
    bucket = s3_server.new_bucket()
    cluster = _s3_cluster(tmp_path, s3_server, bucket, postgres_url, redis_db)
    cluster.env["VIDSCENE_STORAGE_SYNC_SECONDS"] = "1"
    scratch = tmp_path / "scratch"
    cluster.env["VIDSCENE_SCRATCH_DIR"] = str(scratch)
    try:
        cluster.serve(embedded_worker=False)
        first = cluster.worker("-Q", "cpu,gpu")
        client = ApiClient(cluster.base_url, "s3resume")
        scene_id = client.upload(orbit_video.path, outputs="splat_cloud", save="10", total=40)
        checkpoint = f"{PREFIX}/scenes/{scene_id}/train/checkpoints/10.ckpt"
        client.wait(scene_id, timeout=500, cluster=cluster,
                    until=lambda _: checkpoint in s3_server.keys(bucket, f"{PREFIX}/scenes/{scene_id}/train/"))
        first.kill()
        assert _staged(scratch), "the killed worker left nothing in its scratch folder"
        second = cluster.worker("-Q", "cpu,gpu")
        final = client.wait(scene_id, timeout=500, cluster=cluster)
        assert final["state"] == "done", (final, cluster.logs())
        assert "resumed_from=10" in second.log_path.read_text(), cluster.logs()
        keys = s3_server.keys(bucket, f"{PREFIX}/scenes/{scene_id}/")
        assert not [k for k in keys if k.endswith(".part") or "/train/resume." in k], keys
        meta = client.http.get(f"/user/scene/metadata/{scene_id}").json()["resources"]["splat_cloud"]
        assert meta["10"]["exists"] and meta["40"]["exists"]
        assert _staged(scratch) == []  # the killed worker's staged files went
    finally:
        cluster.stop()
