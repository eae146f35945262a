"""The browser tests' world: the built web app, a real ``vidscene serve`` process on loopback with a temporary
data dir (``WebServer``), Debian's headless Chromium driven by Playwright, and what the viewer's canvas drew.
Finished scenes are seeded with ``scenes.seed_scene`` (so the pages can be checked without waiting for
training), from the sample files in ``outputs``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Page, ViewportSize

from tests.support.api_client import PASSWORD
from tests.support.cluster import Cluster
from vidscene.db.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
WEB_DIST = REPO / "vidscene" / "web" / "dist"
SCREENS = REPO / "bench" / "screens"
CHROMIUM = Path(os.environ.get("VIDSCENE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class WebServer:
    """One ``vidscene serve`` process; the API and the web app on the same origin, as users get them.

    A thin layer over the end-to-end harness's ``Cluster`` (process group, health wait, logs), adding the
    migrated database that the seeding helpers write into before the server starts.
    """

    cluster: Cluster

    @property
    def base_url(self) -> str:
        return self.cluster.base_url

    @property
    def data_dir(self) -> Path:
        return self.cluster.data_dir

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'vidscene.db'}"

    def start(self, *, worker: bool) -> WebServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(self.database_url)
        self.cluster.serve(embedded_worker=worker)
        return self

    def stop(self) -> None:
        self.cluster.stop()

    def logs(self) -> str:
        return self.cluster.logs()


def make_server(tmp: Path, **extra_env: str) -> WebServer:
    env = {"VIDSCENE_JWT_SECRET": "browser-test-secret-not-for-production-0123456789",
           "VIDSCENE_LEASE_SECONDS": "20", **extra_env}
    return WebServer(Cluster.create(tmp, extra_env=env))


def own_server(tmp: Path, *, worker: bool, **extra_env: str) -> Iterator[WebServer]:
    """A server of a test's own (for a fixture to ``yield from``), where the shared one would not do: its own
    queue, limits or worker."""
    srv = make_server(tmp, **extra_env).start(worker=worker)
    try:
        yield srv
    finally:
        srv.stop()


class ConsoleLog:
    """Console errors and uncaught exceptions of a page; the app must produce none on the happy path."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _on_console(self, msg: Any) -> None:
        if msg.type == "error":
            text = f"{msg.text} ({msg.location.get('url', '')})"
            if any(fragment in text for fragment in self.expected):
                return
            self.errors.append(text)

    def expect(self, fragment: str) -> None:
        """Tolerate a console error containing ``fragment`` (Chromium logs every refused request)."""
        self.expected.append(fragment)

    def assert_clean(self) -> None:
        assert self.errors == [], "console errors:\n" + "\n".join(self.errors)


@dataclass
class Browser:
    page: Page
    console: ConsoleLog
    base_url: str

    def goto(self, route: str = "#/") -> None:
        self.page.goto(f"{self.base_url}/{route}")

    def screenshot(self, name: str) -> None:
        """Desktop and phone-sized screenshots of the current page under bench/screens/ (not committed)."""
        SCREENS.mkdir(parents=True, exist_ok=True)
        original = self.page.viewport_size or DESKTOP
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.wait_for_timeout(400)
            self.page.screenshot(path=str(SCREENS / f"{name}-{label}.png"), full_page=True)
            # A page that scrolls sideways on a phone is broken layout, whatever it looks like.
            if label == "phone":
                overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{name}: page is {overflow}px wider than a phone screen"
        self.page.set_viewport_size(original)
        self.page.wait_for_timeout(200)


def launch_chromium(pw: Any, downloads: Path) -> Any:
    """Debian's Chromium, headless, launched once per session: each test gets a fresh context of it
    (``open_browser``), which isolates cookies, storage and cache like a new profile without a new browser."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                              downloads_path=str(downloads))


def open_browser(chromium: Any, base_url: str) -> Iterator[Browser]:
    """A fresh context (a new incognito profile: no cookies, storage or cache) of the session's browser."""
    context = chromium.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    console = ConsoleLog()
    console.attach(page)
    try:
        yield Browser(page=page, console=console, base_url=base_url)
    finally:
        context.close()


def log_in(browser: Browser, username: str) -> None:
    """Log in through the app's form, as a user does (the password is ``api_client.PASSWORD``)."""
    browser.goto("#/login")
    page = browser.page
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your scenes").wait_for()


# ---- pixels ----


def canvas_pixels(page: Any, selector: str = ".viewer-canvas") -> np.ndarray:
    """What the viewer canvas shows, from a real screenshot of it (not a readback the app could fake)."""
    import io

    from PIL import Image

    # The viewer draws on demand; wait until it has settled so the screenshot is of a still picture.
    page.wait_for_selector(f"{selector}[data-idle=true]", timeout=30_000)
    png = page.locator(selector).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def drawn_fraction(img: np.ndarray, background: tuple[int, int, int] = (0x10, 0x13, 0x1A)) -> float:
    """Share of pixels that differ clearly from the viewer's clear colour."""
    diff = np.abs(img - np.array(background, dtype=np.int16)).sum(axis=-1)
    return float((diff > 40).mean())


def wait_for_drawn_canvas(page: Any, minimum: float = 0.05, timeout: float = 30.0) -> np.ndarray:
    page.wait_for_selector('[data-testid="viewer"][data-status="ready"]', timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    img = canvas_pixels(page)
    while drawn_fraction(img) < minimum and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        img = canvas_pixels(page)
    return img


def throttle_uploads(page: Any, bytes_per_second: int) -> Any:
    """Slow the browser's uploads down (Chrome DevTools network emulation); returns the session to undo it."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": bytes_per_second})
    return cdp


def unthrottle(cdp: Any) -> None:
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


@contextmanager
def small_chunk_server(tmp: Path, chunk: int) -> Iterator[WebServer]:
    """A server whose web app uploads in ``chunk``-byte PATCHes, so that a throttled upload of a small video is
    many requests a reload can fall between."""
    srv = make_server(tmp, VIDSCENE_UPLOAD_CHUNK_BYTES=str(chunk)).start(worker=False)
    try:
        yield srv
    finally:
        srv.stop()
