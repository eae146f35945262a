"""Helpers shared by the API tests (importable, unlike fixtures in conftest.py)."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.exceptions import StarletteDeprecationWarning
from starlette.types import ASGIApp, Message

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient and warns (an error under this project's
    # filterwarnings) when it falls back to httpx; httpx works the same for these tests.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient as TestClient  # re-exported for the test modules

from vidscene.config import Settings
from vidscene.db.session import make_engine, make_sessionmaker

PASSWORD = "correct horse battery"


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "jwt_secret": "test-secret-" + "x" * 60,
        "login_rate_limit": "5/minute",
        **overrides,
    }
    return Settings(**values)


@dataclass
class Api:
    """A running app with helpers for the steps most tests share."""

    client: TestClient
    app: FastAPI
    settings: Settings
    enqueued: list[int] = field(default_factory=list)

    def register(self, username: str | None = None, password: str = PASSWORD) -> str:
        username = username or f"user_{secrets.token_hex(4)}"
        resp = self.client.post("/user/account/register", json={"username": username, "password": password})
        assert resp.status_code == 201, resp.text
        return username

    def login(self, username: str, password: str = PASSWORD) -> str:
        resp = self.client.post("/user/account/login", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["jwtToken"]
        return token

    def user(self, password: str = PASSWORD) -> tuple[str, dict[str, str]]:
        """Register a fresh user; return its name and Authorization headers."""
        name = self.register(password=password)
        return name, {"Authorization": f"Bearer {self.login(name, password)}"}

    def new_scene(self, headers: dict[str, str], video: bytes, *, filename: str = "clip.mp4",
                  **fields: str) -> Any:
        data = {"training_mode": "gaussian", "output_types": "splat_cloud,video",
                "save_iterations": "100", "total_iterations": "200", **fields}
        return self.client.post("/user/scene/new", headers=headers, data=data,
                                 files={"file": (filename, video, "application/octet-stream")})

    def scene_id(self, headers: dict[str, str], video: bytes, **fields: str) -> str:
        resp = self.new_scene(headers, video, **fields)
        assert resp.status_code == 202, resp.text
        scene_id: str = resp.json()["id"]
        return scene_id


def files_under(directory: Path) -> list[Path]:
    """Every regular file below ``directory`` (the database files excluded)."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(("vidscene.db",
                                                                                            "jwt-secret")))


ApiFactory = Callable[..., Api]


@contextmanager
def open_db(url: str) -> Iterator[Session]:
    """A separate connection to the test database, as a worker or an operator would have."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


def asgi_scope(method: str = "GET", path: str = "/", query: bytes = b"",
               headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it, for calling ASGI pieces directly."""
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
            "root_path": "", "headers": headers or [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}


def call_asgi(app: ASGIApp, scope: dict[str, Any]) -> list[Message]:
    """Run one request without a body through ``app``; returns what it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        await app(scope, receive, send)

    anyio.run(main)
    return sent
