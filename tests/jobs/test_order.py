"""Whatever stage message a worker receives, the oldest waiting scene on that queue goes first."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tests.jobs.conftest import add_scene
from vidscene.config import Settings
from vidscene.db.models import Stage
from vidscene.jobs import runner, state
from vidscene.storage.local import Storage


def context(factory: sessionmaker[Session], tmp_path: Path, sent: list[tuple[int, Stage]]) -> runner.WorkerContext:
    engine = factory.kw["bind"]
    return runner.WorkerContext(settings=Settings(data_dir=tmp_path, database_url=str(engine.url)), engine=engine,
                                factory=factory, storage=Storage(tmp_path),
                                enqueue=lambda job_id, stage: sent.append((job_id, stage)), worker_id="host:9")


def test_the_oldest_waiting_scene_runs_and_the_delivered_stage_is_sent_again(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    old, new = add_scene(factory, "scene-old"), add_scene(factory, "scene-new")
    sent: list[tuple[int, Stage]] = []
    ctx = context(factory, tmp_path, sent)
    claimed = runner._claim_oldest_first(ctx, new, Stage.frames)
    assert claimed is not None and (claimed.job_id, claimed.stage) == (old, Stage.frames)
    assert sent == [(new, Stage.frames)]  # the new scene keeps a message for its stage
    state.complete_stage(factory, old, "host:9", Stage.frames)
    # The old scene now waits for SfM (cpu queue): the new scene's frames message runs it first again.
    claimed = runner._claim_oldest_first(ctx, new, Stage.frames)
    assert claimed is not None and (claimed.job_id, claimed.stage) == (old, Stage.sfm)
    state.complete_stage(factory, old, "host:9", Stage.sfm)
    # Training is another queue: the cpu message now runs its own stage.
    claimed = runner._claim_oldest_first(ctx, new, Stage.frames)
    assert claimed is not None and (claimed.job_id, claimed.stage) == (new, Stage.frames)
    assert sent == [(new, Stage.frames)] * 2
    # The old scene's own, now stale, SfM message is ignored when it arrives.
    assert runner._claim_oldest_first(ctx, old, Stage.sfm) is None
