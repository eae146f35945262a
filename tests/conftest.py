"""Fixtures shared by every test package: real databases (SQLite and the local PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.s3 import S3Server, running_s3_server
from tests.support.services import temporary_postgres_database, unreachable

REDIS_URL = os.environ.get("VIDSCENE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("VIDSCENE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with temporary_postgres_database("vidscene_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated-ready empty database on each backend the service supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'vidscene.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        unreachable("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    from kombu import Connection

    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        unreachable("RabbitMQ", exc)
    return AMQP_URL


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server for the whole session (``tests/support/s3.py``); each test makes its own bucket."""
    with running_s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server
