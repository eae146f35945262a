"""An upload interrupted by a reload is listed on the upload page with its file, how much was sent, its
settings and when it started. "Resume" asks for the file again (refusing another one), then sends the rest
from the server's offset with the stored settings; "Discard" deletes the upload on the server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api_client import api_register, unique_username
from tests.support.browser import Browser, WebServer, log_in, small_chunk_server, throttle_uploads, unthrottle
from tests.support.videos import make_mp4

pytestmark = pytest.mark.browser

CHUNK = 16 * 1024


@pytest.fixture(scope="module")
def server(web_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with small_chunk_server(tmp_path_factory.mktemp("web-unfinished"), CHUNK) as srv:
        yield srv





def _start_and_reload(browser: Browser, video: Path, scene_name: str) -> tuple[Any, str]:
    """Starts an upload of ``video`` with the Standard preset, reloads the page a quarter of the way through,
    and returns the throttling session and the upload's URL."""
    page = browser.page
    browser.goto("#/new")
    page.get_by_role("heading", name="New scene").wait_for()
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Scene name (optional)").fill(scene_name)
    page.get_by_role("radio", name="Standard").check()
    cdp = throttle_uploads(page, 24_000)
    with page.expect_response(lambda r: r.request.method == "POST" and "/user/scene/uploads" in r.url) as created:
        page.get_by_role("button", name="Upload and start").click()
    url = created.value.headers["location"]
    page.wait_for_function(
        "() => { const p = document.querySelector('.upload-progress progress');"
        " return p && p.value > 20 && p.value < 60; }", timeout=30_000)
    page.reload()
    return cdp, url


def _offset(api: httpx.Client, url: str) -> int:
    r = api.head(url, headers={"Tus-Resumable": "1.0.0"})
    assert r.status_code == 200, r.status_code
    return int(r.headers["upload-offset"])


def test_a_reloaded_upload_is_listed_and_resumes_with_one_click(browser: Browser, server: WebServer,
                                                               tmp_path: Path) -> None:
    page = browser.page
    username = unique_username("una")
    api = api_register(server.base_url, username)
    video = tmp_path / "garden walk.mp4"
    make_mp4(video, frames=96, size=(640, 480))
    size = video.stat().st_size
    other = tmp_path / "other.mp4"
    make_mp4(other, frames=12)
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while uploading: yes
    log_in(browser, username)
    cdp, url = _start_and_reload(browser, video, "Garden, resumed")
    page.goto(f"{server.base_url}/#/new")

    listed = page.get_by_role("region", name="Unfinished uploads")
    item = listed.locator("li.unfinished-upload")
    item.get_by_text(re.compile(r"\d+% sent")).wait_for()
    text = item.inner_text()
    held = _offset(api, url)
    assert 0 < held < size
    assert "garden walk.mp4" in text and "Standard" in text and "“Garden, resumed”" in text
    assert re.search(r"started (just now|1 min ago)", text), text
    sent = re.search(r"(\d+)% sent", text)
    assert sent and 0 < int(sent.group(1)) < 100, text  # what the server held when the page asked
    browser.screenshot("upload-unfinished")

    requests: list[tuple[str, dict[str, str]]] = []
    page.on("request", lambda req: requests.append((req.method, dict(req.headers)))
            if "/user/scene/uploads" in req.url else None)
    # Another file is refused; the same one resumes.
    with page.expect_file_chooser() as chooser:
        item.get_by_role("button", name="Resume").click()
    chooser.value.set_files(str(other))
    item.get_by_text("choose garden walk.mp4").wait_for()
    assert not any(m in ("PATCH", "POST") for m, _ in requests)
    with page.expect_file_chooser() as chooser:
        item.get_by_role("button", name="Resume").click()
    chooser.value.set_files(str(video))
    # The form shows what is sent, and says it resumed; the list no longer offers it.
    page.get_by_text("Resumed: the server already had").wait_for()
    assert page.get_by_label("Scene name (optional)").input_value() == "Garden, resumed"
    assert page.get_by_role("radio", name="Standard").is_checked()
    listed.wait_for(state="detached")
    unthrottle(cdp)
    page.get_by_role("heading", name="Garden, resumed").wait_for(timeout=30_000)

    methods = [m for m, _ in requests]
    assert "POST" not in methods, methods
    assert methods[0] == "HEAD", methods
    first = int(next(h for m, h in requests if m == "PATCH")["upload-offset"])
    assert first >= held > 0
    (scene_id,) = api.get("/user/scene/history").json()["resources"]
    assert api.get(f"/user/scene/progress/{scene_id}").json()["preset"] == "standard"
    assert (server.data_dir / "scenes" / scene_id / "upload" / "video.mp4").read_bytes() == video.read_bytes()
    # Nothing is left to resume, in the list or in tus-js-client's storage.
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('tus::'))") == []
    assert page.evaluate("JSON.parse(localStorage.getItem('vidscene:unfinished-uploads') || '[]')") == []
    page.get_by_role("link", name="New scene").first.click()
    page.get_by_role("heading", name="New scene").wait_for()
    assert page.get_by_role("region", name="Unfinished uploads").count() == 0
    browser.console.assert_clean()


def test_discard_deletes_the_upload_on_the_server(browser: Browser, server: WebServer, tmp_path: Path) -> None:
    page = browser.page
    username = unique_username("dis")
    api = api_register(server.base_url, username)
    video = tmp_path / "discard me.mp4"
    make_mp4(video, frames=96, size=(640, 480))
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(browser, username)
    cdp, url = _start_and_reload(browser, video, "Not wanted")
    unthrottle(cdp)
    page.goto(f"{server.base_url}/#/new")
    item = page.get_by_role("region", name="Unfinished uploads").locator("li.unfinished-upload")
    item.get_by_text(re.compile(r"\d+% sent")).wait_for()
    assert "discard me.mp4" in item.inner_text()
    assert _offset(api, url) > 0

    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        item.get_by_role("button", name="Discard").click()
    assert deleted.value.status == 204
    page.get_by_role("region", name="Unfinished uploads").wait_for(state="detached")
    assert api.head(url, headers={"Tus-Resumable": "1.0.0"}).status_code == 404
    assert list((server.data_dir / "tmp").glob("tus-*.part")) == []
    assert api.get("/user/scene/history").json()["resources"] == []
    # Gone from the browser too: a reload lists nothing.
    page.reload()
    page.get_by_role("heading", name="New scene").wait_for()
    page.get_by_label("Video file").wait_for()
    assert page.get_by_role("region", name="Unfinished uploads").count() == 0
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('tus::'))") == []
    browser.console.assert_clean()


def test_an_upload_the_server_forgot_leaves_the_list(browser: Browser, server: WebServer, tmp_path: Path) -> None:
    """Expired or deleted elsewhere: the HEAD answers 404 or 410, and the entry disappears by itself."""
    page = browser.page
    username = unique_username("gone")
    api = api_register(server.base_url, username)
    video = tmp_path / "forgotten.mp4"
    make_mp4(video, frames=96, size=(640, 480))
    page.on("dialog", lambda dialog: dialog.accept())
    browser.console.expect("status of 404")  # the HEAD that finds it gone
    log_in(browser, username)
    cdp, url = _start_and_reload(browser, video, "Forgotten")
    unthrottle(cdp)
    assert api.delete(url, headers={"Tus-Resumable": "1.0.0"}).status_code == 204
    page.reload()  # the page asks the server about each listed upload as it opens
    page.get_by_label("Video file").wait_for()
    page.wait_for_function("() => JSON.parse(localStorage.getItem('vidscene:unfinished-uploads') || '[]').length === 0")
    assert page.get_by_role("region", name="Unfinished uploads").count() == 0
    browser.console.assert_clean()
