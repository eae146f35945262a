"""Share links in a real browser: the share page opens without login and draws the SPZ, its embed mode renders
inside an iframe of another origin while the app's own pages refuse to be framed there, a revoked link shows
the not-found page, and the owner makes, copies and revokes links on the scene page."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.api_client import PASSWORD, api_register, unique_username
from tests.support.browser import Browser, WebServer, canvas_pixels, drawn_fraction, wait_for_drawn_canvas
from tests.support.outputs import make_splat, splat_as_spz
from tests.support.scenes import seed_scene
from tests.support.synthetic import look_at_rotation
from tests.support.videos import make_mp4
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.export.initial_view import initial_view
from vidscene.storage import Storage

pytestmark = pytest.mark.browser

DEAD_LINK = "This link does not exist or was revoked"


def human_bytes(n: int) -> str:
    """What the app's formatBytes writes, to find a size in the page."""
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, 0
    while value >= 1024 and unit < 3:
        value, unit = value / 1024, unit + 1
    return f"{value:.{1 if value < 10 else 0}f} {['KiB', 'MiB', 'GiB', 'TiB'][unit]}"


@dataclass(frozen=True)
class Shared:
    username: str
    scene: str
    token: str
    spz: bytes
    api: httpx.Client  # logged in as the owner


@pytest.fixture(scope="module")
def shared(server: WebServer, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    """One finished scene with an SPZ, its .splat, a video and a checkpoint, and a live share link to it."""
    tmp = tmp_path_factory.mktemp("shared")
    username = unique_username("sue")
    api = api_register(server.base_url, username)
    splat = make_splat(6_000, seed=2)
    spz = splat_as_spz(splat, tmp / "scene.spz")
    make_mp4(tmp / "render.mp4")
    scene = seed_scene(server, username, name="Shared garden", outputs={
        "spz": {1000: spz}, "splat_cloud": {1000: splat}, "video": {1000: (tmp / "render.mp4").read_bytes()},
        "model": {1000: b"secret weights"},
    })
    centre = np.array([0.6, -0.5, -2.6])  # the first capture camera: in front of the ball, a little above it
    R = look_at_rotation(centre, np.zeros(3))
    camera = Camera(width=320, height=240, fx=250, fy=250, cx=160, cy=120, R=R, t=-R @ centre, image_name="1.png")
    Storage(server.data_dir).scene(scene).initial_view.write_text(json.dumps(initial_view(camera)))
    token = api.post(f"/user/scene/share/{scene}").json()["token"]
    return Shared(username=username, scene=scene, token=token, spz=spz, api=api)


def test_share_page_opens_without_login_and_draws_the_spz(browser: Browser, server: WebServer,
                                                         shared: Shared) -> None:
    page, token, spz = browser.page, shared.token, shared.spz
    outputs: list[str] = []
    page.on("request", lambda req: outputs.append(req.url) if "/output/" in req.url else None)
    page.goto(f"{server.base_url}/s/{token}")
    page.get_by_role("heading", name="Shared garden", level=1).wait_for()
    assert drawn_fraction(wait_for_drawn_canvas(page, minimum=0.05)) > 0.05, "the shared scene drew nothing"
    assert page.get_by_test_id("viewer").get_attribute("data-points") == "6000"
    # It opens at the owner's first camera, and goes back there as the owner's page does.
    assert page.get_by_role("button", name="First camera").count() == 1
    # The viewer took the SPZ (through the token, never the owner's routes), not the .splat beside it.
    assert any(f"/public/{token}/output/spz" in u for u in outputs), outputs
    assert not any("splat_cloud" in u or "/user/" in u for u in outputs), outputs
    page.wait_for_function("() => { const v = document.querySelector('video');"
                           " return v && v.readyState >= 1 && v.duration > 0; }")
    # No account controls, no login.
    for name in ("Log in", "Register", "Log out", "Account", "Scenes"):
        assert page.get_by_role("link", name=name, exact=True).count() == 0, name
        assert page.get_by_role("button", name=name, exact=True).count() == 0, name
    assert page.evaluate("localStorage.getItem('vidscene.token')") is None

    # Every public format with its size; the checkpoint is never offered.
    row = page.locator("tr", has=page.get_by_role("button", name="Download SPZ (.spz), iteration 1000"))
    assert human_bytes(len(spz)) in row.inner_text()
    assert page.get_by_role("button", name="Download Splat cloud (.splat), iteration 1000").count() == 1
    assert page.get_by_role("button", name=re.compile("Checkpoint")).count() == 0
    with page.expect_download() as download:
        page.get_by_role("button", name="Download SPZ (.spz), iteration 1000").click()
    assert Path(download.value.path()).read_bytes() == spz
    browser.screenshot("share-page")
    browser.console.assert_clean()


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second web server on another port (another origin), serving whatever the test writes into its folder."""
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_embed_renders_in_another_sites_iframe_and_the_app_refuses_to(browser: Browser, server: WebServer,
                                                                      shared: Shared,
                                                                      other_origin: tuple[str, Path]) -> None:
    page, token = browser.page, shared.token
    origin, root = other_origin
    (root / "host.html").write_text(
        "<!doctype html><title>someone's blog</title><link rel=icon href='data:,'><h1>My scan</h1>"
        f'<iframe id="embed" src="{server.base_url}/s/{token}?embed=1" width="640" height="360"></iframe>'
        f'<iframe id="app" src="{server.base_url}/#/login" width="640" height="360"></iframe>')
    refused: list[str] = []
    page.on("console", lambda msg: refused.append(msg.text) if "frame" in msg.text.lower() else None)
    browser.console.expect("violates the following Content Security Policy directive: \"frame-ancestors 'none'\"")
    page.goto(f"{origin}/host.html")

    embed = page.frame_locator("#embed")
    embed.locator('[data-testid="viewer"][data-status="ready"]').wait_for(timeout=30_000)
    frame = page.locator("#embed").element_handle().content_frame()
    assert frame is not None
    img = canvas_pixels(frame)
    assert drawn_fraction(img) > 0.05, "the embedded viewer drew nothing"
    assert img.shape[1] > 600, "the viewer fills the frame"  # 640 wide, less nothing
    link = embed.get_by_role("link", name="Shared garden · open in vidscene")
    assert link.get_attribute("href") == f"{server.base_url}/s/{token}"
    assert embed.locator("h1, .topbar, table").count() == 0, "embed mode shows the viewer only"

    # The app's own page in the other iframe is refused by the browser (frame-ancestors 'none'):
    # no part of it runs there.
    app_frame = page.locator("#app").element_handle().content_frame()
    assert app_frame is not None
    page.wait_for_timeout(1000)
    assert not app_frame.url.startswith(server.base_url), app_frame.url
    assert app_frame.locator("#app, .topbar, form").count() == 0
    assert any("frame-ancestors" in text for text in refused), refused
    browser.console.assert_clean()


def test_a_revoked_link_shows_the_not_found_page(browser: Browser, server: WebServer,
                                                 shared: Shared) -> None:
    api, scene = shared.api, shared.scene
    token = api.post(f"/user/scene/share/{scene}").json()["token"]
    assert api.delete(f"/user/scene/share/{scene}/{token}").status_code == 200
    browser.console.expect("404")
    page = browser.page
    for url in (f"/s/{token}", f"/s/{token}?embed=1", "/s/never-was-a-token-0123456789ab"):
        page.goto(f"{server.base_url}{url}")
        page.get_by_role("heading", name=DEAD_LINK).wait_for()
        assert page.locator(".viewer-canvas").count() == 0
    browser.screenshot("share-dead-link")
    browser.console.assert_clean()


def test_owner_creates_copies_and_revokes_links(browser: Browser, server: WebServer,
                                                shared: Shared) -> None:
    page, base, scene, api = browser.page, server.base_url, shared.scene, shared.api
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    browser.goto("#/login")
    page.get_by_label("Username", exact=True).fill(shared.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your scenes").wait_for()
    browser.goto(f"#/scene/{scene}")
    panel = page.locator("section.shares")
    known = {s["token"] for s in api.get(f"/user/scene/shares/{scene}").json()["shares"]}
    for token in known:  # the links made earlier are listed once the panel has loaded them
        panel.locator(f'tr[data-token="{token}"]').wait_for()
    assert panel.locator("tbody tr").count() == len(known)

    expiry = panel.get_by_label("Expires after (days, optional)")
    expiry.fill("0")
    panel.get_by_role("button", name="Create link").click()
    panel.get_by_role("alert").get_by_text("whole number of days").wait_for()
    expiry.fill("7")
    panel.get_by_role("button", name="Create link").click()
    panel.get_by_text("Link created").wait_for()
    shares = api.get(f"/user/scene/shares/{scene}").json()["shares"]
    (created,) = [s for s in shares if s["token"] not in known]
    assert created["expires"] is not None
    url = f"{base}/s/{created['token']}"
    row = panel.locator(f'tr[data-token="{created["token"]}"]')
    assert row.get_by_role("link", name=url).count() == 1
    assert "Never" not in row.inner_text()

    row.get_by_role("button", name="Copy link").click()
    panel.get_by_text("The link is copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == url
    row.get_by_role("button", name="Copy embed code").click()
    panel.get_by_text("The embed code is copied").wait_for()
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet.startswith(f'<iframe src="{url}?embed=1"') and snippet.endswith("</iframe>")
    browser.screenshot("share-panel")

    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()  # revoking asks first
    page.get_by_role("dialog").wait_for(state="hidden")
    assert len(api.get(f"/user/scene/shares/{scene}").json()["shares"]) == len(known) + 1  # cancelled: kept
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke link").click()
    panel.get_by_text("Link revoked").wait_for()
    row.wait_for(state="detached")
    left = {s["token"] for s in api.get(f"/user/scene/shares/{scene}").json()["shares"]}
    assert left == known
    assert api.get(f"/public/{created['token']}/metadata").status_code == 404
    browser.console.assert_clean()
