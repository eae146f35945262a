"""Whatever stage message a worker receives, the oldest waiting scene on that queue goes first."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.support.scenes import add_scene
from tests.support.videos import make_orbit_video
from vidscene.config import Settings
from vidscene.db.models import Job, Stage
from vidscene.jobs import stage_execution, state
from vidscene.storage.local import Storage


def context(factory: sessionmaker[Session], tmp_path: Path,
            sent: list[tuple[int, Stage]]) -> stage_execution.WorkerContext:
    engine = factory.kw["bind"]
    return stage_execution.WorkerContext(settings=Settings(data_dir=tmp_path, database_url=str(engine.url)),
                                         engine=engine, factory=factory, storage=Storage(tmp_path),
                                         enqueue=lambda job_id, stage: sent.append((job_id, stage)),
                                         worker_id="host:9")


def test_the_oldest_waiting_scene_runs_and_the_delivered_stage_is_sent_again(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    old, new = add_scene(factory, "scene-old"), add_scene(factory, "scene-new")
    sent: list[tuple[int, Stage]] = []
    ctx = context(factory, tmp_path, sent)
    claimed = stage_execution.claim_oldest_first(ctx, new, Stage.frames)
    assert claimed is not None and (claimed.job_id, claimed.stage) == (old, Stage.frames)
    assert sent == [(new, Stage.frames)]  # the new scene keeps a message for its stage
    state.complete_stage(factory, old, "host:9", Stage.frames)
    # The old scene now waits for SfM (cpu queue): the new scene's frames message runs it first again.
    claimed = stage_execution.claim_oldest_first(ctx, new, Stage.frames)
    assert claimed is not None and (claimed.job_id, claimed.stage) == (old, Stage.sfm)
    state.complete_stage(factory, old, "host:9", Stage.sfm)
    # Training is another queue: the cpu message now runs its own stage.
    claimed = stage_execution.claim_oldest_first(ctx, new, Stage.frames)
    assert claimed is not None and (claimed.job_id, claimed.stage) == (new, Stage.frames)
    assert sent == [(new, Stage.frames)] * 2
    # The old scene's own, now stale, SfM message is ignored when it arrives.
    assert stage_execution.claim_oldest_first(ctx, old, Stage.sfm) is None


def test_a_duplicate_stage_message_does_not_run_the_stage_twice(
        factory: sessionmaker[Session], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The reaper may send a waiting stage again when its message only looked lost (issue 13.13): whichever
    copy arrives second, while the first runs or after it finished, is ignored, and the next stage is sent once."""
    job = add_scene(factory, "scene-dup")
    sent: list[tuple[int, Stage]] = []
    ctx = context(factory, tmp_path, sent)
    files = ctx.storage.scene("scene-dup")
    files.create()
    make_orbit_video(files.upload_dir / "video.mp4", n_frames=12, fps=12, seed=5)
    caplog.set_level(logging.INFO, logger="vidscene.jobs.stage_execution")

    # a copy delivered to another worker while the first still runs it: not claimed, nothing sent
    assert state.claim(factory, job, Stage.frames, "other:1", 60, max_attempts=3) is not None
    stage_execution.run_stage(ctx, job, Stage.frames)
    assert sent == []
    assert not files.frames_dir.exists() or not any(files.frames_dir.iterdir())
    with factory() as session:
        session.execute(update(Job).where(Job.id == job).values(lease_owner=None, lease_expires_at=None))
        session.commit()

    stage_execution.run_stage(ctx, job, Stage.frames)  # the first delivery to get the lease runs it
    stage_execution.run_stage(ctx, job, Stage.frames)  # the copy arrives after it finished
    started = [r for r in caplog.records if r.getMessage() == "stage started"]
    ignored = [r for r in caplog.records if r.getMessage() == "stale or duplicate delivery ignored"]
    assert len(started) == 1 and len(ignored) == 2
    assert sent == [(job, Stage.sfm)]  # one message for the next stage, not two
    with factory() as session:
        assert session.get(Job, job).stage_done == Stage.frames.value  # type: ignore[union-attr]
