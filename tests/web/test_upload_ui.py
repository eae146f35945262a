"""The upload form in a real browser: presets, client-side checks that mirror the server's, the server's own
message when it refuses a file, the upload progress bar, and the scene it creates (kept queued: no worker);
and that the form is built from the server's options (GET /user/scene/options), or says why it cannot be."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Route

from tests.support.api_client import PASSWORD, api_register, unique_username
from tests.support.browser import Browser, WebServer, throttle_uploads, unthrottle
from tests.support.videos import make_mp4

pytestmark = pytest.mark.browser


def test_upload_form_checks_presets_progress_and_server_errors(browser: Browser, server: WebServer,
                                                               tmp_path: Path) -> None:
    page = browser.page
    username = unique_username("erin")
    api = api_register(server.base_url, username)
    browser.console.expect("status of 415")  # the deliberately fake video below

    browser.goto("#/login")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New scene").first.click()
    page.get_by_role("heading", name="New scene").wait_for()
    browser.screenshot("upload")

    submit = page.get_by_role("button", name="Upload and start")
    alert = page.get_by_role("alert")

    # Presets fill the fields; editing a field switches to Custom.
    page.get_by_role("radio", name="High quality").check()
    page.locator("summary", has_text="Training settings").click()
    assert page.get_by_label("Total iterations").input_value() == "30000"
    assert page.get_by_label("Save at iterations").input_value() == "7000, 15000, 30000"
    assert page.get_by_role("checkbox", name="Checkpoint (.ckpt)").is_checked()
    page.get_by_role("radio", name="Quick preview").check()
    # The server's preview budget for gaussian training (GET /user/scene/options), no longer a copy of its own.
    assert page.get_by_label("Total iterations").input_value() == "1500"
    assert page.get_by_label("Save at iterations").input_value() == "750, 1500"
    assert not page.get_by_role("checkbox", name="Checkpoint (.ckpt)").is_checked()

    # TensoRF has no splat cloud: the box is disabled and unticked.
    page.get_by_label("Training mode").select_option("tensorf")
    splat_box = page.get_by_role("checkbox", name="Splat cloud (.splat)")
    assert splat_box.is_disabled() and not splat_box.is_checked()
    assert page.get_by_role("radio", name="Custom").is_checked()
    page.get_by_label("Training mode").select_option("gaussian")
    assert not splat_box.is_disabled()
    splat_box.check()

    # Client-side checks, before any byte is sent.
    submit.click()
    alert.filter(has_text="Choose a video file").wait_for()
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a video")
    page.get_by_label("Video file").set_input_files(str(text_file))
    submit.click()
    alert.filter(has_text="does not look like a video").wait_for()

    video = tmp_path / "walkaround.mp4"
    make_mp4(video, frames=48, size=(320, 240))
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Total iterations").fill("100")
    page.get_by_label("Save at iterations").fill("50, 200")
    submit.click()
    alert.filter(has_text="200 is not between 1 and the total (100)").wait_for()
    page.get_by_label("Save at iterations").fill("50, x")
    submit.click()
    alert.filter(has_text='"x" is not a whole number').wait_for()
    page.get_by_label("Total iterations").fill("40000")
    page.get_by_label("Save at iterations").fill("50")
    submit.click()
    alert.filter(has_text="between 1 and 30000").wait_for()
    page.get_by_label("Total iterations").fill("100")
    page.get_by_label("Scene name (optional)").fill("x" * 201)
    assert len(page.get_by_label("Scene name (optional)").input_value()) == 200  # maxlength stops the 201st
    assert api.get("/user/scene/history").json()["resources"] == [], "nothing may have been uploaded yet"

    # What the client refuses, the server refuses too (the checks mirror each other).
    valid = {"training_mode": "gaussian", "output_types": "video", "save_iterations": "50",
             "total_iterations": "100", "scene_name": "ok"}
    for bad in ({"save_iterations": "50, 200"}, {"save_iterations": "50, x"}, {"total_iterations": "40000"},
                {"total_iterations": "0"}, {"scene_name": "x" * 201},
                {"training_mode": "tensorf", "output_types": "splat_cloud"}, {"output_types": "pictures"}):
        with video.open("rb") as f:
            r = api.post("/user/scene/new", files={"file": ("walkaround.mp4", f, "video/mp4")},
                         data={**valid, **bad})
        assert r.status_code == 400, (bad, r.status_code, r.text)

    # A file that passes the client's check but is no video: the server's message is shown.
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x01 definitely not a video " * 500)
    with fake.open("rb") as f:
        refused = api.post("/user/scene/new", files={"file": ("fake.mp4", f, "video/mp4")},
                           data={"training_mode": "gaussian", "output_types": "video", "save_iterations": "50",
                                 "total_iterations": "100"})
    assert refused.status_code == 415
    page.get_by_label("Video file").set_input_files(str(fake))
    page.get_by_label("Scene name (optional)").fill("Fake")
    submit.click()
    alert.filter(has_text=refused.json()["error"]).wait_for()

    # A real upload, throttled so the progress bar is seen part-way.
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Scene name (optional)").fill("Walk around the bench")
    page.get_by_role("checkbox", name="Point cloud (.ply)").check()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 20, "downloadThroughput": -1,
        "uploadThroughput": max(20_000, video.stat().st_size // 3),
    })
    submit.click()
    bar = page.get_by_role("progressbar", name="Upload progress")
    bar.wait_for()
    page.wait_for_function(
        "() => { const p = document.querySelector('.upload-progress progress');"
        " return p && p.value > 0 && p.value < 100; }", timeout=15_000)
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    # The app goes to the new scene, which waits in the queue (this server has no worker).
    page.get_by_role("heading", name="Walk around the bench").wait_for()
    page.get_by_text("Waiting in queue").wait_for()
    ids = api.get("/user/scene/history").json()["resources"]
    assert len(ids) == 1
    scene_id = ids[0]
    assert page.url.endswith(f"#/scene/{scene_id}")
    meta = api.get(f"/user/scene/metadata/{scene_id}").json()["resources"]
    assert set(meta) == {"splat_cloud", "video", "point_cloud"}
    assert set(meta["video"]) == {"50", "100"}
    progress = api.get(f"/user/scene/progress/{scene_id}").json()
    assert progress["state"] == "queued"
    browser.screenshot("scene-queued")

    browser.console.assert_clean()


def _open_new_scene(browser: Browser, username: str) -> None:
    page = browser.page
    browser.goto("#/login")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New scene").first.click()
    page.get_by_role("heading", name="New scene").wait_for()


def test_upload_form_is_built_from_the_servers_options(browser: Browser, server: WebServer) -> None:
    """Every mode, output and preset the server lists is in the form with the server's labels, extensions and
    numbers, and a mode offers exactly the outputs the server says it makes."""
    page = browser.page
    options: dict[str, Any] = httpx.get(f"{server.base_url}/user/scene/options", timeout=30).json()
    outputs = {o["name"]: o for o in options["output_types"]}
    limits = options["limits"]
    username = unique_username("gus")
    api_register(server.base_url, username)
    _open_new_scene(browser, username)
    page.locator("summary", has_text="Training settings").click()

    default = next(p for p in options["presets"] if p["name"] == options["default_preset"])
    assert page.get_by_role("radio", name=default["label"]).is_checked()
    assert page.get_by_label("Total iterations").get_attribute("max") == str(limits["max_total_iterations"])
    scene_name = page.get_by_label("Scene name (optional)")
    assert scene_name.get_attribute("maxlength") == str(limits["max_scene_name"])
    assert scene_name.get_attribute("placeholder") == limits["default_scene_name"]

    mode_select = page.get_by_label("Training mode")
    assert mode_select.locator("option").evaluate_all("els => els.map(e => [e.value, e.textContent])") == [
        [m["name"], m["label"]] for m in options["training_modes"]]
    boxes = page.locator("input[name=output_types]")
    assert boxes.evaluate_all("els => els.map(e => e.value)") == list(outputs)
    for mode in options["training_modes"]:
        name = mode["name"]
        mode_select.select_option(name)
        assert boxes.evaluate_all("els => els.filter(e => !e.disabled).map(e => e.value)") == mode["outputs"]
        for output in mode["outputs"]:
            label = f"{outputs[output]['label']} ({outputs[output]['extensions'][name]})"
            assert page.get_by_role("checkbox", name=label, exact=True).is_enabled(), label
        for preset in options["presets"]:
            page.get_by_role("radio", name=preset["label"]).check()
            card = page.locator("label.preset", has_text=preset["label"])
            card.get_by_text(f"{preset['iterations'][name]:,} iterations").wait_for()
            card.get_by_text(preset["description"]).wait_for()
            assert mode_select.input_value() == name, "a preset fills in the chosen mode, it does not change it"
            assert page.get_by_label("Total iterations").input_value() == str(preset["iterations"][name])
            assert page.get_by_label("Save at iterations").input_value() == ", ".join(
                str(i) for i in preset["save_iterations"][name])
            ticked = boxes.evaluate_all("els => els.filter(e => e.checked).map(e => e.value)")
            assert sorted(ticked) == sorted(preset["outputs"][name]), (name, preset["name"])

    browser.console.assert_clean()


def test_upload_form_says_when_the_options_cannot_be_loaded(browser: Browser, server: WebServer) -> None:
    """Without the server's options there is no form to build: the page says so, and "Try again" asks again."""
    page = browser.page
    browser.console.expect("status of 503")
    username = unique_username("hal")
    api_register(server.base_url, username)

    def refuse(route: Route) -> None:
        route.fulfill(status=503, json={"error": "The catalogue is offline."})

    page.route("**/user/scene/options", refuse)
    _open_new_scene(browser, username)
    page.get_by_role("alert").filter(
        has_text="Could not load the training options from the server: The catalogue is offline.").wait_for()
    assert page.get_by_label("Training mode").count() == 0, "no form may be built from guesses"
    browser.screenshot("upload-options-unavailable")

    page.unroute("**/user/scene/options")
    page.get_by_role("button", name="Try again").click()
    page.get_by_label("Video file").wait_for()
    assert page.get_by_role("radio", name="Quick preview").is_checked()
    assert page.get_by_role("alert").count() == 0

    browser.console.assert_clean()




def _upload_percent(page: Any) -> float:
    value = page.locator(".upload-progress progress").first.get_attribute("value")
    return float(value or 0)


def _upload_requests(page: Any) -> list[str]:
    """The methods of the resumable upload's requests as the page sends them (tus: POST creates the upload,
    PATCH sends bytes, DELETE terminates it)."""
    methods: list[str] = []
    page.on("request", lambda req: methods.append(req.method) if "/user/scene/uploads" in req.url else None)
    return methods


def test_cancel_upload_stops_it_and_creates_no_scene(browser: Browser, server: WebServer, tmp_path: Path) -> None:
    """Cancel mid-upload: the upload stops, no second upload starts and no scene is created, and the form says
    it was cancelled. (The bug: Cancel and Upload shared one button element, so the click that cancelled also
    submitted the form again once the button had turned back into "Upload and start".)"""
    page = browser.page
    username = unique_username("ivy")
    api = api_register(server.base_url, username)
    _open_new_scene(browser, username)
    video = tmp_path / "long-walk.mp4"
    make_mp4(video, frames=48, size=(320, 240))
    uploads = _upload_requests(page)
    answers: list[tuple[str, int]] = []
    page.on("response", lambda res: answers.append((res.request.method, res.status))
            if "/user/scene/uploads" in res.url else None)

    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Scene name (optional)").fill("Never uploaded")
    # ~40 s for the whole file: on a busy machine the Cancel click may take seconds to land, and it must
    # still land mid-upload (a finished upload rightly becomes a scene).
    cdp = throttle_uploads(page, max(2_000, video.stat().st_size // 40))
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_function(
        "() => { const p = document.querySelector('.upload-progress progress');"
        " return p && p.value > 3 && p.value < 40; }", timeout=30_000)
    page.get_by_role("button", name="Cancel upload").click()
    unthrottle(cdp)

    # Long enough for a restarted upload of this small file to finish and be turned into a scene.
    page.wait_for_timeout(3000)
    assert uploads.count("POST") == 1, f"Cancel must not start another upload: {uploads}"
    # Cancel terminates the upload on the server (tus DELETE), and nothing is sent after it.
    assert uploads[-1] == "DELETE", uploads
    assert ("DELETE", 204) in answers, answers
    # Chromium's upload throttling slows the progress the page sees, not always the bytes on a loopback
    # socket: the one body may already have reached the server when Cancel lands. What the bug did (a second
    # upload, a second scene) must never happen.
    assert len(api.get("/user/scene/history").json()["resources"]) <= 1, "a cancelled upload created scenes"
    page.get_by_role("status").filter(has_text="Upload cancelled").wait_for()
    assert page.url.endswith("#/new")
    assert page.get_by_role("button", name="Upload and start").is_enabled()
    assert page.get_by_label("Video file").is_enabled()
    assert page.locator(".upload-progress").count() == 0
    browser.console.assert_clean()


def test_cancel_while_the_upload_is_being_created_leaves_nothing_on_the_server(browser: Browser, server: WebServer,
                                                                               tmp_path: Path) -> None:
    """Cancel while the creating POST is on its way: the server makes the upload all the same, so the page
    waits for the answer that names it and terminates it. (The bug: the POST was dropped with its answer, and
    the upload sat on the server, unnamed, until it expired.)"""
    page = browser.page
    username = unique_username("oak")
    api = api_register(server.base_url, username)
    _open_new_scene(browser, username)
    video = tmp_path / "held.mp4"
    make_mp4(video, frames=24, size=(160, 120))
    held: list[Route] = []
    page.route("**/user/scene/uploads", lambda route: held.append(route) if route.request.method == "POST"
               else route.continue_())
    methods = _upload_requests(page)

    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_role("button", name="Upload and start").click()
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the upload never asked to be created"
    page.get_by_role("button", name="Cancel upload").click()
    page.get_by_role("status").filter(has_text="Upload cancelled").wait_for()
    with page.expect_response(lambda res: "/user/scene/uploads" in res.url and res.request.method == "POST") as made:
        held[0].continue_()
    assert made.value.status == 201
    location = made.value.headers["location"]
    deleted = page.wait_for_event("response", lambda res: res.request.method == "DELETE", timeout=10_000)
    assert deleted.status == 204 and deleted.url.endswith(location)
    page.wait_for_timeout(500)
    assert methods == ["POST", "DELETE"], methods  # no byte sent, nothing after the DELETE
    gone = api.head(location, headers={"Tus-Resumable": "1.0.0"})
    assert gone.status_code == 404, gone.status_code
    assert api.get("/user/scene/history").json()["resources"] == []
    assert page.get_by_role("button", name="Upload and start").is_enabled()
    browser.console.assert_clean()


def test_upload_goes_on_across_pages_and_warns_before_unload(browser: Browser, server: WebServer,
                                                             tmp_path: Path) -> None:
    """Leaving the form for the scene list does not abort the upload: a banner shows its progress there, the
    form shows it again on return, and the new scene is a click away once it is sent. Closing the tab while it
    runs asks first."""
    page = browser.page
    username = unique_username("jon")
    api = api_register(server.base_url, username)
    _open_new_scene(browser, username)
    video = tmp_path / "across.mp4"
    make_mp4(video, frames=48, size=(320, 240))
    uploads = _upload_requests(page)
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Scene name (optional)").fill("Across pages")
    cdp = throttle_uploads(page, max(4_000, video.stat().st_size // 15))
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_function("() => document.querySelector('.upload-progress progress')?.value > 0")

    # Closing the tab mid-upload asks first (the dialog is dismissed: the page stays).
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.close(run_before_unload=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
    assert not page.is_closed()

    page.get_by_role("link", name="Scenes", exact=True).click()
    page.get_by_role("heading", name="Your scenes").wait_for()
    banner = page.get_by_role("region", name="Upload")
    banner.get_by_text("Uploading “Across pages”").wait_for()
    bar = banner.locator(".upload-progress progress")
    before = float(bar.get_attribute("value") or 0)
    page.wait_for_function(
        "v => document.querySelector('.upload-banner .upload-progress progress')?.value > v", arg=before)

    # Back on the form: the same upload, its fields as sent, not a blank form.
    page.get_by_role("link", name="New scene").first.click()
    page.get_by_role("progressbar", name="Upload progress").wait_for()
    assert page.get_by_label("Scene name (optional)").input_value() == "Across pages"
    assert page.get_by_label("Video file").is_disabled()
    assert page.get_by_role("region", name="Upload").count() == 0, "the form shows the upload itself"

    page.get_by_role("link", name="Scenes", exact=True).click()
    unthrottle(cdp)
    banner.get_by_text("“Across pages” is uploaded").wait_for()
    (scene_id,) = api.get("/user/scene/history").json()["resources"]
    assert uploads.count("POST") == 1 and "DELETE" not in uploads, uploads
    banner.get_by_role("link", name="Open the scene").click()
    page.get_by_role("heading", name="Across pages").wait_for()
    assert page.url.endswith(f"#/scene/{scene_id}")
    assert page.get_by_role("region", name="Upload").count() == 0
    # Nothing left to lose: leaving is no longer questioned.
    assert page.evaluate("""() => { const e = new Event('beforeunload', {cancelable: true});
                                    window.dispatchEvent(e); return e.defaultPrevented; }""") is False
    browser.console.assert_clean()


def test_upload_sends_the_chosen_preset(browser: Browser, server: WebServer, tmp_path: Path) -> None:
    """The preset picked is sent as the ``preset`` field (the server schedules training by it); Custom leaves
    the field out, so the server's default applies."""
    page = browser.page
    options: dict[str, Any] = httpx.get(f"{server.base_url}/user/scene/options", timeout=30).json()
    default = options["default_preset"]
    other = next(p for p in options["presets"] if p["name"] != default)
    username = unique_username("kim")
    api = api_register(server.base_url, username)
    video = tmp_path / "preset.mp4"
    make_mp4(video, frames=24)
    # The fields of each resumable upload created (tus Upload-Metadata: key base64(value) pairs).
    sent: list[dict[str, str]] = []

    def record(req: Any) -> None:
        if req.method == "POST" and req.url.endswith("/user/scene/uploads"):
            pairs = (item.split(" ") for item in req.headers["upload-metadata"].split(","))
            sent.append({key: base64.b64decode(value).decode() for key, value in pairs})

    page.on("request", record)

    _open_new_scene(browser, username)
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Scene name (optional)").fill("With a preset")
    page.get_by_role("radio", name=other["label"]).check()
    page.get_by_role("button", name="Upload and start").click()
    page.get_by_role("heading", name="With a preset").wait_for()

    page.get_by_role("link", name="New scene").first.click()
    assert page.get_by_label("Scene name (optional)").input_value() == "", "a sent upload leaves a fresh form"
    page.get_by_label("Video file").set_input_files(str(video))
    page.get_by_label("Scene name (optional)").fill("Custom settings")
    page.locator("summary", has_text="Training settings").click()
    page.get_by_label("Total iterations").fill("321")
    page.get_by_label("Save at iterations").fill("100")
    assert page.get_by_role("radio", name="Custom").is_checked()
    page.get_by_role("button", name="Upload and start").click()
    page.get_by_role("heading", name="Custom settings").wait_for()

    first, second = api.get("/user/scene/history").json()["resources"]
    assert [form.get("preset") for form in sent] == [other["name"], None], sent
    assert api.get(f"/user/scene/progress/{first}").json()["preset"] == other["name"]
    assert api.get(f"/user/scene/progress/{second}").json()["preset"] == default
    browser.console.assert_clean()
