"""Fixtures for the browser tests: the built web app, a real ``vidscene serve`` process on loopback with a
temporary data dir, and Debian's headless Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    CHROMIUM,
    REPO,
    WEB_DIST,
    Browser,
    WebServer,
    launch_chromium,
    make_server,
    open_browser,
)
from tests.support.services import unavailable


@pytest.fixture(scope="session")
def web_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built app; built with the set-up script when missing (``make test`` has built it already).

    Under pytest-xdist every worker asks; a lock in the run's shared temporary directory (the parent of each
    worker's own) lets one build while the others wait, instead of two builds emptying each other's dist."""
    with (tmp_path_factory.getbasetemp().parent / "web-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (WEB_DIST / "index.html").is_file():
            if shutil.which("npm") is None:
                unavailable("the web app is not built and npm is missing (run scripts/build-web.sh)")
            subprocess.run(["bash", str(REPO / "scripts" / "build-web.sh")], check=True, timeout=600)
    return WEB_DIST


@pytest.fixture(scope="module")
def server(web_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """The API and web app without a worker: uploads stay queued, finished scenes are seeded directly."""
    srv = make_server(tmp_path_factory.mktemp("web-server")).start(worker=False)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the session (a launch costs seconds); tests get contexts of it."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (run scripts/install-chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = launch_chromium(pw, tmp_path_factory.mktemp("downloads"))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser(chromium: Any, server: WebServer) -> Iterator[Browser]:
    """A fresh Chromium profile (context) on the module's server; console errors are collected for each test."""
    yield from open_browser(chromium, server.base_url)
