"""A real S3-compatible server for the tests: moto's standalone server (``moto[server]`` from PyPI) on a free
loopback port, in a process of its own, and buckets made fresh for each test."""

from __future__ import annotations

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
