"""Fixtures for the storage tests: a fresh bucket on the session's S3 server, the store over it, and the API
keeping its scenes there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_client import Api, api_over_store
from tests.support.s3 import PREFIX, S3Server
from vidscene.storage.s3 import S3Store


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The standard AWS settings for the test server, in this process's environment (boto3 reads them)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server.env


@pytest.fixture
def bucket(s3_server: S3Server, s3_env: dict[str, str]) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def store(bucket: str) -> S3Store:
    return S3Store(f"s3://{bucket}/pre")


@pytest.fixture
def s3_api(tmp_path: Path, bucket: str) -> Iterator[Api]:
    yield from api_over_store(tmp_path, f"s3://{bucket}/{PREFIX}")
