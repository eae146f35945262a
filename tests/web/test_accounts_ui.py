"""The account journey in a real browser against the real API: register, log in and out, change username and
password, delete the account; client-side checks and the server's own error messages."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api_client import PASSWORD, api_register, unique_username
from tests.support.browser import Browser, WebServer, open_browser, own_server
from tests.support.scenes import seed_scene

pytestmark = pytest.mark.browser


def _submit_auth(browser: Browser, username: str, password: str, button: str, repeat: str | None = None) -> None:
    page = browser.page
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    if repeat is not None:
        page.get_by_label("Repeat password", exact=True).fill(repeat)
    page.get_by_role("button", name=button).click()


def test_register_login_logout_change_and_delete(browser: Browser, server: WebServer) -> None:
    page = browser.page
    # Chromium logs each refused request (the wrong passwords below) as a console error.
    browser.console.expect("status of 401")
    browser.console.expect("status of 409")
    username = unique_username("alice")

    browser.goto("#/register")
    page.get_by_role("heading", name="Create an account").wait_for()
    browser.screenshot("register")

    # Client-side checks mirror the server's rules and stop the request.
    _submit_auth(browser, username, "short", "Create account", repeat="short")
    page.get_by_role("alert").filter(has_text="at least 8 characters").wait_for()
    _submit_auth(browser, "a b", PASSWORD, "Create account", repeat=PASSWORD)
    page.get_by_role("alert").filter(has_text="letters, digits").wait_for()
    r = httpx.post(f"{server.base_url}/user/account/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 401, "the client-side checks must not have created the account"

    _submit_auth(browser, username, PASSWORD, "Create account", repeat=PASSWORD)
    page.get_by_role("heading", name="Your scenes").wait_for()
    page.get_by_text("No scenes yet.").wait_for()
    token = page.evaluate("localStorage.getItem('vidscene.token')")
    assert token and token.count(".") == 2, "the JWT is kept in the browser"
    r = httpx.get(f"{server.base_url}/user/scene/history", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json() == {"resources": []}

    page.reload()
    page.get_by_role("heading", name="Your scenes").wait_for()  # still logged in after a reload

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.evaluate("localStorage.getItem('vidscene.token')") is None
    browser.screenshot("login")

    # The server's refusal is shown as the server words it.
    wrong = httpx.post(f"{server.base_url}/user/account/login",
                       json={"username": username, "password": "not the password"})
    assert wrong.status_code == 401
    _submit_auth(browser, username, "not the password", "Log in")
    page.get_by_role("alert").filter(has_text=wrong.json()["error"]).wait_for()

    # Keyboard only: type, Tab to the next field, Enter submits.
    page.get_by_label("Username", exact=True).fill("")
    page.get_by_label("Username", exact=True).focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Your scenes").wait_for()

    # Change username: a wrong current password is refused by the server, the right one works.
    page.get_by_role("link", name="Account").click()
    page.get_by_role("heading", name="Account", exact=True).wait_for()
    browser.screenshot("account")
    new_username = unique_username("alicia")
    form = page.locator("form", has=page.get_by_role("heading", name="Change username"))
    form.get_by_label("New username").fill(new_username)
    form.get_by_label("Current password").fill("wrong password!")
    form.get_by_role("button", name="Change username").click()
    form.get_by_role("alert").wait_for()
    taken = unique_username("taken")
    api_register(server.base_url, taken)
    form.get_by_label("New username").fill(taken)
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_role("button", name="Change username").click()
    form.get_by_role("alert").filter(has_text=re.compile("taken|exists|use", re.IGNORECASE)).wait_for()
    form.get_by_label("New username").fill(new_username)
    form.get_by_role("button", name="Change username").click()
    form.get_by_text(f"Username changed to {new_username}.").wait_for()
    assert page.get_by_test_id("current-username").inner_text() == new_username

    # Change password; the client logs in again because the old token is revoked by the change.
    new_password = "a much better passphrase"
    form = page.locator("form", has=page.get_by_role("heading", name="Change password"))
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password", exact=True).fill(new_password)
    form.get_by_label("Repeat new password").fill(new_password + "x")
    form.get_by_role("button", name="Change password").click()
    form.get_by_role("alert").filter(has_text="do not match").wait_for()
    form.get_by_label("Repeat new password").fill(new_password)
    form.get_by_role("button", name="Change password").click()
    form.get_by_text("Password changed.").wait_for()
    page.get_by_role("link", name="Scenes").click()
    page.get_by_role("heading", name="Your scenes").wait_for()  # the renewed token works

    login = httpx.post(f"{server.base_url}/user/account/login",
                       json={"username": new_username, "password": new_password})
    assert login.status_code == 200, "the new password is really stored"
    assert httpx.post(f"{server.base_url}/user/account/login",
                      json={"username": new_username, "password": PASSWORD}).status_code == 401

    page.get_by_role("button", name="Log out").click()
    _submit_auth(browser, new_username, new_password, "Log in")
    page.get_by_role("heading", name="Your scenes").wait_for()

    # Delete the account, behind a confirmation dialog; a wrong password is refused before that dialog, so
    # nobody confirms the loss of everything only to be told the password was mistyped.
    page.get_by_role("link", name="Account").click()
    form = page.locator("form", has=page.get_by_role("heading", name="Delete account"))
    dialog = page.get_by_role("dialog", name="Delete your account?")
    form.get_by_label("Password").fill("not my password")
    form.get_by_role("button", name="Delete account…").click()
    form.get_by_role("alert").filter(has_text="not the password of this account").wait_for()
    assert not dialog.is_visible()
    form.get_by_label("Password").fill(new_password)
    form.get_by_role("button", name="Delete account…").click()
    dialog.wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")
    assert httpx.post(f"{server.base_url}/user/account/login",
                      json={"username": new_username, "password": new_password}).status_code == 200
    form.get_by_role("button", name="Delete account…").click()
    dialog.get_by_role("button", name="Delete account").click()
    page.get_by_role("heading", name="Account deleted").wait_for()
    page.get_by_role("status").filter(has_text="Your account and all its scenes").wait_for()
    assert page.url.endswith("#/account-deleted")
    browser.screenshot("account-deleted")
    assert page.evaluate("localStorage.getItem('vidscene.token')") is None
    assert httpx.post(f"{server.base_url}/user/account/login",
                      json={"username": new_username, "password": new_password}).status_code == 401

    browser.console.assert_clean()


def test_expired_or_revoked_token_returns_to_login(browser: Browser, server: WebServer) -> None:
    """A token the server no longer accepts (expired, password changed elsewhere) logs the browser out."""
    page = browser.page
    browser.console.expect("status of 401")
    browser.goto("#/login")
    page.evaluate("""() => { localStorage.setItem('vidscene.token', 'not.a.valid-token');
                             localStorage.setItem('vidscene.username', 'ghost'); }""")
    page.evaluate("window.location.hash = '#/'")
    page.reload()  # a fresh start of the app with the bad token in storage
    page.get_by_role("heading", name="Log in").wait_for()
    page.wait_for_function("localStorage.getItem('vidscene.token') === null")
    assert page.url.endswith("#/login")
    browser.console.assert_clean()


def test_a_deep_link_opened_logged_out_lands_there_after_login(browser: Browser, server: WebServer) -> None:
    """A shared link to a scene, opened while logged out, goes to the login page and then to that scene, not to
    the scene list."""
    page = browser.page
    username = unique_username("lena")
    api_register(server.base_url, username)
    scene_id = seed_scene(server, username, name="Linked scene", outputs={"video": {}})
    browser.goto(f"#/scene/{scene_id}")
    page.get_by_role("heading", name="Log in").wait_for()
    _submit_auth(browser, username, PASSWORD, "Log in")
    page.get_by_role("heading", name="Linked scene", level=1).wait_for()
    assert page.url.endswith(f"#/scene/{scene_id}")
    browser.console.assert_clean()


def test_a_session_ended_elsewhere_says_why_and_comes_back(browser: Browser, server: WebServer) -> None:
    """The password changed on another device revokes this browser's token: the next request's 401 drops to
    the login page with a message saying why, and logging in again returns to the page the user was on."""
    page = browser.page
    browser.console.expect("status of 401")
    username = unique_username("mia")
    api = api_register(server.base_url, username)
    scene_id = seed_scene(server, username, name="Still queued", outputs={"video": {}}, state="queued",
                          stage=None, thumbnail=False)  # its page keeps polling
    browser.goto("#/login")
    _submit_auth(browser, username, PASSWORD, "Log in")
    page.get_by_role("heading", name="Your scenes").wait_for()
    page.get_by_role("link", name="Still queued").click()
    page.get_by_role("heading", name="Still queued", level=1).wait_for()

    new_password = "changed on the phone"
    r = api.patch("/user/account/update/password", json={"old_password": PASSWORD, "new_password": new_password})
    assert r.status_code == 200, r.text
    page.get_by_role("heading", name="Log in").wait_for(timeout=15_000)
    reason = page.get_by_role("alert").filter(has_text="logged out")
    reason.wait_for()
    assert "password" in reason.inner_text()
    browser.screenshot("login-session-ended")

    _submit_auth(browser, username, new_password, "Log in")
    page.get_by_role("heading", name="Still queued", level=1).wait_for()
    assert page.url.endswith(f"#/scene/{scene_id}")
    assert page.get_by_text("logged out").count() == 0
    browser.console.assert_clean()


@pytest.fixture
def strict_server(web_dist: Path, tmp_path: Path) -> Iterator[WebServer]:
    """A server of its own that refuses a fourth failed login in a minute (the counters are per client, so a
    shared server would lock out every other test)."""
    yield from own_server(tmp_path / "srv", worker=False, VIDSCENE_LOGIN_RATE_LIMIT="3/minute")


@pytest.fixture
def strict_browser(chromium: Any, strict_server: WebServer) -> Iterator[Browser]:
    yield from open_browser(chromium, strict_server.base_url)


def test_the_rate_limit_message_counts_down_from_retry_after(strict_browser: Browser,
                                                             strict_server: WebServer) -> None:
    browser, page = strict_browser, strict_browser.page
    browser.console.expect("status of 401")
    browser.console.expect("status of 429")
    username = unique_username("ned")
    api_register(strict_server.base_url, username)
    # Every reading of the clock a millisecond later than the last, as on a busy machine: a countdown that
    # read the clock twice when the 429 arrived showed Retry-After + 1 (61 s for a 60 s wait; seen in CI).
    page.add_init_script("(() => { const now = Date.now; let k = 0; Date.now = () => now() + k++; })()")
    browser.goto("#/login")
    for _ in range(3):
        _submit_auth(browser, username, "not the password", "Log in")
        page.get_by_role("alert").filter(has_text="Invalid username or password").wait_for()
        page.get_by_role("button", name="Log in").wait_for()
    r = httpx.post(f"{strict_server.base_url}/user/account/login", json={"username": username, "password": "x"})
    assert r.status_code == 429

    with page.expect_response(lambda a: a.url.endswith("/user/account/login") and a.status == 429) as answer:
        _submit_auth(browser, username, PASSWORD, "Log in")
    retry_after = int(answer.value.headers["retry-after"])  # the page's own 429, not the earlier one
    alert = page.get_by_role("alert").filter(has_text="Too many")
    alert.wait_for()

    def seconds_left() -> int:
        found = re.search(r"Try again in (\d+) s", alert.inner_text())
        assert found, alert.inner_text()
        return int(found.group(1))

    first = seconds_left()
    assert 0 < first <= retry_after
    assert page.get_by_role("button", name="Log in").is_disabled(), "no point in trying before the wait is over"
    time.sleep(2.5)
    assert seconds_left() <= first - 2
    browser.console.assert_clean()
