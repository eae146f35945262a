"""The time left on the scene page does not swing with the server's estimate: given a sequence of
``eta_seconds`` that jumps by an order of magnitude at every poll ("1 h 53 min", "11 min", ...), what is shown
moves by less than 2x from one poll to the next, and settles on the estimate once it holds still.

The browser's clock is Playwright's fake one, so a minute and a half of polls takes a few seconds; the
progress answers are the server's own with ``eta_seconds`` replaced."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from playwright.sync_api import Route

from tests.support.api_client import PASSWORD, api_register, unique_username
from tests.support.browser import Browser, WebServer
from tests.support.scenes import seed_scene

pytestmark = pytest.mark.browser

POLL_MS = 2500  # the scene page's progress poll (scene/pageState.ts)
JUMPY = [6780, 660, 7000, 600, 5200, 640, 6900, 700, 610]  # 1 h 53 min, 11 min, ...
STEADY = 600


def _eta_shown(page: Any) -> tuple[int, str]:
    eta = page.get_by_test_id("eta")
    return int(eta.get_attribute("data-eta-seconds") or "0"), eta.inner_text()


def test_the_time_left_does_not_swing_with_a_jumpy_estimate(browser: Browser, server: WebServer) -> None:
    page = browser.page
    username = unique_username("eta")
    api_register(server.base_url, username)
    scene = seed_scene(server, username, name="Jumpy estimate", outputs={"splat_cloud": {}}, state="processing",
                       stage="train", position=100, size=1000, eta_seconds=JUMPY[0])
    answers = [*JUMPY, *[STEADY] * 30]
    served: list[int] = []

    def progress(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["eta_seconds"] = answers[min(len(served), len(answers) - 1)]
        served.append(body["eta_seconds"])
        route.fulfill(response=response, body=json.dumps(body))

    page.route(f"**/user/scene/progress/{scene}", progress)
    page.clock.install()
    # Straight to the scene page after logging in (no scene list polling the same progress first).
    browser.goto(f"#/login?next=/scene/{scene}")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Jumpy estimate", level=1).wait_for()
    page.get_by_test_id("eta").wait_for()

    shown: list[tuple[int, str]] = [_eta_shown(page)]
    while len(served) < len(answers):
        before = len(served)
        page.clock.run_for(POLL_MS)
        for _ in range(100):  # the poll's answer, then its render
            if len(served) > before:
                break
            page.wait_for_timeout(20)
        page.wait_for_timeout(250)
        shown.append(_eta_shown(page))

    seconds = [s for s, _ in shown]
    assert seconds[0] == JUMPY[0]  # the first estimate is shown as it comes
    for (a, text_a), (b, text_b) in itertools.pairwise(shown):
        assert max(a, b) / min(a, b) < 2, f"{text_a!r} then {text_b!r}"
    # Within the jumpy part nothing near an order of magnitude, although the estimates span one.
    jumpy = seconds[: len(JUMPY)]
    assert max(jumpy) / min(jumpy) < 3, jumpy
    # Once the estimate holds still, what is shown comes to it (counting down meanwhile).
    assert math.isclose(seconds[-1], STEADY, rel_tol=0.35), seconds
    assert "1 h" not in shown[-1][1] and "min" in shown[-1][1]
    browser.console.assert_clean()
