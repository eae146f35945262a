"""Edits and outputs after the fact on the real processes: ``vidscene serve`` queues the derive jobs through the
broker and the worker it starts makes the files, which the API then serves (no test code runs the jobs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_client import ApiClient
from tests.support.cluster import Cluster
from tests.support.trained import ITERATIONS, Deployment, export_originals, seed_trained_scene, write_model


def wait_for(check: Callable[[], Any], cluster: Cluster, seconds: float = 180) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(cluster.logs())


@pytest.mark.slow  # a worker process starts and loads torch: about 30 s
def test_the_worker_makes_an_edit_and_a_format_not_asked_for(cluster: Cluster, tmp_path: Path) -> None:
    model = tmp_path / "model"
    write_model(model)
    originals = export_originals(model, ("splat_cloud",))
    cluster.serve(embedded_worker=True)
    owner = ApiClient(cluster.base_url, "cropper")
    deployment = Deployment(cluster.data_dir, f"sqlite:///{cluster.data_dir / 'vidscene.db'}")
    scene = seed_trained_scene(deployment, "cropper", model, originals)

    box = {"op": "keep_inside", "shape": "box", "center": [0, 0, 0], "half_size": [0.25, 0.5, 0.5]}
    put = owner.http.put(f"/user/scene/edits/{scene}", json={"operations": [box]})
    assert put.status_code == 202, put.text
    edit = wait_for(lambda: (e := owner.http.get(f"/user/scene/edits/{scene}").json())["state"] == "ready" and e,
                    cluster)
    splat = owner.http.get(f"/user/scene/output/splat_cloud/{scene}")
    assert len(splat.content) == 32 * edit["kept"] < len(originals["splat_cloud"][ITERATIONS[-1]])

    asked = owner.http.get(f"/user/scene/output/spz/{scene}")
    assert asked.status_code == 202, asked.text
    spz = wait_for(lambda: (r := owner.http.get(f"/user/scene/output/spz/{scene}")).status_code == 200 and r, cluster)
    assert spz.content[:2] == b"\x1f\x8b"  # gzip: a .spz, made from the edited gaussians of the served edit
    assert set(owner.http.get(f"/user/scene/metadata/{scene}").json()["resources"]) == {"splat_cloud", "spz"}
