"""Scaled out: API without a worker, separate worker processes, PostgreSQL and Redis or RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster, empty_redis_db
from tests.support.outputs import check_output
from tests.support.videos import SyntheticVideo

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    with empty_redis_db(redis_url, 7) as url:
        yield url


def _run_scenes(cluster: Cluster, video: SyntheticVideo, users: int) -> None:
    clients = [ApiClient(cluster.base_url, f"user{i}") for i in range(users)]
    scenes = [(c, c.upload(video.path, outputs="splat_cloud,point_cloud", total=15)) for c in clients]
    for client, scene_id in scenes:
        final = client.wait(scene_id, timeout=500, cluster=cluster)
        assert final["state"] == "done", (final, cluster.logs())
        meta = client.http.get(f"/user/scene/metadata/{scene_id}").json()["resources"]
        for output_type in ("splat_cloud", "point_cloud"):
            check_output(output_type, client.download(scene_id, output_type, 15, meta[output_type]["15"]),
                         mode="gaussian")
        # Each user sees only their own scene.
        assert client.http.get("/user/scene/history").json()["resources"] == [scene_id]


@pytest.mark.redis
def test_postgres_redis_two_workers(tmp_path: Path, postgres_url: str, redis_db: str,
                                    orbit_video: SyntheticVideo) -> None:
    cluster = Cluster.create(tmp_path, database_url=postgres_url, broker_url=redis_db)
    try:
        cluster.serve(embedded_worker=False)
        cluster.worker("-Q", "cpu")
        cluster.worker("-Q", "cpu,gpu")
        _run_scenes(cluster, orbit_video, users=2)
    finally:
        cluster.stop()


def test_rabbitmq_broker(tmp_path: Path, postgres_url: str, amqp_url: str, orbit_video: SyntheticVideo) -> None:
    cluster = Cluster.create(tmp_path, database_url=postgres_url, broker_url=amqp_url)
    try:
        cluster.serve(embedded_worker=False)
        cluster.worker()
        _run_scenes(cluster, orbit_video, users=1)
    finally:
        cluster.stop()
