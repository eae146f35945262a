"""Crop in a real browser: the owner draws the box with the panel's fields, saves, sees the cropped scene once
the worker's files are in place (the gaussians kept, the downloads' sizes the edited files'), and reverts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api_client import api_register, make_settings, unique_username
from tests.support.browser import Browser, WebServer, log_in
from tests.support.trained import (
    ITERATIONS,
    Deployment,
    export_originals,
    run_derive_jobs,
    seed_trained_scene,
    write_model,
)

pytestmark = pytest.mark.browser


def test_crop_with_the_box_and_save(browser: Browser, server: WebServer, tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model)
    originals = export_originals(model, ("splat_cloud", "point_cloud"))
    username = unique_username("cropper")
    api = api_register(server.base_url, username)
    scene_id = seed_trained_scene(Deployment(server.data_dir, server.database_url), username, model, originals)
    log_in(browser, username)
    browser.goto(f"#/scene/{scene_id}")
    page = browser.page
    panel = page.get_by_test_id("crop")
    status = panel.get_by_test_id("crop-status")
    status.get_by_text("Showing the original scene.").wait_for()

    centre, half = panel.get_by_role("group", name="Centre"), panel.get_by_role("group", name="Half size")
    centre.get_by_label("x").fill("0.1")
    for axis, value in (("x", "0.3"), ("y", "0.5"), ("z", "0.5")):
        half.get_by_label(axis).fill(value)
    panel.get_by_role("button", name="Save crop").click()
    status.get_by_text("Making the cropped files").wait_for()
    edit = api.get(f"/user/scene/edits/{scene_id}").json()
    assert edit["operations"][0]["center"] == [0.1, 0.0, 0.0]
    assert edit["operations"][0]["half_size"] == [0.3, 0.5, 0.5]
    assert (edit["state"], edit["served"]) == ("preparing", 0) and 0 < edit["kept"] < edit["total"]

    assert run_derive_jobs(make_settings(server.data_dir, server.database_url)) == 1
    status.get_by_text(f"Showing the cropped scene. {edit['kept']} of {edit['total']} gaussians kept.").wait_for()
    sizes = api.get(f"/user/scene/metadata/{scene_id}").json()["resources"]["splat_cloud"]
    assert sizes[str(ITERATIONS[-1])]["size"] == 32 * edit["kept"]  # the edited .splat is what is offered now
    browser.screenshot("crop")

    panel.get_by_role("button", name="Revert to original").click()
    status.get_by_text("Showing the original scene.").wait_for()
    assert api.get(f"/user/scene/edits/{scene_id}").json()["served"] == 0
    assert browser.console.errors == [], browser.console.errors
