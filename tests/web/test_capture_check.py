"""The capture check on the scene page: the verdict in words, each problem with its severity, a timeline with
one bar per frame (blurred, unplaced and moving frames told apart), a problem's frames picked out on it, and the
steps whose check found a problem marked with a warning instead of a tick while the scene goes on."""

from __future__ import annotations

import pytest

from tests.support.api_client import api_register, unique_username
from tests.support.browser import Browser, WebServer, log_in
from tests.support.scenes import capture_report, seed_scene

pytestmark = pytest.mark.browser

BLURRED = (5, 6, 7, 30)
UNPLACED = (30, 31, 32, 33)
BLUR_MESSAGE = ("4 of 40 frames are blurred (at 0.6-0.9 s and 3.8 s): move more slowly or hold the phone steadier "
                "there. Blurred views make the scene soft; training longer cannot sharpen them.")
PLACED_MESSAGE = ("Only 36 of 40 frames could be placed in 3D; the views at 3.8-4.1 s are missing from the scene. "
                  "Parts seen only there will be missing or smeared: move slowly and keep the subject in view. "
                  "Training longer cannot fix this; filming again can.")



def test_capture_problems_timeline_and_step_warnings(browser: Browser, server: WebServer) -> None:
    page = browser.page
    username = unique_username("cam")
    api = api_register(server.base_url, username)
    problems = [
        {"code": "blur", "severity": "warning", "message": BLUR_MESSAGE, "frames": [3 * i for i in BLURRED]},
        {"code": "partial_registration", "severity": "warning", "message": PLACED_MESSAGE,
         "frames": [3 * i for i in UNPLACED]},
    ]
    report = capture_report(40, blurred=BLURRED, unplaced=UNPLACED, moving={10: 0.4, 11: 0.25}, problems=problems)
    scene = seed_scene(server, username, name="Filmed in a hurry", outputs={"splat_cloud": {}}, state="processing",
                       stage="train", position=300, size=1000, eta_seconds=150, capture=report)
    assert api.get(f"/user/scene/capture/{scene}").json()["verdict"] == "usable"

    log_in(browser, username)
    browser.goto(f"#/scene/{scene}")
    panel = page.get_by_role("region", name="Capture check")
    panel.get_by_test_id("capture-verdict").wait_for()
    assert panel.get_by_test_id("capture-verdict").inner_text() == "Usable, with problems"
    items = panel.locator(".capture-problem")
    assert items.count() == 2
    assert "Warning" in items.nth(0).inner_text() and BLUR_MESSAGE in items.nth(0).inner_text()
    assert PLACED_MESSAGE in items.nth(1).inner_text() and "Camera poses" in items.nth(1).inner_text()

    # One bar per frame; blurred and unplaced frames are told apart by their attributes.
    bars = panel.locator(".frame-bar")
    assert bars.count() == 40
    blurred = bars.evaluate_all("bs => bs.filter(b => b.dataset.sharp === 'blurred').map(b => +b.dataset.frame)")
    unplaced = bars.evaluate_all("bs => bs.filter(b => b.dataset.placed === 'no').map(b => +b.dataset.frame)")
    assert blurred == [3 * i for i in BLURRED]
    assert unplaced == [3 * i for i in UNPLACED]
    moving = bars.evaluate_all("bs => bs.filter(b => b.querySelector('.frame-moving')).map(b => +b.dataset.frame)")
    assert moving == [30, 33]
    assert "sharpness 0.20 (blurred)" in (bars.nth(5).get_attribute("title") or "")
    assert "not placed in 3D" in (bars.nth(30).get_attribute("title") or "")
    # Bars stand in time order along the track.
    lefts = bars.evaluate_all("bs => bs.map(b => b.getBoundingClientRect().left)")
    assert lefts == sorted(lefts) and lefts[-1] > lefts[0]

    # Hovering a problem picks out its frames; clicking keeps them picked.
    highlighted = "bs => bs.filter(b => b.dataset.highlighted === 'true').map(b => +b.dataset.frame)"
    items.nth(0).get_by_role("button").hover()
    assert bars.evaluate_all(highlighted) == [3 * i for i in BLURRED]
    items.nth(1).get_by_role("button").click()
    page.mouse.move(0, 0)
    assert bars.evaluate_all(highlighted) == [3 * i for i in UNPLACED]
    assert items.nth(1).get_by_role("button").get_attribute("aria-pressed") == "true"

    # The frames and camera-pose steps carry a warning with the message; training is under way.
    steps = page.get_by_role("list", name="Processing steps")
    frames_step, poses_step = steps.locator("li[data-step=frames]"), steps.locator("li[data-step=sfm]")
    for step, message in ((frames_step, BLUR_MESSAGE), (poses_step, PLACED_MESSAGE)):
        assert step.get_attribute("data-step-warning") == "true"
        mark = step.locator(".step-mark")
        assert mark.inner_text() == "⚠"
        assert message in (mark.get_attribute("title") or "")
    assert steps.locator("li[data-step=train]").get_attribute("aria-current") == "step"
    assert steps.locator("li[data-step=train]").get_attribute("data-step-warning") is None
    browser.screenshot("scene-capture-check")
    browser.console.assert_clean()


def test_a_refused_capture_keeps_the_failure_and_says_why(browser: Browser, server: WebServer) -> None:
    page = browser.page
    username = unique_username("tripod")
    api_register(server.base_url, username)
    message = ("The camera never moved (a tripod, a fixed or surveillance camera): a 3D scene needs views from many "
               "positions. Walk slowly around the subject while filming. Training longer cannot fix this; "
               "filming again can.")
    report = capture_report(24, sfm=False, problems=[
        {"code": "static_camera", "severity": "error", "message": message, "frames": [3 * i for i in range(24)]}])
    scene = seed_scene(server, username, name="On a tripod", outputs={"video": {}}, state="failed", stage="frames",
                       message=message, capture=report)
    log_in(browser, username)
    browser.goto(f"#/scene/{scene}")
    failure = page.get_by_role("region", name="Processing failed")
    failure.get_by_text(message).wait_for()
    assert failure.locator("li[data-step=frames]").get_attribute("data-step-state") == "stopped"
    panel = page.get_by_role("region", name="Capture check")
    assert panel.get_by_test_id("capture-verdict").inner_text() == "Refused"
    assert "Error" in panel.locator(".capture-problem").inner_text()
    assert panel.locator(".frame-bar[data-placed=unknown]").count() == 24  # SfM never ran
    browser.screenshot("scene-capture-refused")
    browser.console.assert_clean()
