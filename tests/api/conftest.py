"""Fixtures for the API tests: the real app on SQLite and on PostgreSQL, users with tokens, tiny videos.

The databases are the root conftest's (``database_url``): migrated once per session, emptied for each test.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from tests.support.api_client import Api, ApiFactory, TestClient, make_settings
from tests.support.videos import encode_audio, encode_video
from vidscene.api import create_app, security


@pytest.fixture(autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2id with minimal cost parameters: the production ones (64 MiB, 3 passes) cost 0.1-0.5 s per hash
    on the 2-core CI machine and dominate the run. test_security.py checks the production parameters."""
    previous = security.use_password_hasher(PasswordHash((Argon2Hasher(time_cost=1, memory_cost=64,
                                                                        parallelism=1),)))
    yield
    security.use_password_hasher(previous)


@pytest.fixture
def db_url(database_url: str) -> str:
    """A migrated, empty database on each supported backend (``database_url``; the API tests' name for it)."""
    return database_url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only, for the tests whose subject is not the database (memory, schema fuzzing)."""
    path = tmp_path / "vidscene-sqlite.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def api_factory(tmp_path: Path, db_url: str) -> Iterator[ApiFactory]:
    """Build an ``Api`` on this test's database; keyword arguments override ``Settings`` fields."""
    clients: list[TestClient] = []

    def build(*, enqueue: Callable[[int], None] | None = None, record: bool = True, **overrides: Any) -> Api:
        settings = make_settings(tmp_path / f"data{len(clients)}", db_url, **overrides)
        enqueued: list[int] = []
        hook = enqueue if enqueue is not None else (enqueued.append if record else None)
        app = create_app(settings, enqueue=hook)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Api(client=client, app=app, settings=settings, enqueued=enqueued)

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(api_factory: ApiFactory) -> Api:
    return api_factory()


@pytest.fixture
def auth(api: Api) -> dict[str, str]:
    return api.user()[1]


# ---- media --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def mp4_bytes(media_dir: Path) -> bytes:
    return encode_video(media_dir / "tiny.mp4").read_bytes()


@pytest.fixture(scope="session")
def mkv_bytes(media_dir: Path) -> bytes:
    return encode_video(media_dir / "tiny.mkv", codec="mjpeg", pix_fmt="yuvj420p").read_bytes()


@pytest.fixture(scope="session")
def webm_bytes(media_dir: Path) -> bytes:
    return encode_video(media_dir / "tiny.webm", codec="libvpx-vp9").read_bytes()


@pytest.fixture(scope="session")
def wav_bytes(media_dir: Path) -> bytes:
    return encode_audio(media_dir / "tone.wav").read_bytes()
