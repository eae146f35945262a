"""Edits on ``s3://``: the objects of an edit version no longer served leave the bucket (a newer edit served,
an edit superseded before it was served, a revert), the account's usage counts each live file once and no
dead one, and deleting the scene leaves an empty prefix. The API and the worker each have a data dir of
their own; the scene lives only in the bucket."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import update

from tests.support.api_client import Api
from tests.support.s3 import PREFIX, S3Server
from tests.support.trained import (
    ITERATIONS,
    Deployment,
    export_originals,
    run_derive_jobs,
    seed_trained_scene,
    write_model,
)
from vidscene.config import Settings
from vidscene.db.models import DeriveJob
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.storage import open_storage, scene_key

BOX = {"op": "keep_inside", "shape": "box", "center": [0.1, 0.0, 0.0], "half_size": [0.3, 0.5, 0.5]}
BALL = {"op": "delete_inside", "shape": "sphere", "center": [0.2, 0.0, 0.0], "radius": 0.15}



def _seed_in_bucket(api: Api, tmp_path: Path, username: str) -> str:
    """A finished scene with kept models (``tests.support.trained``), moved into the bucket."""
    model = tmp_path / "model"
    write_model(model)
    originals = export_originals(model, ("splat_cloud",))
    seeded = tmp_path / "seed"
    scene_id = seed_trained_scene(Deployment(seeded, api.settings.database_url), username, model, originals)
    storage = open_storage(seeded, api.settings.storage_url)
    assert storage.objects is not None
    root = seeded / "scenes" / scene_id
    for path in root.rglob("*"):
        if path.is_file():
            storage.objects.put_file(scene_key(scene_id, path.relative_to(root).as_posix()), path)
    shutil.rmtree(seeded)
    return scene_id


def _edit(api: Api, auth: dict[str, str], scene_id: str, *operations: Mapping[str, object]) -> None:
    resp = api.client.put(f"/user/scene/edits/{scene_id}", headers=auth, json={"operations": list(operations)})
    assert resp.status_code == 202, resp.text


def _objects(s3_server: S3Server, bucket: str, scene_id: str) -> dict[str, int]:
    """Size of every object of the scene, by its path in the scene."""
    prefix = f"{PREFIX}/scenes/{scene_id}/"
    pages = s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"][len(prefix):]: int(item["Size"]) for page in pages for item in page.get("Contents", [])}


def _edit_versions(objects: dict[str, int]) -> list[str]:
    return sorted({key.split("/")[2] for key in objects if key.startswith("outputs/edits/")})


def _usage_matches_the_bucket(api: Api, auth: dict[str, str], objects: dict[str, int]) -> None:
    """What the account is charged for is what the bucket holds under ``outputs/`` (the seeded scene has no
    upload bytes recorded): no dead version, and no file counted twice."""
    usage = api.client.get("/user/account/usage", headers=auth).json()
    assert usage["bytes"] == sum(size for key, size in objects.items() if key.startswith("outputs/")), objects


def test_dead_edit_versions_leave_the_bucket(s3_api: Api, s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    username, auth = s3_api.user()
    scene_id = _seed_in_bucket(s3_api, tmp_path, username)
    worker = Settings(data_dir=tmp_path / "worker", database_url=s3_api.settings.database_url,
                      storage_url=s3_api.settings.storage_url)

    _edit(s3_api, auth, scene_id, BOX)
    assert run_derive_jobs(worker) == 1
    assert _edit_versions(_objects(s3_server, bucket, scene_id)) == ["1"]
    _edit(s3_api, auth, scene_id, BALL)
    assert run_derive_jobs(worker) == 1  # version 2 served: version 1's objects go
    assert _edit_versions(_objects(s3_server, bucket, scene_id)) == ["2"]

    _edit(s3_api, auth, scene_id, BOX)
    _edit(s3_api, auth, scene_id, BOX, BALL)
    assert run_derive_jobs(worker) == 2  # version 3 is superseded once made, version 4 served
    edit = s3_api.client.get(f"/user/scene/edits/{scene_id}", headers=auth).json()
    assert (edit["version"], edit["served"], edit["state"]) == (4, 4, "ready")
    objects = _objects(s3_server, bucket, scene_id)
    assert _edit_versions(objects) == ["4"]
    assert {f"outputs/edits/4/splat_cloud/{it}.splat" for it in ITERATIONS} <= set(objects)
    for iteration in ITERATIONS:
        served = s3_api.client.get(f"/user/scene/output/splat_cloud/{scene_id}?iteration={iteration}",
                                   headers=auth)
        assert served.status_code == 200
        assert len(served.content) == objects[f"outputs/edits/4/splat_cloud/{iteration}.splat"]

    # Version 5's worker was killed every time (what it had sent stays in the bucket): the job fails at its
    # next claim, and its objects go; version 4 is still served.
    _edit(s3_api, auth, scene_id, BALL)
    s3_server.client().put_object(Bucket=bucket, Key=f"{PREFIX}/scenes/{scene_id}/outputs/edits/5/splat_cloud/2.splat",
                                  Body=b"half")
    engine = make_engine(s3_api.settings.resolved_database_url)
    with make_sessionmaker(engine)() as session:
        session.execute(update(DeriveJob).where(DeriveJob.edit_version == 5).values(attempts=worker.max_attempts))
        session.commit()
    engine.dispose()
    assert run_derive_jobs(worker) == 1
    edit = s3_api.client.get(f"/user/scene/edits/{scene_id}", headers=auth).json()
    assert (edit["version"], edit["served"], edit["state"]) == (5, 4, "failed")
    assert _edit_versions(_objects(s3_server, bucket, scene_id)) == ["4"]

    # The checkpoint made on demand while the edit is served: one file behind two rows (the original's and
    # the served edit's), charged once.
    meta = s3_api.client.get(f"/user/scene/metadata/{scene_id}", headers=auth).json()
    assert meta["models_kept"] == sorted(ITERATIONS), "the models in the bucket are where formats can be made"
    assert s3_api.client.get(f"/user/scene/output/model/{scene_id}", headers=auth).status_code == 202
    assert run_derive_jobs(worker) == 1
    objects = _objects(s3_server, bucket, scene_id)
    assert {f"outputs/model/{it}.ckpt" for it in ITERATIONS} <= set(objects)
    _usage_matches_the_bucket(s3_api, auth, objects)

    assert s3_api.client.delete(f"/user/scene/edits/{scene_id}", headers=auth).status_code == 200
    objects = _objects(s3_server, bucket, scene_id)
    assert _edit_versions(objects) == []
    _usage_matches_the_bucket(s3_api, auth, objects)
    assert not [p for p in (tmp_path / "worker").rglob("*") if p.is_file()]  # no scratch left on the worker

    assert s3_api.client.delete(f"/user/scene/delete/{scene_id}", headers=auth).status_code == 200
    assert s3_server.keys(bucket, f"{PREFIX}/") == []
