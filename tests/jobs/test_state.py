"""The job state machine on SQLite and PostgreSQL: every transition is a conditional update."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.support.scenes import add_scene
from vidscene.db.models import Job, JobState, Output, Scene, Stage, utcnow
from vidscene.jobs import state

W1, W2 = "host:1", "host:2"


def _job(factory: sessionmaker[Session], job_id: int) -> Job:
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_claim_is_exclusive_and_stage_checked(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    assert state.claim(factory, job_id, Stage.sfm, W1, 60, max_attempts=3) is None  # not the next stage
    claimed = state.claim(factory, job_id, Stage.frames, W1, 60, max_attempts=3)
    assert claimed is not None and claimed.stage is Stage.frames and claimed.attempts == 1
    # A duplicate delivery while the lease is live changes nothing.
    assert state.claim(factory, job_id, Stage.frames, W2, 60, max_attempts=3) is None
    job = _job(factory, job_id)
    assert job.state == JobState.processing and job.lease_owner == W1 and job.stage == "frames"


def test_stages_advance_to_done(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    for stage, following in [(Stage.frames, Stage.sfm), (Stage.sfm, Stage.train), (Stage.train, Stage.export)]:
        assert state.claim(factory, job_id, stage, W1, 60, max_attempts=3) is not None
        assert state.report_progress(factory, job_id, W1, position=3, size=7, message="x", eta_seconds=4)
        assert state.complete_stage(factory, job_id, W1, stage) is following
        # A late duplicate of the finished stage is refused.
        assert state.claim(factory, job_id, stage, W2, 60, max_attempts=3) is None
        job = _job(factory, job_id)
        assert job.state == JobState.processing and job.lease_owner is None and job.stage == following.value
    assert state.claim(factory, job_id, Stage.export, W1, 60, max_attempts=3) is not None
    assert state.complete_stage(factory, job_id, W1, Stage.export) is None
    job = _job(factory, job_id)
    assert job.state == JobState.done and job.finished_at is not None


def test_deleted_job_stops_its_worker(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    assert state.claim(factory, job_id, Stage.frames, W1, 60, max_attempts=3)
    with factory() as session:
        session.execute(delete(Scene).where(Scene.id == "scene-1"))
        session.commit()
    assert not state.heartbeat(factory, job_id, W1, 60)
    assert not state.still_owned(factory, job_id, W1)
    assert not state.report_progress(factory, job_id, W1, position=1, size=2, message="", eta_seconds=None)
    assert state.complete_stage(factory, job_id, W1, Stage.frames) is False
    assert not state.job_exists(factory, job_id)


def test_cancelled_job_is_not_ours(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    assert state.claim(factory, job_id, Stage.frames, W1, 60, max_attempts=3)
    with factory() as session:
        session.execute(update(Job).where(Job.id == job_id).values(state=JobState.cancelled.value))
        session.commit()
    assert not state.still_owned(factory, job_id, W1)
    assert not state.job_exists(factory, job_id)


def test_expired_lease_is_reaped_and_reclaimed(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    assert state.claim(factory, job_id, Stage.frames, W1, 60, max_attempts=3)
    assert state.complete_stage(factory, job_id, W1, Stage.frames) is Stage.sfm
    assert state.claim(factory, job_id, Stage.sfm, W1, 1, max_attempts=3)
    now = utcnow()
    assert state.expired_jobs(factory, now=now, requeue_waiting_after=timedelta(minutes=10), lease_seconds=1) == []
    later = now + timedelta(seconds=5)
    assert state.expired_jobs(factory, now=later, requeue_waiting_after=timedelta(minutes=10),
                              lease_seconds=1) == [(job_id, Stage.sfm)]
    # Sent once per period, not on every reaper pass.
    assert state.expired_jobs(factory, now=later, requeue_waiting_after=timedelta(minutes=10), lease_seconds=1) == []
    # The dead worker's late writes are refused; the new delivery claims the same stage as a retry.
    assert not state.heartbeat(factory, job_id, W1, 60)
    claimed = state.claim(factory, job_id, Stage.sfm, W2, 60, max_attempts=3)
    assert claimed is not None and claimed.attempts == 2


def test_waiting_job_is_resent_after_a_while(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    now = utcnow()
    assert state.expired_jobs(factory, now=now, requeue_waiting_after=timedelta(minutes=10), lease_seconds=60) == []
    assert state.expired_jobs(factory, now=now + timedelta(minutes=11), requeue_waiting_after=timedelta(minutes=10),
                              lease_seconds=60) == [(job_id, Stage.frames)]


def test_stage_that_keeps_killing_workers_fails(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    for attempt in range(2):
        claimed = state.claim(factory, job_id, Stage.frames, f"w{attempt}", 60, max_attempts=2)
        assert claimed is not None and claimed.attempts == attempt + 1
        with factory() as session:  # the worker dies: its lease runs out
            session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(1)))
            session.commit()
    assert state.claim(factory, job_id, Stage.frames, "w9", 60, max_attempts=2) is None
    job = _job(factory, job_id)
    assert job.state == JobState.failed and "interrupted 2 times" in job.message and job.error_code != 0


def test_fail_records_reason(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory)
    assert state.claim(factory, job_id, Stage.frames, W1, 60, max_attempts=3)
    assert state.fail(factory, job_id, W1, message="Only 3 of 40 frames could be placed.", code=3)
    job = _job(factory, job_id)
    assert (job.state, job.error_code, job.message) == ("failed", 3, "Only 3 of 40 frames could be placed.")
    assert state.expired_jobs(factory, now=utcnow() + timedelta(days=1), requeue_waiting_after=timedelta(0),
                              lease_seconds=1) == []


def test_record_output_is_idempotent(factory: sessionmaker[Session]) -> None:
    add_scene(factory)
    state.record_output(factory, "scene-1", "splat_cloud", 10, "outputs/splat_cloud/10.splat", 32)
    state.record_output(factory, "scene-1", "splat_cloud", 10, "outputs/splat_cloud/10.splat", 64)
    with factory() as session:
        rows = session.scalars(select(Output)).all()
        assert [(r.output_type, r.iteration, r.size) for r in rows] == [("splat_cloud", 10, 64)]


def _done_through(factory: sessionmaker[Session], job_id: int, stage: Stage) -> None:
    """Run the job's stages up to and including ``stage``."""
    for current in state.STAGE_ORDER[:state.STAGE_ORDER.index(stage) + 1]:
        assert state.claim(factory, job_id, current, W1, 60, max_attempts=3) is not None
        state.complete_stage(factory, job_id, W1, current)


def test_first_waiting_job_on_a_queue(factory: sessionmaker[Session]) -> None:
    old, middle, new = (add_scene(factory, f"scene-{i}") for i in range(3))
    cpu = [Stage.frames, Stage.sfm, Stage.export]
    assert state.first_waiting(factory, cpu, ahead_of=new) == (old, Stage.frames)
    assert state.first_waiting(factory, cpu, ahead_of=old) is None  # nothing older than the oldest
    _done_through(factory, old, Stage.sfm)  # old now waits for training: not a cpu stage
    assert state.first_waiting(factory, cpu, ahead_of=new) == (middle, Stage.frames)
    assert state.first_waiting(factory, [Stage.train], ahead_of=new) == (old, Stage.train)
    assert state.claim(factory, middle, Stage.frames, W2, 60, max_attempts=3) is not None  # leased: not waiting
    assert state.first_waiting(factory, cpu, ahead_of=new) is None
    with factory() as session:
        session.execute(update(Job).where(Job.id == old).values(state=JobState.cancelled.value))
        session.commit()
    assert state.first_waiting(factory, [Stage.train], ahead_of=new) is None


def test_a_stage_whose_message_was_lost_is_sent_again_once_the_engine_idles(factory: sessionmaker[Session]) -> None:
    """Issue 13.13: a lost stage message cost the reaper's 10-minute bound; now seconds once workers idle."""
    lost = add_scene(factory, "lost")
    later = add_scene(factory, "later")
    now = utcnow()
    idle, seen = timedelta(seconds=30), timedelta(seconds=45)
    with factory() as session:
        session.execute(update(Job).values(updated_at=now - timedelta(seconds=60)))
        session.commit()
    # no live worker consumes the queue: nothing to gain from a message nobody reads
    assert state.stalled_job(factory, now=now, idle_after=idle, worker_seen_after=seen) is None
    state.beat_worker(factory, "w:1", "w", 1, ["cpu", "gpu"])
    # a stage is running somewhere: its worker will take the next message, nothing is lost yet
    assert state.claim(factory, later, Stage.frames, W1, 60, max_attempts=3) is not None
    assert state.stalled_job(factory, now=utcnow(), idle_after=idle, worker_seen_after=seen) is None
    assert state.complete_stage(factory, later, W1, Stage.frames) is Stage.sfm
    # The stage just finished and the next pool process has not claimed yet: seconds without a lease are the
    # normal hand-over, not a lost message (the soak sent 143 duplicates for 12 scenes when they counted).
    now = utcnow()
    assert state.stalled_job(factory, now=now + timedelta(seconds=1), idle_after=idle, worker_seen_after=seen) is None
    assert state.stalled_job(factory, now=now + timedelta(seconds=25), idle_after=idle,
                             worker_seen_after=seen) is None
    # Nothing written for 'idle' while 'lost' waits for its frames: the oldest waiting stage is sent again, once
    resent = now + idle + timedelta(seconds=1)
    assert state.stalled_job(factory, now=resent, idle_after=idle,
                             worker_seen_after=timedelta(hours=1)) == (lost, Stage.frames)
    assert state.stalled_job(factory, now=resent + timedelta(seconds=2), idle_after=idle,
                             worker_seen_after=timedelta(hours=1)) is None
    # after another idle period it is sent again (the oldest first, though 'later' waits too by then)
    assert state.stalled_job(factory, now=resent + idle + timedelta(seconds=1), idle_after=idle,
                             worker_seen_after=timedelta(hours=1)) == (lost, Stage.frames)
