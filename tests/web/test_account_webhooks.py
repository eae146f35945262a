"""Webhooks on the account page, in a real browser against the real API: adding one shows its signing secret
once (with a copy button), the list shows it, its deliveries view shows the events recorded for it, and
deleting it removes it on the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api_client import api_register, unique_username
from tests.support.browser import Browser, WebServer, log_in
from tests.support.videos import make_mp4

pytestmark = pytest.mark.browser

# A public address given as a literal: the server checks webhook hosts without needing DNS for it, and nothing
# is ever sent there (this server has no worker).
HOOK_URL = "https://1.1.1.1/vidscene-hook"


def test_add_see_the_secret_once_list_deliveries_and_delete(browser: Browser, server: WebServer,
                                                            tmp_path: Path) -> None:
    page, base = browser.page, server.base_url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    username = unique_username("hooks")
    api = api_register(base, username)
    log_in(browser, username)
    browser.goto("#/account")
    panel = page.locator("section.webhooks-panel")
    panel.get_by_text("No webhooks yet.").wait_for()

    # The server's refusal reaches the form: a loopback receiver is not public.
    browser.console.expect("status of 400")
    panel.get_by_label("Webhook URL").fill("http://127.0.0.1:9/hook")
    panel.get_by_role("button", name="Add webhook").click()
    panel.get_by_role("alert").get_by_text("is not public").wait_for()
    assert api.get("/user/webhooks").json() == {"webhooks": []}

    panel.get_by_label("Webhook URL").fill(HOOK_URL)
    panel.get_by_label("Scene cancelled").check()
    panel.get_by_role("button", name="Add webhook").click()
    secret_box = panel.get_by_role("region", name="New webhook secret")
    secret = secret_box.get_by_test_id("new-webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_") and "shown only this once" in secret_box.inner_text()
    secret_box.get_by_role("button", name="Copy signing secret").click()
    secret_box.get_by_text("The signing secret is copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    (listed,) = api.get("/user/webhooks").json()["webhooks"]
    assert listed["url"] == HOOK_URL and listed["events"] == ["scene.done", "scene.failed", "scene.cancelled"]
    row = panel.locator(f'tr[data-webhook-id="{listed["id"]}"]')
    assert "Scene done, Scene failed, Scene cancelled" in row.inner_text()
    secret_box.get_by_role("button", name="I have copied it").click()
    secret_box.wait_for(state="detached")

    # A real event: an upload deleted while it waits in the queue is cancelled, recorded for the webhook.
    video = tmp_path / "tiny.mp4"
    make_mp4(video)
    created = api.post("/user/scene/new", files={"file": (video.name, video.read_bytes(), "video/mp4")},
                       data={"training_mode": "gaussian", "output_types": "point_cloud", "save_iterations": "",
                             "total_iterations": "10"})
    assert created.status_code == 202, created.text
    assert api.delete(f"/user/scene/delete/{created.json()['id']}").status_code == 200
    page.reload()
    assert secret not in page.content()
    row.get_by_role("button", name=f"Deliveries of {HOOK_URL}").click()
    deliveries = panel.get_by_role("region", name=f"Deliveries of {HOOK_URL}")
    delivery = deliveries.locator('tr[data-state="pending"]')
    assert "scene.cancelled" in delivery.inner_text() and "Pending" in delivery.inner_text()
    browser.screenshot("account-webhooks")

    row.get_by_role("button", name=f"Delete webhook {HOOK_URL}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete webhook").click()
    panel.get_by_text("nothing more is sent to it").wait_for()
    panel.get_by_text("No webhooks yet.").wait_for()
    assert api.get("/user/webhooks").json() == {"webhooks": []}
    browser.console.assert_clean()
