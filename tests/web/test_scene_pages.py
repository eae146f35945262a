"""Scene list and scene page in a real browser, on scenes whose outputs are seeded straight into the database
and storage the way the job engine leaves them: live progress, thumbnails, the 3D viewer's pixels, the video,
chunked downloads compared byte for byte with the API, and deleting a scene."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Locator, Page

from tests.web.browser_helpers import (
    PASSWORD,
    Browser,
    WebServer,
    api_register,
    canvas_pixels,
    drawn_fraction,
    make_mp4,
    make_point_ply,
    make_splat,
    seed_scene,
    set_job_progress,
    unique_username,
    wait_for_drawn_canvas,
)
from vidscene.db.models import utcnow

pytestmark = pytest.mark.browser

MiB = 1024 * 1024


def _log_in(browser: Browser, username: str) -> None:
    browser.goto("#/login")
    page = browser.page
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your scenes").wait_for()


def _card(browser: Browser, scene_id: str) -> Locator:
    return browser.page.locator(f'li.scene-card[data-scene-id="{scene_id}"]')


def _view_changes(page: Page, action: Callable[[], None], attempts: int = 3) -> bool:
    """Whether ``action`` visibly moves the view; repeated a few times, since on a busy machine software
    rendering may draw only a frame or two while a key is held."""
    before = canvas_pixels(page)
    for _ in range(attempts):
        action()
        if np.abs(canvas_pixels(page) - before).mean() > 2:
            return True
    return False


def test_scene_list_live_progress_viewer_downloads_and_delete(browser: Browser, server: WebServer,
                                                                tmp_path: Path) -> None:
    page = browser.page
    username = unique_username("bob")
    api = api_register(server.base_url, username)

    splat_1000 = make_splat(8_000, seed=0)
    splat_500 = make_splat(3_000, seed=1)
    checkpoint = np.random.default_rng(7).bytes(MiB + MiB // 2)  # the download takes two Range chunks
    make_mp4(tmp_path / "render.mp4")
    video = (tmp_path / "render.mp4").read_bytes()
    done_id = seed_scene(server, username, name="Garden bench", outputs={
        "splat_cloud": {500: splat_500, 1000: splat_1000}, "video": {1000: video},
        "model": {1000: checkpoint}, "point_cloud": {},
    })
    running_id = seed_scene(server, username, name="Kitchen", outputs={"splat_cloud": {}}, state="processing",
                            stage="train", position=300, size=1000, eta_seconds=150)
    queued_id = seed_scene(server, username, name="Queued one", outputs={"video": {}}, state="queued",
                           stage=None, thumbnail=False)
    failed_id = seed_scene(server, username, name="Blurry", outputs={"video": {}}, state="failed", stage="sfm",
                           message="Could not find camera poses: too few sharp frames.")

    _log_in(browser, username)
    for scene_id in (done_id, running_id, queued_id, failed_id):
        _card(browser, scene_id).wait_for()
    done, running = _card(browser, done_id), _card(browser, running_id)
    done.get_by_role("link", name="Garden bench").wait_for()
    done.locator(".badge", has_text="Done").wait_for()
    running.locator(".badge", has_text="Processing").wait_for()
    running.get_by_text("Training · 300 / 1000 · about 3 min left").wait_for()
    _card(browser, queued_id).get_by_text(re.compile(r"Waiting in queue: \d+ of \d+")).wait_for()
    _card(browser, failed_id).get_by_text("Could not find camera poses").wait_for()
    # The bar shows the server's percent for the stage.
    expected = api.get(f"/user/scene/progress/{running_id}").json()["percent"]
    assert float(running.locator("progress").get_attribute("value") or "nan") == pytest.approx(expected)
    # Thumbnails are fetched with the token and really decode.
    page.wait_for_function(
        "id => { const img = document.querySelector(`li[data-scene-id='${id}'] img.thumb`);"
        " return img && img.complete && img.naturalWidth > 0; }", arg=done_id)
    browser.screenshot("scenes")

    # Progress moves without reloading the page.
    page.evaluate("window.__sameDocument = true")
    set_job_progress(server, running_id, current_position=800, eta_seconds=40, updated_at=utcnow())
    running.get_by_text("Training · 800 / 1000 · about 40 s left").wait_for(timeout=10_000)
    set_job_progress(server, running_id, state="done", stage="export", stage_done="export", finished_at=utcnow())
    running.locator(".badge", has_text="Done").wait_for(timeout=10_000)
    assert page.evaluate("window.__sameDocument === true"), "the page must update in place"

    # The scene page: viewer draws the splat, the video plays, the picker switches iteration.
    done.get_by_role("link", name="Garden bench").click()
    page.get_by_role("heading", name="Garden bench", level=1).wait_for()
    img = wait_for_drawn_canvas(page, minimum=0.05)
    assert drawn_fraction(img) > 0.05, "the viewer canvas stayed blank"
    colours = np.unique((img // 32).reshape(-1, 3), axis=0)
    assert len(colours) > 10, "a coloured ball and floor should draw many distinct colours"
    points = page.get_by_test_id("viewer").get_attribute("data-points")
    assert points == "8000"
    page.wait_for_function("() => { const v = document.querySelector('video');"
                           " return v && v.readyState >= 1 && v.duration > 0; }")
    browser.screenshot("scene")

    # Orbit: dragging across the canvas turns the view. (A smaller window keeps software rendering quick.)
    page.set_viewport_size({"width": 640, "height": 720})
    box = page.locator(".viewer-canvas").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def drag() -> None:
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 150, cy + 30, steps=4)
        page.mouse.up()

    assert _view_changes(page, drag), "dragging in orbit mode must move the camera"

    # Fly: with the canvas focused, W moves the camera forward.
    page.get_by_role("radio", name="Fly").check()
    page.locator(".viewer-canvas").focus()

    def forward() -> None:
        page.keyboard.down("w")
        page.wait_for_timeout(1000)
        page.keyboard.up("w")

    assert _view_changes(page, forward), "W in fly mode must move the camera"
    page.get_by_role("radio", name="Orbit").check()
    page.set_viewport_size({"width": 1280, "height": 860})

    picker = page.get_by_label("Iteration", exact=True)
    assert picker.locator("option").all_inner_texts() == ["500", "1,000 (latest)"]
    picker.select_option("500")
    page.wait_for_function("() => document.querySelector('[data-testid=viewer]').dataset.points === '3000'")
    assert drawn_fraction(wait_for_drawn_canvas(page, minimum=0.02)) > 0.02

    # Downloads go through the metadata's 1 MiB chunks; the saved file equals the API's bytes.
    meta = api.get(f"/user/scene/metadata/{done_id}").json()["resources"]
    assert meta["model"]["1000"]["chunks"] == 2
    page.get_by_text("Not produced").first.wait_for()  # the requested point cloud was never produced
    requested_ranges: list[str] = []
    page.on("request", lambda req: requested_ranges.append(req.headers.get("range", ""))
            if "/user/scene/output/model/" in req.url else None)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download Checkpoint (.ckpt), iteration 1000").click()
    saved = Path(download_info.value.path()).read_bytes()
    full = api.get(f"/user/scene/output/model/{done_id}", params={"iteration": 1000})
    assert full.status_code == 200
    assert saved == full.content == checkpoint
    assert download_info.value.suggested_filename.endswith(".ckpt")
    assert requested_ranges == [f"bytes=0-{MiB - 1}", f"bytes={MiB}-{len(checkpoint) - 1}"]
    page.get_by_role("progressbar", name="Download of Checkpoint (.ckpt), iteration 1000").wait_for()

    # The splat shown in the viewer is downloaded from the same bytes the API serves.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download Splat cloud (.splat), iteration 1000").click()
    assert Path(download_info.value.path()).read_bytes() == splat_1000
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download Rendered video (.mp4), iteration 1000").click()
    assert Path(download_info.value.path()).read_bytes() == video

    # Delete, behind a confirmation.
    page.get_by_role("button", name="Delete scene…").click()
    dialog = page.get_by_role("dialog", name="Delete this scene?")
    dialog.get_by_role("button", name="Delete scene").click()
    page.get_by_role("heading", name="Your scenes").wait_for()
    _card(browser, running_id).wait_for()
    assert _card(browser, done_id).count() == 0
    assert api.get(f"/user/scene/metadata/{done_id}").status_code == 404
    assert done_id not in api.get("/user/scene/history").json()["resources"]

    browser.console.assert_clean()


def test_point_cloud_scene_uses_the_point_viewer(browser: Browser, server: WebServer) -> None:
    """A TensoRF scene has a plain PLY point cloud (no gaussians); the viewer draws it as points."""
    page = browser.page
    username = unique_username("carol")
    api_register(server.base_url, username)
    scene_id = seed_scene(server, username, name="Density points", mode="tensorf", total_iterations=300,
                          save_iterations=(300,), outputs={"point_cloud": {300: make_point_ply(20_000)}})
    _log_in(browser, username)
    _card(browser, scene_id).get_by_role("link", name="Density points").click()
    img = wait_for_drawn_canvas(page, minimum=0.01)
    assert drawn_fraction(img) > 0.01
    assert page.get_by_test_id("viewer").get_attribute("data-points") == "20000"
    browser.console.assert_clean()


def test_unknown_scene_shows_not_found(browser: Browser, server: WebServer) -> None:
    page = browser.page
    username = unique_username("dave")
    api_register(server.base_url, username)
    browser.console.expect("status of 404")
    _log_in(browser, username)
    browser.goto("#/scene/does-not-exist")
    page.get_by_role("heading", name="Scene not found").wait_for()
    browser.console.assert_clean()
