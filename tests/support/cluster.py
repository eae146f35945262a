"""Real processes for end-to-end tests: ``vidscene serve`` / ``vidscene worker`` subprocesses on loopback, and a
client that speaks the public API exactly as the web client does (JWT, multipart upload, progress polling,
metadata-driven 1 MiB Range downloads)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CHUNK = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A vidscene subprocess in its own process group, its output in a log file for post-mortems."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "vidscene", *self.args], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group (a Celery worker and its pool children)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, n: int = 80) -> str:
        """The last lines of the process's log, without the access log (progress polling floods it)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join([line for line in lines if "uvicorn.access" not in line][-n:])


@dataclass
class Cluster:
    """One API server plus any number of workers sharing a data dir, database and broker."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, tmp: Path, *, database_url: str = "", broker_url: str = "",
               extra_env: Mapping[str, str] | None = None) -> Cluster:
        data_dir = tmp / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDSCENE_")}
        env.update({"VIDSCENE_DATA_DIR": str(data_dir), "VIDSCENE_DATABASE_URL": database_url,
                    "VIDSCENE_BROKER_URL": broker_url, "VIDSCENE_LEASE_SECONDS": "8",
                    "VIDSCENE_HEARTBEAT_SECONDS": "2", "VIDSCENE_REAPER_INTERVAL_SECONDS": "2",
                    "VIDSCENE_JWT_SECRET": "test-secret-not-for-production-0123456789",
                    "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"})
        env.update(extra_env or {})
        return cls(data_dir=data_dir, env=env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, *, embedded_worker: bool) -> Proc:
        args = ["serve", "--port", str(self.port), "--worker" if embedded_worker else "--no-worker"]
        proc = Proc(args, self.env, self.data_dir.parent / f"serve-{len(self.procs)}.log").start()
        self.procs.append(proc)
        self.wait_healthy(proc)
        return proc

    def worker(self, *args: str) -> Proc:
        proc = Proc(["worker", *args], self.env, self.data_dir.parent / f"worker-{len(self.procs)}.log").start()
        self.procs.append(proc)
        return proc

    def wait_healthy(self, proc: Proc, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.proc is not None and proc.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{proc.tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not healthy after {timeout} s:\n{proc.tail()}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name} ---\n{p.tail()}" for p in self.procs)


class ApiClient:
    def __init__(self, base_url: str, username: str, password: str = "correct horse battery") -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        r = self.http.post("/user/account/register", json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        r = self.http.post("/user/account/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = f"Bearer {r.json()['jwtToken']}"

    def upload(self, video: Path, *, mode: str = "gaussian", outputs: str = "splat_cloud,point_cloud,video,model",
               save: str = "", total: int = 20, name: str = "test scene") -> str:
        with video.open("rb") as f:
            r = self.http.post("/user/scene/new", files={"file": (video.name, f, "video/mp4")},
                               data={"training_mode": mode, "output_types": outputs,
                                     "save_iterations": save or str(total), "total_iterations": str(total),
                                     "scene_name": name})
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def progress(self, scene_id: str) -> dict[str, Any]:
        r = self.http.get(f"/user/scene/progress/{scene_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait(self, scene_id: str, *, states: tuple[str, ...] = ("done", "failed", "cancelled"),
             timeout: float = 300, cluster: Cluster | None = None,
             history: list[dict[str, Any]] | None = None, until: Any = None) -> dict[str, Any]:
        """Poll progress until the scene reaches one of ``states`` (or ``until(progress)`` is true)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.progress(scene_id)
            if history is not None:
                history.append(last)
            if last.get("state") in states or (until is not None and until(last)):
                return last
            time.sleep(0.25)
        logs = cluster.logs() if cluster else ""
        raise AssertionError(f"scene {scene_id} still {last} after {timeout} s\n{logs}")

    def download(self, scene_id: str, output_type: str, iteration: int, meta: Mapping[str, Any]) -> bytes:
        """Reassemble a file from exactly ``chunks`` Range requests, as the web client does."""
        parts = []
        for i in range(meta["chunks"]):
            start = i * CHUNK
            end = start + (CHUNK if i < meta["chunks"] - 1 else meta["last_chunk_size"]) - 1
            r = self.http.get(f"/user/scene/output/{output_type}/{scene_id}", params={"iteration": iteration},
                              headers={"Range": f"bytes={start}-{end}"})
            assert r.status_code == 206, r.text
            assert r.headers["content-range"] == f"bytes {start}-{end}/{meta['size']}"
            parts.append(r.content)
        data = b"".join(parts)
        assert len(data) == meta["size"]
        return data


@contextmanager
def empty_redis_db(redis_url: str, number: int) -> Iterator[str]:
    """A Redis database of its own, emptied before and after (tests share the server with developers)."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + f"/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
