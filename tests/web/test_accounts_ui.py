"""The account journey in a real browser against the real API: register, log in and out, change username and
password, delete the account; client-side checks and the server's own error messages."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.web.browser_helpers import PASSWORD, Browser, WebServer, api_register, unique_username

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

    # Delete the account, behind a confirmation dialog.
    page.get_by_role("link", name="Account").click()
    form = page.locator("form", has=page.get_by_role("heading", name="Delete account"))
    form.get_by_label("Password").fill(new_password)
    form.get_by_role("button", name="Delete account…").click()
    dialog = page.get_by_role("dialog", name="Delete your account?")
    dialog.wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")
    assert httpx.post(f"{server.base_url}/user/account/login",
                      json={"username": new_username, "password": new_password}).status_code == 200
    form.get_by_role("button", name="Delete account…").click()
    dialog.get_by_role("button", name="Delete account").click()
    page.get_by_role("heading", name="Create an account").wait_for()
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
