"""Personal API tokens on the account page, in a real browser against the real API: creating one shows its
secret once (with a copy button and a warning), the list shows it and when it was last used, revoking it
removes it and the server refuses it from then on."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api_client import api_register, unique_username
from tests.support.browser import Browser, WebServer, log_in

pytestmark = pytest.mark.browser



def test_create_copy_list_and_revoke_a_token(browser: Browser, server: WebServer) -> None:
    page, base = browser.page, server.base_url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    username = unique_username("tokens")
    api = api_register(base, username)
    log_in(browser, username)
    browser.goto("#/account")
    panel = page.locator("section.tokens")
    panel.get_by_text("No API tokens yet.").wait_for()

    # The form's own checks, before anything is sent.
    panel.get_by_role("button", name="Create token").click()
    panel.get_by_role("alert").get_by_text("say what the token is for").wait_for()
    panel.get_by_label("Token name").fill("nightly backup")
    panel.get_by_label("Read scenes").uncheck()
    panel.get_by_role("button", name="Create token").click()
    panel.get_by_role("alert").get_by_text("choose at least one").wait_for()
    assert api.get("/user/tokens").json() == {"tokens": []}

    panel.get_by_label("Change scenes").check()
    panel.get_by_label("Expires after (days, optional)").fill("30")
    panel.get_by_role("button", name="Create token").click()
    secret_box = panel.get_by_role("region", name="New API token")
    secret = secret_box.get_by_test_id("new-token").inner_text().strip()
    assert secret.startswith("vst_")
    assert "shown only this once" in secret_box.inner_text()
    secret_box.get_by_role("button", name="Copy token").click()
    secret_box.get_by_text("The token is copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    browser.screenshot("account-tokens")

    (listed,) = api.get("/user/tokens").json()["tokens"]
    assert listed["name"] == "nightly backup" and listed["scopes"] == ["scenes:write"]
    row = panel.locator(f'tr[data-token-id="{listed["id"]}"]')
    assert "nightly backup" in row.inner_text() and "Change scenes" in row.inner_text()
    assert row.locator('td[data-label="Last used"]').inner_text() == "Never"
    assert row.locator('td[data-label="Expires"]').inner_text() != "Never"

    # The secret works for what it allows; the page never shows it again.
    as_token = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{base}/user/scene/history", headers=as_token).status_code == 403  # write only
    assert httpx.get(f"{base}/user/tokens", headers=as_token).status_code == 403
    secret_box.get_by_role("button", name="I have copied it").click()
    secret_box.wait_for(state="detached")
    page.reload()
    row.wait_for()
    assert secret not in page.content()
    assert row.locator('td[data-label="Last used"]').inner_text() != "Never"

    row.get_by_role("button", name="Revoke token nightly backup").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke token").click()
    panel.get_by_text("revoked: it no longer works").wait_for()
    row.wait_for(state="detached")
    panel.get_by_text("No API tokens yet.").wait_for()
    assert api.get("/user/tokens").json() == {"tokens": []}
    refused = httpx.post(f"{base}/user/scene/new", headers=as_token)
    assert refused.status_code == 401
    browser.console.assert_clean()
