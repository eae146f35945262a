"""Clients of the API: the app in process (``Api`` over Starlette's ``TestClient``, and ASGI calls), and a
running server over loopback (``ApiClient``), which speaks the public API exactly as the web client does (JWT,
multipart upload, progress polling, metadata-driven 1 MiB Range downloads)."""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning
from starlette.types import ASGIApp, Message

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its TestClient and warns (an error under this project's
    # filterwarnings) when it falls back to httpx; httpx works the same for these tests.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient as TestClient  # re-exported for the test modules

from vidscene.api import create_app
from vidscene.config import Settings
from vidscene.db.migrate import upgrade

if TYPE_CHECKING:
    from tests.support.cluster import Cluster

PASSWORD = "correct horse battery"
CHUNK = 1024 * 1024  # the web client's download chunk


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


ApiFactory = Callable[..., Api]


def asgi_scope(method: str = "GET", path: str = "/", query: bytes = b"",
               headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it, for calling ASGI pieces directly."""
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
            "root_path": "", "headers": headers or [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}


def run_async(func: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """``anyio.run(func, *args)`` on a thread of its own: the session's Chromium (Playwright's sync API) keeps
    an asyncio loop running in the main thread once a browser test has run in this process, and a second
    loop may not start there ("Already running asyncio in this thread")."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(anyio.run, func, *args).result()


def call_asgi(app: ASGIApp, scope: dict[str, Any]) -> list[Message]:
    """Run one request without a body through ``app``; returns what it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        await app(scope, receive, send)

    run_async(main)
    return sent


def api_over_store(tmp_path: Path, url: str, **overrides: object) -> Iterator[Api]:
    """The API (a fresh SQLite database, its own data dir) with ``storage_url=url`` and ``overrides``."""
    database = f"sqlite:///{tmp_path / 'vidscene.db'}"
    upgrade(database)
    settings = make_settings(tmp_path / "data", database, storage_url=url, **overrides)
    app = create_app(settings, enqueue=None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, app=app, settings=settings)


class ApiClient:
    def __init__(self, base_url: str, username: str, password: str = PASSWORD) -> None:
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


def api_login(base_url: str, username: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    r = client.post("/user/account/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['jwtToken']}"
    return client


def api_register(base_url: str, username: str, password: str = PASSWORD) -> httpx.Client:
    r = httpx.post(f"{base_url}/user/account/register", json={"username": username, "password": password},
                   timeout=30)
    assert r.status_code == 201, r.text
    return api_login(base_url, username, password)


def unique_username(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(3)}"
