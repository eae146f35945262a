"""Any format after the fact, from the downloads, in a real browser on a real server: the owner prepares a type
the upload did not ask for (the worker's code makes it from the kept model), the page waits while the route
answers 202, survives a reload meanwhile without a second job, and downloads the file, read back as a PLY; a
failed making shows the worker's reason and a new try; and the viewer's hints follow the pointer: touch on a
touch screen, mouse otherwise (the share page and the owner's page share the viewer)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from plyfile import PlyData
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.support.api_client import api_login, api_register, make_settings, unique_username
from tests.support.browser import PHONE, Browser, WebServer, log_in
from tests.support.trained import (
    ITERATIONS,
    Deployment,
    export_originals,
    run_derive_jobs,
    seed_trained_scene,
    write_model,
)
from vidscene.db.models import DeriveJob

pytestmark = pytest.mark.browser

GAUSSIANS = 1500  # write_model's default


@dataclass(frozen=True)
class Owner:
    username: str
    model: Path
    originals: dict[str, dict[int, bytes]]

    def scene(self, server: WebServer, name: str) -> str:
        """A finished scene whose upload asked for the .splat only, its models kept."""
        return seed_trained_scene(Deployment(server.data_dir, server.database_url), self.username, self.model,
                                  self.originals, name=name)


@pytest.fixture(scope="module")
def owner(server: WebServer, tmp_path_factory: pytest.TempPathFactory) -> Owner:
    model = tmp_path_factory.mktemp("model")
    write_model(model)
    username = unique_username("preparer")
    api_register(server.base_url, username)
    return Owner(username, model, export_originals(model, ("splat_cloud",)))


def jobs_of(server: WebServer, scene_id: str) -> list[tuple[list[str], str]]:
    """The scene's derive jobs, oldest first: (output types, state)."""
    engine = create_engine(server.database_url)
    try:
        with Session(engine) as session:
            rows = session.scalars(select(DeriveJob).where(DeriveJob.scene_id == scene_id).order_by(DeriveJob.id))
            return [(list(job.output_types), job.state) for job in rows]
    finally:
        engine.dispose()


def test_a_format_not_asked_for_is_prepared_and_downloaded(browser: Browser, server: WebServer, owner: Owner) -> None:
    scene_id = owner.scene(server, "Prepared")
    log_in(browser, owner.username)
    browser.goto(f"#/scene/{scene_id}")
    page = browser.page
    last = ITERATIONS[-1]
    prepare = page.get_by_role("button", name=f"Prepare Point cloud (.ply), iteration {last}")
    # Every type the mode makes, at every iteration whose model is kept; the made .splat as before.
    page.get_by_role("button", name=f"Download Splat cloud (.splat), iteration {last}").wait_for()
    for label in ("SPZ (.spz)", "Compressed PLY (.compressed.ply)", "Rendered video (.mp4)"):
        for iteration in ITERATIONS:
            assert page.get_by_role("button", name=f"Prepare {label}, iteration {iteration}").count() == 1
    prepare.click()
    page.get_by_role("status").filter(has_text="Being made from the trained model").wait_for()  # the 202
    assert jobs_of(server, scene_id) == [(["point_cloud"], "queued")]

    page.reload()  # the wait is picked up again, and asking again queued nothing more
    page.get_by_role("status").filter(has_text="Being made from the trained model").wait_for()
    assert jobs_of(server, scene_id) == [(["point_cloud"], "queued")]
    browser.screenshot("downloads-preparing")

    with page.expect_download(timeout=30_000) as download:
        assert run_derive_jobs(make_settings(server.data_dir, server.database_url)) == 1
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"ply\n") and download.value.suggested_filename.endswith(f"-point_cloud-{last}.ply")
    assert PlyData.read(io.BytesIO(data))["vertex"].count == GAUSSIANS  # read back by plyfile, not our writer
    # The page read the metadata again: both iterations are ordinary downloads now, and nothing is pending.
    for iteration in ITERATIONS:
        page.get_by_role("button", name=f"Download Point cloud (.ply), iteration {iteration}").wait_for()
    assert page.evaluate(f"localStorage.getItem('vidscene.preparing.{scene_id}')") is None
    browser.console.assert_clean()


def test_a_failed_preparation_shows_why_and_tries_again(browser: Browser, server: WebServer, owner: Owner) -> None:
    scene_id = owner.scene(server, "Unlucky")
    checkpoint = server.data_dir / "scenes" / scene_id / "train" / "checkpoints" / f"{ITERATIONS[0]}.ckpt"
    good = checkpoint.read_bytes()
    checkpoint.write_bytes(b"not a checkpoint")  # the worker cannot read this model: a real failure
    log_in(browser, owner.username)
    browser.goto(f"#/scene/{scene_id}")
    page = browser.page
    page.get_by_role("button", name=f"Prepare SPZ (.spz), iteration {ITERATIONS[-1]}").click()
    page.get_by_role("status").filter(has_text="Being made from the trained model").wait_for()
    assert run_derive_jobs(make_settings(server.data_dir, server.database_url)) == 1
    browser.console.expect("409")  # Chromium logs the refused request
    alert = page.get_by_role("alert").filter(has_text="Making SPZ failed")
    alert.wait_for(timeout=30_000)
    # The route's advice to API clients (ask again with retry=true) is the button beside it on the page.
    assert "retry=true" not in alert.inner_text() and '"Try again" asks the server' in alert.inner_text()

    checkpoint.write_bytes(good)
    page.get_by_role("button", name=f"Try preparing SPZ (.spz), iteration {ITERATIONS[-1]} again").click()
    page.get_by_role("status").filter(has_text="Being made from the trained model").wait_for()
    assert [state for _, state in jobs_of(server, scene_id)] == ["failed", "queued"]  # a new try, asked for
    page.get_by_role("button", name=f"Stop waiting for SPZ (.spz), iteration {ITERATIONS[-1]}").click()
    page.get_by_text("Stopped waiting").wait_for()
    assert page.evaluate(f"localStorage.getItem('vidscene.preparing.{scene_id}')") is None
    browser.console.assert_clean()


@pytest.fixture(scope="module")
def share_url(server: WebServer, owner: Owner) -> str:
    scene_id = owner.scene(server, "Touched")
    token = api_login(server.base_url, owner.username).post(f"/user/scene/share/{scene_id}").json()["token"]
    return f"{server.base_url}/s/{token}"


@pytest.fixture
def touch_page(chromium: Any) -> Iterator[Any]:
    """A phone: touch screen, mobile viewport; its primary pointer is coarse."""
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_touch_screens_get_touch_hints(browser: Browser, touch_page: Any, share_url: str) -> None:
    touch_page.goto(share_url)
    hint = touch_page.get_by_test_id("viewer-hint")
    hint.wait_for()
    assert touch_page.evaluate("matchMedia('(pointer: coarse)').matches")
    assert hint.inner_text().startswith("One finger to orbit")
    assert "right-drag" not in hint.inner_text() and "arrow" not in hint.inner_text()
    touch_page.get_by_role("radio", name="Fly").check()
    assert "two fingers" in hint.inner_text() and "W A S D" not in hint.inner_text()
    assert "arrow" not in (touch_page.locator(".viewer-canvas").get_attribute("aria-label", timeout=30_000) or "")

    browser.page.goto(share_url)  # a desktop with a mouse
    mouse_hint = browser.page.get_by_test_id("viewer-hint")
    mouse_hint.wait_for()
    assert "right-drag to pan" in mouse_hint.inner_text() and "finger" not in mouse_hint.inner_text()
