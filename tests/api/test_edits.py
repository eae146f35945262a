"""Crop and clean (``/user/scene/edits``) and outputs made after the fact, on a finished scene with real kept
models: every gaussian format downloaded after an edit holds only the gaussians inside (read back by gsply and
plyfile), metadata and share links follow, and a revert serves the byte-identical originals again."""

from __future__ import annotations

import io
import json
from pathlib import Path

import gsply
import numpy as np
import pytest
from plyfile import PlyData

from tests.support.api_client import Api
from tests.support.outputs import check_mp4, check_splat, make_splat
from tests.support.scenes import seed_scene
from tests.support.trained import (
    ITERATIONS,
    Deployment,
    export_originals,
    run_derive_jobs,
    seed_trained_scene,
    write_model,
)
from vidscene.pipeline.presets import PREVIEW

FORMATS = ("splat_cloud", "point_cloud", "spz", "compressed_ply")
BOX = {"op": "keep_inside", "shape": "box", "center": [0.1, 0.0, 0.0], "half_size": [0.3, 0.5, 0.5]}
BALL = {"op": "delete_inside", "shape": "sphere", "center": [0.2, 0.0, 0.0], "radius": 0.15}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[int, bytes]]]:
    root = tmp_path_factory.mktemp("model")
    write_model(root)
    return root, export_originals(root, FORMATS)


def deployment(api: Api, db_url: str) -> Deployment:
    return Deployment(data_dir=api.settings.data_dir, database_url=db_url)


def positions(output_type: str, data: bytes, tmp_path: Path) -> np.ndarray:
    """Where the file's gaussians are, read by a reader that is not the pipeline's."""
    if output_type == "splat_cloud":
        check_splat(data)
        return np.frombuffer(data, dtype=np.float32).reshape(-1, 8)[:, :3]
    if output_type == "point_cloud":
        vertex = PlyData.read(io.BytesIO(data))["vertex"]
        return np.stack([np.asarray(vertex[c]) for c in "xyz"], axis=1)
    path = tmp_path / ("f.spz" if output_type == "spz" else "f.compressed.ply")
    path.write_bytes(data)
    back = gsply.read_spz(path) if output_type == "spz" else gsply.plyread(str(path))
    return np.asarray(back.means)


def inside(points: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """BOX minus BALL, by hand (the test's own geometry, not ``vidscene.edits``)."""
    in_box = np.all(np.abs(points - BOX["center"]) <= np.asarray(BOX["half_size"]) + tolerance, axis=1)
    out_of_ball = np.linalg.norm(points - BALL["center"], axis=1) > BALL["radius"] - tolerance
    return np.asarray(in_box & out_of_ball)


def download(api: Api, headers: dict[str, str], output_type: str, scene_id: str, iteration: int) -> bytes:
    resp = api.client.get(f"/user/scene/output/{output_type}/{scene_id}?iteration={iteration}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.content


def sizes(api: Api, headers: dict[str, str], scene_id: str) -> dict[str, dict[str, int]]:
    resources = api.client.get(f"/user/scene/metadata/{scene_id}", headers=headers).json()["resources"]
    return {t: {it: entry["size"] for it, entry in by_it.items()} for t, by_it in resources.items()}


def test_edit_round_trip(api: Api, db_url: str, model: tuple[Path, dict[str, dict[int, bytes]]],
                         tmp_path: Path) -> None:
    username, auth = api.user()
    root, originals = model
    scene_id = seed_trained_scene(deployment(api, db_url), username, root, originals)
    share = api.client.post(f"/user/scene/share/{scene_id}", headers=auth).json()["token"]
    before = sizes(api, auth, scene_id)
    assert api.client.get(f"/user/scene/edits/{scene_id}", headers=auth).json()["state"] == "original"

    resp = api.client.put(f"/user/scene/edits/{scene_id}", headers=auth, json={"operations": [BOX, BALL]})
    assert resp.status_code == 202, resp.text
    edit = resp.json()
    final = positions("point_cloud", originals["point_cloud"][ITERATIONS[-1]], tmp_path)
    assert (edit["version"], edit["served"], edit["state"]) == (1, 0, "preparing")
    assert (edit["kept"], edit["total"]) == (int(inside(final).sum()), len(final))
    assert 0 < edit["kept"] < edit["total"]
    assert sizes(api, auth, scene_id) == before  # the original is served until the edited files are all made

    assert run_derive_jobs(api.settings) == 1
    edit = api.client.get(f"/user/scene/edits/{scene_id}", headers=auth).json()
    assert (edit["state"], edit["served"], edit["kept"]) == ("ready", 1, int(inside(final).sum()))
    after = sizes(api, auth, scene_id)
    for output_type in FORMATS:
        for iteration in ITERATIONS:
            original = positions(output_type, originals[output_type][iteration], tmp_path)
            data = download(api, auth, output_type, scene_id, iteration)
            edited = positions(output_type, data, tmp_path)
            exact = output_type in ("splat_cloud", "point_cloud")
            assert len(edited) == int(inside(original, 0.0 if exact else 0.02).sum()) or not exact
            assert 0 < len(edited) < len(original), output_type
            assert inside(edited, 0.0 if exact else 0.02).all(), output_type  # compact formats quantise
            assert after[output_type][str(iteration)] == len(data) != before[output_type][str(iteration)]
    public = api.client.get(f"/public/{share}/output/splat_cloud")
    assert public.content == download(api, auth, "splat_cloud", scene_id, ITERATIONS[-1])

    resp = api.client.delete(f"/user/scene/edits/{scene_id}", headers=auth)
    assert resp.status_code == 200 and resp.json()["state"] == "original"
    assert sizes(api, auth, scene_id) == before
    for output_type in FORMATS:
        for iteration in ITERATIONS:
            assert download(api, auth, output_type, scene_id, iteration) == originals[output_type][iteration]
    assert api.client.get(f"/public/{share}/output/splat_cloud").content == originals["splat_cloud"][ITERATIONS[-1]]
    assert not (api.settings.data_dir / "scenes" / scene_id / "outputs" / "edits").exists()


def test_a_newer_edit_wins_over_one_still_being_made(api: Api, db_url: str,
                                                     model: tuple[Path, dict[str, dict[int, bytes]]]) -> None:
    username, auth = api.user()
    root, originals = model
    scene_id = seed_trained_scene(deployment(api, db_url), username, root, {"splat_cloud": originals["splat_cloud"]})
    for body in ([BOX], [BALL]):
        assert api.client.put(f"/user/scene/edits/{scene_id}", headers=auth,
                              json={"operations": body}).status_code == 202
    assert run_derive_jobs(api.settings) == 2  # version 1 finds itself superseded, version 2 is served
    edit = api.client.get(f"/user/scene/edits/{scene_id}", headers=auth).json()
    assert (edit["version"], edit["served"], edit["state"]) == (2, 2, "ready")
    served = np.frombuffer(download(api, auth, "splat_cloud", scene_id, 4), dtype=np.float32).reshape(-1, 8)[:, :3]
    assert len(served) == edit["kept"] and (np.linalg.norm(served - BALL["center"], axis=1) > BALL["radius"]).all()
    edits_dir = api.settings.data_dir / "scenes" / scene_id / "outputs" / "edits"
    assert sorted(p.name for p in edits_dir.iterdir()) == ["2"]
    # The checkpoint, asked for while the edit is served, is the original: an edit does not change a model.
    assert api.client.get(f"/user/scene/output/model/{scene_id}", headers=auth).status_code == 202
    assert run_derive_jobs(api.settings) == 1
    assert download(api, auth, "model", scene_id, 4) == (root / "train" / "checkpoints" / "4.ckpt").read_bytes()


def test_a_format_not_asked_for_is_made_on_demand(api: Api, db_url: str,
                                                  model: tuple[Path, dict[str, dict[int, bytes]]],
                                                  tmp_path: Path) -> None:
    username, auth = api.user()
    root, originals = model
    scene_id = seed_trained_scene(deployment(api, db_url), username, root, {"splat_cloud": originals["splat_cloud"]})
    share = api.client.post(f"/user/scene/share/{scene_id}", headers=auth).json()["token"]
    assert "point_cloud" not in sizes(api, auth, scene_id)
    for _ in range(2):  # asked twice: one job
        resp = api.client.get(f"/user/scene/output/point_cloud/{scene_id}", headers=auth)
        assert resp.status_code == 202, resp.text
        assert resp.json()["status"] == "preparing" and resp.headers["retry-after"] == "5"
    assert api.client.get(f"/public/{share}/output/point_cloud").status_code == 404  # only the owner asks
    assert run_derive_jobs(api.settings) == 1
    for iteration in ITERATIONS:
        data = download(api, auth, "point_cloud", scene_id, iteration)
        assert len(positions("point_cloud", data, tmp_path)) == len(originals["splat_cloud"][iteration]) // 32
    assert set(sizes(api, auth, scene_id)) == {"splat_cloud", "point_cloud"}
    assert api.client.get(f"/public/{share}/output/point_cloud").status_code == 200


def test_a_failed_format_is_answered_until_retried(api: Api, db_url: str,
                                                   model: tuple[Path, dict[str, dict[int, bytes]]]) -> None:
    """The worker's failure is the answer (not a new job at every ask), an explicit retry makes it, and an
    iteration whose model is gone is 404 at once rather than a job that can make nothing there."""
    username, auth = api.user()
    root, originals = model
    scene_id = seed_trained_scene(deployment(api, db_url), username, root, {"splat_cloud": originals["splat_cloud"]})
    url = f"/user/scene/output/point_cloud/{scene_id}"
    checkpoint = api.settings.data_dir / "scenes" / scene_id / "train" / "checkpoints" / "2.ckpt"
    assert api.client.get(f"/user/scene/metadata/{scene_id}", headers=auth).json()["models_kept"] == list(ITERATIONS)
    good = checkpoint.read_bytes()
    checkpoint.write_bytes(b"not a checkpoint")  # the worker cannot read the model: a real failure
    assert api.client.get(url, headers=auth).status_code == 202
    assert run_derive_jobs(api.settings) == 1
    for _ in range(2):  # the failure, as often as asked, and no job queued meanwhile
        resp = api.client.get(url, headers=auth)
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"].startswith("Making Point cloud") and "retry=true" in resp.json()["error"]
    assert run_derive_jobs(api.settings) == 0
    checkpoint.write_bytes(good)
    assert api.client.get(url, params={"retry": "true"}, headers=auth).status_code == 202
    assert run_derive_jobs(api.settings) == 1
    assert api.client.get(url, headers=auth).status_code == 200
    checkpoint.unlink()  # the model of iteration 2 goes: the metadata says so, and asking there is 404
    assert api.client.get(f"/user/scene/metadata/{scene_id}", headers=auth).json()["models_kept"] == [4]
    resp = api.client.get(f"/user/scene/output/spz/{scene_id}", params={"iteration": 2}, headers=auth)
    assert resp.status_code == 404 and "iteration 2" in resp.json()["error"], resp.text
    assert run_derive_jobs(api.settings) == 0


def test_bad_edits_are_400_naming_the_problem(api: Api, db_url: str) -> None:
    username, auth = api.user()
    scene_id = seed_scene(deployment(api, db_url), username, name="ball",  # type: ignore[arg-type]
                          outputs={"splat_cloud": {1000: make_splat(400)}})
    url = f"/user/scene/edits/{scene_id}"
    cases = [
        ({"operations": [{**BOX, "op": "paint"}]}, "op"),
        ({"operations": [{**BOX, "shape": "cone"}]}, "shape"),
        ({"operations": [{**BOX, "center": [0, 0]}]}, "center"),
        ({"operations": [{**BOX, "half_size": None}]}, "half_size"),
        ({"operations": [{**BALL, "radius": -1}]}, "radius"),
        ({"operations": []}, "operations"),
        ({"operations": [{**BOX, "center": [50, 50, 50]}]}, "keeps no gaussian"),
    ]
    for body, named in cases:
        resp = api.client.put(url, headers=auth, json=body)
        assert resp.status_code == 400 and named in resp.json()["error"], (body, resp.text)
    nan = json.dumps({"operations": [BOX]}).replace("0.1", "NaN")
    resp = api.client.put(url, headers={**auth, "content-type": "application/json"}, content=nan)
    assert resp.status_code == 400 and "center" in resp.json()["error"], resp.text
    assert api.client.get(url, headers=auth).json()["version"] == 0  # nothing stored


def test_only_the_owner_edits_and_tokens_need_their_scope(api: Api, db_url: str) -> None:
    username, auth = api.user()
    scene_id = seed_scene(deployment(api, db_url), username, name="ball",  # type: ignore[arg-type]
                          outputs={"splat_cloud": {1000: make_splat(400)}})
    url = f"/user/scene/edits/{scene_id}"
    _, other = api.user()
    for method in ("get", "put", "delete"):
        resp = api.client.request(method, url, headers=other, json={"operations": [BOX]})
        assert resp.status_code == 404, (method, resp.text)
    reader = api.client.post("/user/tokens", headers=auth, json={"name": "r", "scopes": ["scenes:read"]})
    read_only = {"Authorization": f"Bearer {reader.json()['token']}"}
    assert api.client.get(url, headers=read_only).status_code == 200
    for method in ("put", "delete"):
        resp = api.client.request(method, url, headers=read_only, json={"operations": [BOX]})
        assert resp.status_code == 403 and "scenes:write" in resp.json()["error"]
    running = seed_scene(deployment(api, db_url), username, name="busy", state="processing",  # type: ignore[arg-type]
                         stage="train", outputs={"splat_cloud": {}})
    resp = api.client.put(f"/user/scene/edits/{running}", headers=auth, json={"operations": [BOX]})
    assert resp.status_code == 409


@pytest.mark.slow  # renders the preview preset's 90 video frames on the CPU twice over: about 25 s
def test_an_edit_renders_the_video_again(api: Api, db_url: str, model: tuple[Path, dict[str, dict[int, bytes]]],
                                         tmp_path: Path) -> None:
    username, auth = api.user()
    root, originals = model
    with_video = {"splat_cloud": originals["splat_cloud"], **export_originals(root, ("video",))}
    scene_id = seed_trained_scene(deployment(api, db_url), username, root, with_video)
    assert api.client.put(f"/user/scene/edits/{scene_id}", headers=auth,
                          json={"operations": [BOX]}).status_code == 202
    assert run_derive_jobs(api.settings) == 1
    for iteration in ITERATIONS:
        video = download(api, auth, "video", scene_id, iteration)
        assert video != with_video["video"][iteration]
        assert check_mp4(video) == PREVIEW.export.video_frames  # made from the edited gaussians, by the preset
    assert api.client.delete(f"/user/scene/edits/{scene_id}", headers=auth).status_code == 200
    assert download(api, auth, "video", scene_id, ITERATIONS[-1]) == with_video["video"][ITERATIONS[-1]]
