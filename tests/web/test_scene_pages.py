"""Scene list and scene page in a real browser, on scenes whose outputs are seeded straight into the database
and storage the way the job engine leaves them: live progress, thumbnails, the 3D viewer's pixels, the video,
chunked downloads compared byte for byte with the API, and deleting a scene."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, Route

from tests.support.api_client import api_register, unique_username
from tests.support.browser import (
    Browser,
    WebServer,
    canvas_pixels,
    drawn_fraction,
    log_in,
    open_browser,
    own_server,
    wait_for_drawn_canvas,
)
from tests.support.outputs import make_point_ply, make_splat
from tests.support.scenes import seed_scene, set_job_progress
from tests.support.videos import make_mp4
from vidscene.db.models import utcnow

pytestmark = pytest.mark.browser

MiB = 1024 * 1024


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

    log_in(browser, username)
    for scene_id in (done_id, running_id, queued_id, failed_id):
        _card(browser, scene_id).wait_for()
    done, running = _card(browser, done_id), _card(browser, running_id)
    done.get_by_role("link", name="Garden bench").wait_for()
    done.locator(".badge", has_text="Done").wait_for()
    running.locator(".badge", has_text="Processing").wait_for()
    running.get_by_text("Training · iteration 300 of 1,000 · about 3 min left").wait_for()
    _card(browser, queued_id).get_by_text(
        re.compile(r"Waiting in queue · (next in line|\d+ scenes? ahead)")).wait_for()
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
    # The time left follows the new estimate (40 s) smoothly, not in one jump (eta.ts; test_eta_display.py).
    running.get_by_text(re.compile(r"Training · iteration 800 of 1,000 · about \d+ (s|min) left")).wait_for(
        timeout=10_000)
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
    # The requested point cloud was never produced: a finished scene lists only the files it has.
    page.get_by_role("button", name="Download Checkpoint (.ckpt), iteration 1000").wait_for()
    assert page.get_by_role("button", name=re.compile("Download Point cloud")).count() == 0
    assert page.get_by_text("Not produced").count() == 0
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
    log_in(browser, username)
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
    log_in(browser, username)
    browser.goto("#/scene/does-not-exist")
    page.get_by_role("heading", name="Scene not found").wait_for()
    browser.console.assert_clean()


@pytest.fixture
def quiet_server(web_dist: Path, tmp_path: Path) -> Iterator[WebServer]:
    """A server of its own: the queue (every user's unfinished scenes) holds only this test's scenes."""
    yield from own_server(tmp_path / "srv", worker=False)


@pytest.fixture
def quiet_browser(chromium: Any, quiet_server: WebServer) -> Iterator[Browser]:
    yield from open_browser(chromium, quiet_server.base_url)


def test_progress_reads_in_units_steps_and_places_in_the_queue(quiet_browser: Browser,
                                                               quiet_server: WebServer) -> None:
    """Counters carry their units ("iteration 1,200 of 7,000", "frame 12 of 80", not "1200 / 7000"); the
    scene page shows the four steps with the current one marked; a queued scene with one scene ahead says so
    (``overall_position`` is 0-based: "Waiting in queue: 2 of 2" was the bug) and, since the one ahead is the
    user's own and has an estimate, when it should start."""
    browser, page, server = quiet_browser, quiet_browser.page, quiet_server
    username = unique_username("olga")
    api = api_register(server.base_url, username)
    training = seed_scene(server, username, name="Training now", outputs={"splat_cloud": {}}, state="processing",
                          stage="train", position=1200, size=7000, eta_seconds=150, total_iterations=7000,
                          save_iterations=(7000,))
    queued = seed_scene(server, username, name="Next up", outputs={"video": {}}, state="queued", stage=None,
                        thumbnail=False)
    frames = seed_scene(server, username, name="Reading frames", outputs={"video": {}}, state="processing",
                        stage="frames", position=12, size=80, thumbnail=False)
    progress = api.get(f"/user/scene/progress/{queued}").json()
    assert (progress["overall_position"], progress["overall_size"]) == (1, 3)

    log_in(browser, username)
    _card(browser, training).get_by_text("Training · iteration 1,200 of 7,000 · about 3 min left").wait_for()
    _card(browser, frames).get_by_text("Picking frames · frame 12 of 80").wait_for()
    queued_card = _card(browser, queued)
    queued_card.get_by_text("Waiting in queue · 1 scene ahead · starts in about 3 min").wait_for()
    assert "of 3" not in queued_card.inner_text() and "2 of" not in queued_card.inner_text()
    queued_card.get_by_text("Quick preview").wait_for()  # the preset it is processed with (progress `preset`)
    browser.screenshot("scenes-queue")

    _card(browser, training).get_by_role("link", name="Training now").click()
    page.get_by_role("heading", name="Training now", level=1).wait_for()
    steps = page.get_by_role("list", name="Processing steps")
    assert steps.locator(".step-label").all_inner_texts() == ["Frames", "Camera poses", "Training", "Export"]
    current = steps.locator('li[aria-current="step"]')
    assert current.count() == 1 and "Training" in current.inner_text()
    assert steps.locator("li[data-step-state=done]").count() == 2
    page.get_by_text("Training: iteration 1,200 of 7,000").wait_for()
    # 150 s: counted down between polls and smoothed towards the server's estimate (eta.ts)
    page.get_by_text(re.compile(r"About [23] min left")).wait_for()
    # The overall bar is the server's percent, not one the browser works out from the stage counters.
    overall = page.get_by_role("progressbar", name="Processing progress, overall")
    expected = api.get(f"/user/scene/progress/{training}").json()["percent"]
    assert float(overall.get_attribute("value") or "nan") == pytest.approx(expected)
    browser.screenshot("scene-training")

    browser.goto(f"#/scene/{queued}")
    page.get_by_role("heading", name="Next up", level=1).wait_for()
    page.get_by_text("Waiting in queue · 1 scene ahead · starts in about 3 min").wait_for()
    assert page.get_by_role("list", name="Processing steps").locator('li[aria-current="step"]').count() == 0
    browser.console.assert_clean()


def test_a_failed_scene_says_why_and_tries_again_with_other_settings(browser: Browser, server: WebServer) -> None:
    """A failed scene shows the server's reason without a full red bar that reads as 100%, lists no files that
    were never made, and offers the upload's settings again, prefilled from the scene; the retry is sent to
    the server and the page follows the new run. The name can be changed in place."""
    page = browser.page
    username = unique_username("pia")
    api = api_register(server.base_url, username)
    reason = "Could not find camera poses: too few sharp frames."
    failed = seed_scene(server, username, name="Blurry", outputs={"video": {}, "splat_cloud": {}}, state="failed",
                        stage="sfm", message=reason)
    log_in(browser, username)
    card = _card(browser, failed)
    card.get_by_text(reason).wait_for()
    assert card.locator("progress").count() == 0, "a failed scene has no progress to show"

    card.get_by_role("link", name="Blurry").click()
    page.get_by_role("heading", name="Blurry", level=1).wait_for()
    failure = page.get_by_role("region", name="Processing failed")
    failure.get_by_text(reason).wait_for()
    failure.get_by_text("Stopped at: Camera poses").wait_for()
    assert page.locator("progress").count() == 0
    assert page.get_by_text("Not produced").count() == 0
    assert page.get_by_role("heading", name="Downloads").count() == 0, "nothing was made, nothing to list"
    browser.screenshot("scene-failed")

    failure.get_by_role("button", name="Try again with other settings").click()
    form = page.get_by_role("form", name="Try again with other settings")
    assert form.get_by_label("Training mode").input_value() == "gaussian"
    assert form.get_by_label("Total iterations").input_value() == "1000"
    assert form.get_by_label("Save at iterations").input_value() == "500, 1000"
    ticked = form.locator("input[name=output_types]").evaluate_all(
        "els => els.filter(e => e.checked).map(e => e.value)")
    assert sorted(ticked) == ["splat_cloud", "video"]
    assert form.get_by_role("radio", name="Custom").is_checked()
    browser.screenshot("scene-retry")
    form.get_by_label("Total iterations").fill("800")
    form.get_by_label("Save at iterations").fill("400")
    with page.expect_request("**/user/scene/retry/*") as retry:
        form.get_by_role("button", name="Start again").click()
    assert retry.value.post_data_json == {"training_mode": "gaussian", "output_types": "splat_cloud,video",
                                          "save_iterations": "400,800", "total_iterations": "800"}, \
        "Custom settings leave the preset out (the server's default)"

    page.get_by_text("Waiting in queue").wait_for()
    assert page.get_by_role("region", name="Processing failed").count() == 0
    assert api.get(f"/user/scene/progress/{failed}").json()["state"] == "queued"
    meta = api.get(f"/user/scene/metadata/{failed}").json()["resources"]
    assert set(meta["video"]) == {"400", "800"}
    # The page follows the new run.
    set_job_progress(server, failed, state="processing", stage="train", current_position=100, current_size=800,
                     started_at=utcnow(), updated_at=utcnow())
    page.get_by_text("Training: iteration 100 of 800").wait_for(timeout=10_000)

    # Rename in place.
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Scene name").fill("Sharp at last")
    page.get_by_label("Scene name").press("Enter")
    page.get_by_role("heading", name="Sharp at last", level=1).wait_for()
    assert api.get(f"/user/scene/name/{failed}").json()["name"] == "Sharp at last"
    browser.console.assert_clean()


def test_scene_cards_show_the_date_and_the_processing_time(browser: Browser, server: WebServer) -> None:
    """Cards show when a scene was uploaded and, once done, how long processing took (progress's
    ``created_at``, ``started_at`` and ``finished_at``). One scene's times are set to known values in the
    server's answer, so the duration is exact; the other shows what the server itself sends."""
    page = browser.page
    username = unique_username("quinn")
    api_register(server.base_url, username)
    done = seed_scene(server, username, name="Timed", outputs={"video": {}})
    plain = seed_scene(server, username, name="Untimed", outputs={"video": {}})

    def with_times(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        if body.get("uuid") == done:
            body.update(created_at="2026-03-03T09:15:00Z", started_at="2026-03-03T09:16:00Z",
                        finished_at="2026-03-03T09:30:00Z")
        route.fulfill(response=response, json=body)

    page.route("**/user/scene/progress/*", with_times)
    log_in(browser, username)
    facts = _card(browser, done).locator(".scene-facts")
    facts.wait_for()
    assert re.fullmatch(r"Quick preview · .*2026.* · took 14 min", facts.inner_text()), facts.inner_text()
    untimed = _card(browser, plain).locator(".scene-facts").inner_text()
    assert re.fullmatch(r"Quick preview · .*\d{4}.* · took \d+ s", untimed), untimed
    browser.console.assert_clean()


def _portrait_thumbnail(server: WebServer, scene_id: str) -> None:
    """A portrait frame (9:16) with a red band along its top and a blue one along its bottom."""
    from vidscene.storage import Storage

    img = np.full((320, 180, 3), 128, dtype=np.uint8)
    img[:24] = (220, 30, 30)
    img[-24:] = (30, 30, 220)
    Image.fromarray(img).save(Storage(server.data_dir).scene(scene_id).thumbnail, quality=90)


def test_portrait_thumbnails_are_letterboxed_not_cropped(browser: Browser, server: WebServer) -> None:
    """A card's thumbnail shows the whole frame: a portrait video keeps its top and bottom (object-fit:
    contain in the card's 16:9 box), where cropping to fill the box would cut both bands off."""
    page = browser.page
    username = unique_username("rosa")
    api_register(server.base_url, username)
    scene_id = seed_scene(server, username, name="Tall", outputs={"video": {}})
    _portrait_thumbnail(server, scene_id)
    log_in(browser, username)
    page.wait_for_function(
        "id => { const img = document.querySelector(`li[data-scene-id='${id}'] img.thumb`);"
        " return img && img.complete && img.naturalWidth > 0; }", arg=scene_id)
    thumb = _card(browser, scene_id).locator("img.thumb")
    pixels = np.asarray(Image.open(io.BytesIO(thumb.screenshot())).convert("RGB"), dtype=np.int16)
    red = ((pixels[..., 0] > 170) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)).mean()
    blue = ((pixels[..., 2] > 170) & (pixels[..., 0] < 90) & (pixels[..., 1] < 90)).mean()
    assert red > 0.005 and blue > 0.005, f"the top or bottom of the frame was cropped (red {red}, blue {blue})"
    assert thumb.evaluate("el => getComputedStyle(el).objectFit") == "contain"
    browser.console.assert_clean()


def test_fly_mode_cannot_lose_the_scene(browser: Browser, server: WebServer) -> None:
    """Flying away (fast, backwards, for seconds) stops within a few scene radii, so the scene stays in view;
    Reset view brings the camera back."""
    page = browser.page
    username = unique_username("sven")
    api_register(server.base_url, username)
    scene_id = seed_scene(server, username, name="Ball", total_iterations=100, save_iterations=(100,),
                          outputs={"splat_cloud": {100: make_splat(4_000, seed=2)}})
    page.set_viewport_size({"width": 640, "height": 720})  # quick software rendering
    log_in(browser, username)
    browser.goto(f"#/scene/{scene_id}")
    start = drawn_fraction(wait_for_drawn_canvas(page, minimum=0.05))
    page.get_by_role("radio", name="Fly").check()
    page.locator(".viewer-canvas").focus()
    page.keyboard.down("Shift")
    page.keyboard.down("s")
    page.wait_for_timeout(6000)
    page.keyboard.up("s")
    page.keyboard.up("Shift")
    away = drawn_fraction(canvas_pixels(page))
    assert away > start / 8, f"the scene shrank to {away:.3f} of the view (from {start:.3f}): it was lost"
    distance = float(page.locator(".viewer-canvas").get_attribute("data-camera-distance") or "nan")
    assert distance <= 5.01, distance
    page.get_by_role("button", name="Reset view").click()
    page.wait_for_function("() => Number(document.querySelector('.viewer-canvas').dataset.cameraDistance) < 3")
    assert drawn_fraction(canvas_pixels(page)) > start * 0.8
    browser.console.assert_clean()
