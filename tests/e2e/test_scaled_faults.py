"""Faults on the scaled-out deployment, with real processes: PostgreSQL, Redis, an API without a worker and
two workers. A worker is killed mid-training, Redis restarts while stages are queued (it keeps nothing on
disk: the queued messages are lost), PostgreSQL restarts while the workers heartbeat. Every scene must end
done, none lost or stuck, no output recorded twice, and the API answers throughout. The data disk filling
up is its own test: the scene fails with a message about disk space and the server keeps answering.

Slow (minutes) and it restarts the machine's PostgreSQL and Redis: ``make test-slow`` runs it, not CI's
default run. Figures from a run are in bench/RESULTS.md ("Faults, scaled out").
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster, empty_redis_db
from tests.support.server import Proc
from tests.support.videos import SyntheticVideo
from vidscene.db.models import Output

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

FAST_RECOVERY = {"VIDSCENE_REQUEUE_IDLE_SECONDS": "5"}
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    with empty_redis_db(redis_url, 8) as url:
        yield url


class Watch(threading.Thread):
    """Polls /health every 0.2 s and keeps the longest gap between two answers."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.stop = threading.Event()
        self.longest_gap = 0.0
        self.failures = 0

    def run(self) -> None:
        last = time.monotonic()
        with httpx.Client(timeout=5) as http:
            while not self.stop.wait(0.2):
                try:
                    ok = http.get(f"{self.base_url}/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                now = time.monotonic()
                if ok:
                    self.longest_gap = max(self.longest_gap, now - last)
                    last = now
                else:
                    self.failures += 1


def _restart_redis() -> float:
    started = time.monotonic()
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
    time.sleep(1.0)
    os.makedirs("/var/lib/redis", exist_ok=True)
    os.makedirs("/var/log/redis", exist_ok=True)
    subprocess.run(REDIS_START, check=True, capture_output=True)
    _wait_port(6379)
    return time.monotonic() - started


def _restart_postgres() -> float:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    started = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                   capture_output=True)
    _wait_port(5432)
    return time.monotonic() - started


def _wait_port(port: int) -> None:
    import socket

    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"port {port} did not come back")


def _training_worker(worker: Proc) -> None:
    assert worker.proc is not None
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=30)


def test_kill_worker_restart_redis_and_postgres(tmp_path: Path, postgres_url: str, redis_db: str,
                                                orbit_video: SyntheticVideo, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    cluster = Cluster.create(tmp_path, database_url=postgres_url, broker_url=redis_db, extra_env=FAST_RECOVERY)
    watch = Watch(cluster.base_url)
    try:
        cluster.serve(embedded_worker=False)
        cluster.worker("-Q", "cpu")
        trainer = cluster.worker("-Q", "cpu,gpu")
        watch.start()
        clients = [ApiClient(cluster.base_url, f"fault{i}") for i in range(2)]
        scenes = [(c, c.upload(orbit_video.path, outputs="splat_cloud,model", save="20", total=120))
                  for c in clients for _ in range(2)]
        started = time.monotonic()
        first_client, first = scenes[0]

        # 1. kill -9 the worker that trains, mid-training; another takes over and resumes
        first_client.wait(first, until=lambda p: p.get("step") == "train" and p["current_position"] >= 25,
                          timeout=600, cluster=cluster)
        _training_worker(trainer)
        killed = time.monotonic()
        cluster.worker("-Q", "cpu,gpu")
        # 2. Redis restarts while stages wait in it: the messages are gone, the reaper must notice
        redis_down = _restart_redis()
        # 3. PostgreSQL restarts while the workers heartbeat and the API is polled
        pg_down = _restart_postgres()

        for client, scene_id in scenes:
            final = client.wait(scene_id, timeout=900, cluster=cluster)
            assert final["state"] == "done", (final, cluster.logs())
        total = time.monotonic() - started
        engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            rows = conn.execute(select(Output.scene_id, Output.output_type, Output.iteration, func.count())
                                .group_by(Output.scene_id, Output.output_type, Output.iteration)).all()
        engine.dispose()
        assert rows and all(count == 1 for *_, count in rows)
        assert len(rows) == len(scenes) * 2 * 2  # two output types at two saved iterations, each once
        assert watch.failures <= 3 and watch.longest_gap < 10, (watch.failures, watch.longest_gap)
        with capsys.disabled():
            print(f"\nfaults: {len(scenes)} scenes done in {total:.0f} s after kill -9 of the training worker "
                  f"({time.monotonic() - killed:.0f} s to the last scene), Redis restart {redis_down:.1f} s, "
                  f"PostgreSQL restart {pg_down:.1f} s; health polls failed {watch.failures}, longest gap "
                  f"{watch.longest_gap:.1f} s")
    finally:
        watch.stop.set()
        cluster.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 160 MiB tmpfs mounted where ``Cluster.create(tmp_path)`` puts the data dir (its logs stay beside it,
    on the real disk); root only, skipped where mounting is not allowed."""
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_data_disk_fails_the_scene_clearly(tmp_path: Path, small_disk: Path, postgres_url: str,
                                                  redis_db: str, orbit_video: SyntheticVideo) -> None:
    cluster = Cluster.create(tmp_path, database_url=postgres_url, broker_url=redis_db, extra_env=FAST_RECOVERY)
    assert cluster.data_dir == small_disk
    try:
        cluster.serve(embedded_worker=False)
        cluster.worker("-Q", "cpu,gpu")
        client = ApiClient(cluster.base_url, "fulldisk")
        scene_id = client.upload(orbit_video.path, outputs="splat_cloud,point_cloud,video", save="20", total=60)
        client.wait(scene_id, until=lambda p: p.get("step") == "train", timeout=600, cluster=cluster)
        filler = small_disk / "filler"
        with filler.open("wb") as f:  # leave a few MiB: below what a checkpoint or an export needs
            free = shutil.disk_usage(small_disk).free
            f.write(b"\0" * max(0, free - 4 * 1024 * 1024))
        final = client.wait(scene_id, timeout=600, cluster=cluster)
        assert final["state"] == "failed", final
        assert "disk space" in final["message"], final
        assert client.http.get("/health").status_code == 200
        assert client.http.get(f"/user/scene/metadata/{scene_id}").status_code == 200
        filler.unlink()
        scenes_dir = cluster.data_dir / "scenes" / scene_id
        assert not list(scenes_dir.rglob("*.part")), "a partial file was left behind"
    finally:
        cluster.stop()
