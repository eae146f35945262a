"""A real stage (frames) run by the job engine on ``s3://``: staged into scratch, results sent back, scratch
removed; and a stage that meets the store down is not failed and runs cleanly when delivered again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.support.s3 import S3Server
from tests.support.scenes import add_scene
from tests.support.server import free_port
from tests.support.videos import make_orbit_video
from vidscene.config import Settings
from vidscene.db.migrate import upgrade
from vidscene.db.models import Job, Stage
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.jobs import stage_execution
from vidscene.storage import Storage, scene_key
from vidscene.storage.s3 import S3Store


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'vidscene.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _context(factory: sessionmaker[Session], tmp_path: Path, store: S3Store) -> stage_execution.WorkerContext:
    engine = factory.kw["bind"]
    settings = Settings(data_dir=tmp_path / "worker", database_url=str(engine.url), storage_url=store.url)
    return stage_execution.WorkerContext(settings=settings, engine=engine, factory=factory,
                                         storage=Storage(settings.data_dir, objects=store),
                                         enqueue=lambda job_id, stage: None, worker_id="host:9")


def _job(factory: sessionmaker[Session], job_id: int) -> Job:
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


@pytest.mark.slow  # ~5 s of a real frames stage; the e2e test runs every stage on s3 in the default run
def test_frames_on_s3_after_a_store_outage(factory: sessionmaker[Session], tmp_path: Path,
                                                   s3_server: S3Server, bucket: str, store: S3Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    job = add_scene(factory, "scene-s3")
    store.put_file(scene_key("scene-s3", "upload/video.mp4"),
                   make_orbit_video(tmp_path / "video.mp4", n_frames=12, fps=12, seed=5).path)
    down = S3Store(store.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # the store is down for `down`
    down_ctx = _context(factory, tmp_path, down)
    stage_execution.run_stage(down_ctx, job, Stage.frames)
    found = _job(factory, job)
    assert (found.state, found.stage_done, found.error_code) == ("processing", None, 0)  # not failed
    assert list(down_ctx.scratch_root().iterdir()) == []  # the worker's scratch folder is empty again

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    with factory() as session:  # the lease runs out (the reaper's part), and the stage is delivered again
        session.execute(update(Job).where(Job.id == job).values(lease_owner=None, lease_expires_at=None))
        session.commit()
    ctx = _context(factory, tmp_path, store)
    stage_execution.run_stage(ctx, job, Stage.frames)
    assert _job(factory, job).stage_done == Stage.frames.value
    keys = s3_server.keys(bucket, "pre/scenes/scene-s3/")
    assert "pre/scenes/scene-s3/thumbnail.jpg" in keys and "pre/scenes/scene-s3/capture.json" in keys
    assert any(key.startswith("pre/scenes/scene-s3/frames/frame_") for key in keys)
    assert not [key for key in keys if ".part" in key]
    assert list(ctx.scratch_root().iterdir()) == []
