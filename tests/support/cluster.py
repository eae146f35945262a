"""The end-to-end cluster: ``vidscene serve`` / ``vidscene worker`` subprocesses (``server.Proc``) on loopback
sharing a data dir (or, with an object store, each in a data dir of its own), database and broker;
``api_client.ApiClient`` speaks to it as the web client does."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import Proc, free_port, wait_healthy


@dataclass
class Cluster:
    """One API server plus any number of workers sharing a data dir, database and broker."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    # Each process in a data dir of its own (``data_dir`` then ``data_dir-1``, ...): with an object store
    # they must share nothing but the database, the broker and the bucket.
    separate_dirs: bool = False

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

    def data_dir_of(self, index: int) -> Path:
        """The data dir of the ``index``-th process started."""
        if not self.separate_dirs or index == 0:
            return self.data_dir
        return self.data_dir.with_name(f"{self.data_dir.name}-{index}")

    def _env(self) -> dict[str, str]:
        return {**self.env, "VIDSCENE_DATA_DIR": str(self.data_dir_of(len(self.procs)))}

    def serve(self, *, embedded_worker: bool) -> Proc:
        args = ["serve", "--port", str(self.port), "--worker" if embedded_worker else "--no-worker"]
        proc = Proc(args, self._env(), self.data_dir.parent / f"serve-{len(self.procs)}.log").start()
        self.procs.append(proc)
        wait_healthy(self.base_url, proc.proc, logs=proc.tail)
        return proc

    def worker(self, *args: str) -> Proc:
        proc = Proc(["worker", *args], self._env(), self.data_dir.parent / f"worker-{len(self.procs)}.log").start()
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name} ---\n{p.tail()}" for p in self.procs)


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
