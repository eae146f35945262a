"""A resumable upload survives a reload: the page is reloaded while the video is on its way, the user picks
the same file again, and the upload continues from what the server already has (tus HEAD, then PATCH from
that offset), ending in one scene."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_client import PASSWORD, api_register, unique_username
from tests.support.browser import Browser, WebServer, small_chunk_server, throttle_uploads
from tests.support.videos import make_mp4

pytestmark = pytest.mark.browser

CHUNK = 16 * 1024


@pytest.fixture(scope="module")
def server(web_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with small_chunk_server(tmp_path_factory.mktemp("web-resume"), CHUNK) as srv:
        yield srv



def _fill_form(page: Any, video: Path) -> None:
    page.get_by_role("heading", name="New scene").wait_for()
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Scene name (optional)").fill("Survives a reload")


def test_a_reloaded_upload_resumes_from_the_servers_offset(browser: Browser, server: WebServer,
                                                           tmp_path: Path) -> None:
    page = browser.page
    username = unique_username("rae")
    api = api_register(server.base_url, username)
    video = tmp_path / "reload.mp4"
    make_mp4(video, frames=96, size=(640, 480))
    size = video.stat().st_size
    assert size > 6 * CHUNK
    requests: list[tuple[str, dict[str, str]]] = []
    page.on("request", lambda req: requests.append((req.method, dict(req.headers)))
            if "/user/scene/uploads" in req.url else None)
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while uploading: yes

    browser.goto("#/login")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New scene").first.click()
    _fill_form(page, video)
    assert page.get_by_text("choose the same video with the same settings").count() == 1
    cdp = throttle_uploads(page, 24_000)
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_function(
        "() => { const p = document.querySelector('.upload-progress progress');"
        " return p && p.value > 25 && p.value < 60; }", timeout=30_000)
    page.reload()
    before_reload = len(requests)
    assert [m for m, _ in requests].count("POST") == 1
    assert api.get("/user/scene/history").json()["resources"] == []

    # Still logged in; the same file and settings again.
    page.goto(f"{server.base_url}/#/new")
    _fill_form(page, video)
    page.get_by_role("button", name="Upload and start").click()
    # Still throttled: the form says it resumed while the rest is on its way.
    page.get_by_text("Resumed: the server already had").wait_for()
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    page.get_by_role("heading", name="Survives a reload").wait_for(timeout=30_000)

    after = requests[before_reload:]
    methods = [m for m, _ in after]
    assert "POST" not in methods, f"a second upload was created: {methods}"
    assert methods[0] == "HEAD", methods
    patches = [headers for m, headers in after if m == "PATCH"]
    first_offset = int(patches[0]["upload-offset"])
    # What the reload sent is only the rest: the bytes the server had stayed there.
    assert 0 < first_offset < size, first_offset
    sent_after_reload = size - first_offset
    assert sent_after_reload < size

    (scene_id,) = api.get("/user/scene/history").json()["resources"]
    assert page.url.endswith(f"#/scene/{scene_id}")
    stored = server.data_dir / "scenes" / scene_id / "upload" / "video.mp4"
    assert stored.read_bytes() == video.read_bytes()
    assert list((server.data_dir / "tmp").glob("tus-*.part")) == []
    # Nothing left to resume in the browser: the finished upload's URL was forgotten.
    stored_urls = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('tus::'))")
    assert stored_urls == []
    browser.console.assert_clean()
