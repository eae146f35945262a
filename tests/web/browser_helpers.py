"""Helpers for the browser tests: the built web app, a real ``vidscene serve`` process on loopback with a
temporary data dir, Debian's headless Chromium driven by Playwright, and helpers that seed finished scenes
straight into the database and storage (so the pages can be checked without waiting for training)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, ViewportSize

from tests.e2e.harness import Cluster
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
PASSWORD = "correct horse battery"


def unavailable(message: str) -> None:
    """A missing prerequisite fails in CI (``make test`` installs it) and skips on a laptop."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


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
    downloads_dir: Path

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


def open_browser(pw: Any, base_url: str, tmp_path: Path) -> Iterator[Browser]:
    """A fresh profile per test (``--user-data-dir`` is what launch_persistent_context passes)."""
    profile = tmp_path / "chromium-profile"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    context = pw.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport=DESKTOP, accept_downloads=True, downloads_path=str(downloads),
    )
    context.set_default_timeout(20_000)
    page = context.pages[0] if context.pages else context.new_page()
    console = ConsoleLog()
    console.attach(page)
    try:
        yield Browser(page=page, console=console, base_url=base_url, downloads_dir=downloads)
    finally:
        context.close()


# ---- API helpers (the tests' view of the truth) ----


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


# ---- seeded outputs ----


def make_splat(n: int, seed: int = 0) -> bytes:
    """A real antimatter15 ``.splat``: a colourful ball of gaussians around the origin plus a floor.

    32 bytes per gaussian: position 3 x f32, scale 3 x f32, RGBA u8, rotation quaternion (w, x, y, z) as
    u8 ``q * 128 + 128``. Positions use the pipeline's world (-y up), so the floor is at +y.
    """
    rng = np.random.default_rng(seed)
    n_ball = n * 3 // 4
    n_floor = n - n_ball
    direction = rng.normal(size=(n_ball, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    ball = direction * rng.uniform(0.9, 1.0, size=(n_ball, 1))
    floor = np.column_stack([rng.uniform(-2.5, 2.5, n_floor), np.full(n_floor, 1.05), rng.uniform(-2.5, 2.5, n_floor)])
    position = np.concatenate([ball, floor]).astype(np.float32)
    scale = np.full((n, 3), 0.045, dtype=np.float32)
    scale[n_ball:, 1] = 0.005
    ball_rgb = np.clip(0.5 + 0.5 * direction, 0, 1) * 255
    checker = ((np.floor(floor[:, 0] * 2) + np.floor(floor[:, 2] * 2)) % 2)[:, None]
    floor_rgb = np.where(checker > 0, [[230, 230, 230]], [[60, 60, 70]])
    rgba = np.concatenate([np.concatenate([ball_rgb, floor_rgb]), np.full((n, 1), 235)], axis=1)
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    rec = np.empty(n, dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("q", "u1", 4)])
    rec["p"] = position
    rec["s"] = scale
    rec["c"] = np.clip(rgba, 0, 255).astype(np.uint8)
    rec["q"] = np.clip(quat * 128 + 128, 0, 255).astype(np.uint8)
    data = rec.tobytes()
    assert len(data) == 32 * n
    return data


def splat_as_spz(splat: bytes, path: Path) -> bytes:
    """The same gaussians as a ``.splat``, written by the pipeline's SPZ writer (SH degree 0, as the ``.splat``
    has no more), so a page can be checked on both formats of one scene."""
    from vidscene.pipeline.export.spz import write_spz

    rec = np.frombuffer(splat, dtype=[("p", "<f4", 3), ("s", "<f4", 3), ("c", "u1", 4), ("q", "u1", 4)])
    rgba = rec["c"].astype(np.float64) / 255
    alpha = np.clip(rgba[:, 3], 1 / 512, 1 - 1 / 512)
    sh_dc = (rgba[:, :3] - 0.5) / 0.28209479177387814  # the 3DGS colour of SH band 0
    write_spz(path, rec["p"].astype(np.float64), np.log(np.maximum(rec["s"].astype(np.float64), 1e-8)),
              (rec["q"].astype(np.float64) - 128) / 128, np.log(alpha / (1 - alpha)), sh_dc[:, None, :])
    return path.read_bytes()


def make_point_ply(n: int, seed: int = 1) -> bytes:
    """A plain coloured point cloud PLY (what a TensoRF scene exports), not gaussians."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3)).astype(np.float32)
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    colors = np.clip((0.5 + 0.5 * pts) * 255, 0, 255).astype(np.uint8)
    rec = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    rec["r"], rec["g"], rec["b"] = colors[:, 0], colors[:, 1], colors[:, 2]
    header = "\n".join([
        "ply", "format binary_little_endian 1.0", f"element vertex {n}",
        "property float x", "property float y", "property float z",
        "property uchar red", "property uchar green", "property uchar blue", "end_header",
    ]) + "\n"
    return header.encode("ascii") + rec.tobytes()


def make_mp4(path: Path, frames: int = 24, size: tuple[int, int] = (160, 120)) -> None:
    from vidscene.pipeline.export.video import write_mp4

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]

    def frame(i: int) -> np.ndarray:
        img = np.zeros((h, w, 3), dtype=np.uint8)
        img[..., 0] = (xx * 255 // w + i * 8) % 256
        img[..., 1] = yy * 255 // h
        img[..., 2] = 128 + 100 * ((xx // 20 + yy // 20 + i) % 2)
        return img

    write_mp4((frame(i) for i in range(frames)), path, fps=12)


def make_jpeg(path: Path) -> None:
    from PIL import Image

    yy, xx = np.mgrid[0:180, 0:320]
    img = np.stack([xx * 255 // 320, yy * 255 // 180, np.full_like(xx, 160)], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=85)


@dataclass(frozen=True)
class SeededOutput:
    output_type: str
    iteration: int
    data: bytes


def seed_scene(server: WebServer, username: str, *, name: str, mode: str = "gaussian",
               outputs: dict[str, dict[int, bytes]] | None = None, total_iterations: int = 1000,
               save_iterations: tuple[int, ...] = (500, 1000), state: str = "done", stage: str | None = "export",
               position: int = 0, size: int = 0, eta_seconds: int | None = None, message: str = "",
               thumbnail: bool = True, capture: dict[str, Any] | bool = True) -> str:
    """Insert a scene with its job and outputs the way the job engine leaves them, and write the files.

    ``capture``: the capture check's report (``capture.json``) as given; True writes a good one when the
    scene is past its frames stage, as the engine does; False writes none (a scene older than the check)."""
    from sqlalchemy import select

    from vidscene.db.models import Job, Output, Scene, User, utcnow
    from vidscene.db.session import make_engine, make_sessionmaker, write_session
    from vidscene.storage import Storage

    outputs = outputs or {}
    storage = Storage(server.data_dir)
    scene_id = secrets.token_urlsafe(16)
    files = storage.scene(scene_id)
    files.create()
    if thumbnail:
        make_jpeg(files.thumbnail)
    past_frames = state == "done" or (state != "queued" and stage not in (None, "frames"))
    if capture is True and past_frames:
        capture = capture_report(sfm=stage != "frames")
    if isinstance(capture, dict):
        write_capture_report(server, scene_id, capture)
    rows: list[tuple[str, int, str, int]] = []
    for output_type, by_iteration in outputs.items():
        for iteration, data in by_iteration.items():
            path = files.output_path(output_type, iteration)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            rows.append((output_type, iteration, str(path.relative_to(files.root)), len(data)))
    engine = make_engine(server.database_url)
    try:
        with write_session(make_sessionmaker(engine)) as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            now = utcnow()
            session.add(Scene(id=scene_id, user_id=user.id, name=name, training_mode=mode,
                              output_types=list(outputs) or ["video"], save_iterations=list(save_iterations),
                              total_iterations=total_iterations, preset="preview",
                              video_filename="upload/video.mp4", video_info={}))
            session.flush()
            session.add(Job(scene_id=scene_id, state=state, stage=stage,
                            stage_done="export" if state == "done" else None, current_position=position,
                            current_size=size, eta_seconds=eta_seconds, message=message,
                            error_code=1 if state == "failed" else 0,
                            started_at=None if state == "queued" else now,
                            finished_at=now if state in ("done", "failed", "cancelled") else None))
            for output_type, iteration, relpath, nbytes in rows:
                session.add(Output(scene_id=scene_id, output_type=output_type, iteration=iteration,
                                   relpath=relpath, size=nbytes))
    finally:
        engine.dispose()
    return scene_id


def capture_report(frames: int = 48, fps: float = 8.0, *, sfm: bool = True, blurred: tuple[int, ...] = (),
                   unplaced: tuple[int, ...] = (), moving: dict[int, float] | None = None,
                   problems: list[dict[str, Any]] | None = None, stage: str | None = None) -> dict[str, Any]:
    """A capture check report as ``pipeline.capture_check`` writes it: ``frames`` kept frames every 3rd source
    frame at ``fps``; positions (0-based, in the kept frames) in ``blurred``/``unplaced``/``moving`` mark them."""
    moving = moving or {}
    problems = problems or []
    rows = [{"index": 3 * i, "time_s": round(i / fps, 3), "sharpness": 0.2 if i in blurred else 1.0 + 0.05 * (i % 3),
             "brightness": 120.0, "registered": (i not in unplaced) if sfm else None,
             "moving_fraction": moving.get(i, 0.0)} for i in range(frames)]
    errors = any(p["severity"] == "error" for p in problems)
    return {"verdict": "refused" if errors else "usable" if problems else "good",
            "stage": stage or ("sfm" if sfm else "frames"), "problems": problems, "frames": rows,
            "coverage": {"frames": frames, "duration_s": rows[-1]["time_s"] if rows else 0.0}}


def write_capture_report(server: WebServer, scene_id: str, report: dict[str, Any]) -> None:
    """Where the server reads it (``Storage.scene(id).capture_report``), as tests/api/test_scene_read.py does."""
    import json

    from vidscene.storage import Storage

    Storage(server.data_dir).scene(scene_id).capture_report.write_text(json.dumps(report))


def set_job_progress(server: WebServer, scene_id: str, **values: Any) -> None:
    """Move a seeded job along, as a worker's heartbeat would."""
    from sqlalchemy import update

    from vidscene.db.models import Job
    from vidscene.db.session import make_engine, make_sessionmaker, write_session

    engine = make_engine(server.database_url)
    try:
        with write_session(make_sessionmaker(engine)) as session:
            session.execute(update(Job).where(Job.scene_id == scene_id).values(**values))
    finally:
        engine.dispose()


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
