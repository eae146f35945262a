"""The first page a logged-out visitor sees says what vidscene does and how to film for it, in the capture
check's terms; the same advice stands beside the upload form."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator

from tests.support.api_client import PASSWORD, api_register, unique_username
from tests.support.browser import Browser, WebServer

pytestmark = pytest.mark.browser

# One tip per thing the capture check refuses or warns about.
TIPS = ["Walk slowly around the subject", "Hold the phone steady", "Keep people and pets out of the shot",
        "lock the exposure", "one continuous take"]


def _advice_says_it_all(advice: Locator) -> None:
    text = advice.inner_text()
    for tip in TIPS:
        assert tip.lower() in text.lower(), tip
    assert "tripod" in text and "refused" in text
    assert "press and hold" in text.lower()


def test_the_landing_page_says_what_vidscene_does_and_how_to_film(browser: Browser, server: WebServer) -> None:
    page = browser.page
    browser.goto()
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.url.endswith("#/login")
    intro = page.get_by_role("region", name="Turn a phone video into a 3D scene")
    for word in (".splat", ".ply", "SPZ", "video", "browser"):
        assert word in intro.inner_text(), word
    _advice_says_it_all(page.get_by_role("region", name="How to film"))
    # The form is still at hand.
    page.get_by_label("Username", exact=True).wait_for()
    browser.screenshot("landing")

    page.get_by_role("link", name="Create an account").click()
    page.get_by_role("heading", name="Create an account").wait_for()
    page.get_by_role("region", name="How to film").wait_for()
    browser.console.assert_clean()


def test_the_upload_form_has_the_same_advice(browser: Browser, server: WebServer) -> None:
    page = browser.page
    username = unique_username("tips")
    api_register(server.base_url, username)
    browser.goto("#/login")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your scenes").wait_for()
    page.get_by_role("link", name="New scene").first.click()
    page.get_by_role("heading", name="New scene").wait_for()
    page.get_by_label("Video file").wait_for()
    _advice_says_it_all(page.get_by_role("region", name="How to film"))
    browser.screenshot("upload-advice")
    browser.console.assert_clean()
