"""The job state machine, as conditional updates on the ``jobs`` table.

``queued -> processing(stage) -> done | failed | cancelled``. A worker owns a job only while it holds an
unexpired lease (``lease_owner``, ``lease_expires_at``) that it renews by heartbeat. Every write is a single
``UPDATE ... WHERE`` whose condition encodes the allowed transition, so a duplicate delivery, a worker whose
lease was reaped, or a job deleted under a running stage changes no row and learns so from the row count.

The transitions webhooks hear of (a stage finished, done, failed, cancelled) write their deliveries in the
same transaction (``jobs.outbox``), and only when the transition happened.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from vidscene.db.models import ACTIVE_STATES as ACTIVE_STATES  # re-exported: the API names them through here
from vidscene.db.models import (
    STAGE_ORDER,
    STAGE_QUEUES,
    Job,
    JobState,
    Output,
    Scene,
    Stage,
    WorkerBeat,
    utcnow,
)
from vidscene.db.session import write_session
from vidscene.jobs import fair_queue, outbox

log = logging.getLogger(__name__)


def next_stage(stage_done: str | None) -> Stage | None:
    """The stage to run after ``stage_done`` (None: all done)."""
    if stage_done is None:
        return STAGE_ORDER[0]
    index = STAGE_ORDER.index(Stage(stage_done))
    return STAGE_ORDER[index + 1] if index + 1 < len(STAGE_ORDER) else None


@dataclass(frozen=True)
class ClaimedJob:
    job_id: int
    scene_id: str
    stage: Stage
    attempts: int


def _waits_for(stage: Stage) -> ColumnElement[bool]:
    """The job's next stage is ``stage``: the one before it is its last finished stage."""
    if stage == STAGE_ORDER[0]:
        return Job.stage_done.is_(None)
    return Job.stage_done == STAGE_ORDER[STAGE_ORDER.index(stage) - 1].value


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(Job.lease_owner.is_(None), Job.lease_expires_at.is_(None), Job.lease_expires_at < now)


def claim(factory: sessionmaker[Session], job_id: int, stage: Stage, worker_id: str, lease_seconds: int,
          *, max_attempts: int) -> ClaimedJob | None:
    """Take the lease on ``job_id`` to run ``stage``; None when this delivery is stale or a duplicate.

    The claim succeeds only if the job is unfinished, ``stage`` is the next stage to run, and nobody holds a
    live lease. A stage that keeps killing its worker (out of memory, say) is failed after ``max_attempts``.
    """
    now = utcnow()
    with write_session(factory) as session:
        condition = and_(Job.id == job_id, Job.state.in_(ACTIVE_STATES), _waits_for(stage), _lease_free(now))
        job = session.scalars(select(Job).where(condition).with_for_update()).first()
        if job is None:
            return None
        same_stage_retry = job.stage == stage.value and job.started_at is not None
        attempts = job.attempts + 1 if same_stage_retry else 1
        if attempts > max_attempts:
            job.state = JobState.failed.value
            job.error_code = 1
            job.message = (f"Processing stopped: the {stage.value} stage was interrupted {max_attempts} times "
                           "(the worker ran out of memory or was killed).")
            job.lease_owner = None
            job.finished_at = now
            outbox.job_event(session, job.id, outbox.SCENE_FAILED)
            return None
        job.state = JobState.processing.value
        job.stage = stage.value
        job.attempts = attempts
        job.lease_owner = worker_id
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        job.heartbeat_at = now
        job.stage_started_at = now
        job.started_at = job.started_at or now
        job.current_position = 0
        job.current_size = 0
        job.eta_seconds = None
        job.message = f"Running {stage.value}"
        return ClaimedJob(job_id=job.id, scene_id=job.scene_id, stage=stage, attempts=attempts)


def first_waiting(factory: sessionmaker[Session], stages: Sequence[Stage], *,
                  ahead_of: int) -> tuple[int, Stage] | None:
    """The first job in the queue's order (``fair_queue``) that waits for one of ``stages`` (nobody holds a
    live lease on it) and comes before the job ``ahead_of``, with that stage; None if there is none (or
    ``ahead_of`` is finished: its message is stale).

    Stages are delivered first in, first out, so without this a long queue moves every scene one stage at a
    time and the first upload finishes with the last, and one user's many uploads hold everyone else's
    behind them; see ``stage_execution.claim_oldest_first``.
    """
    now = utcnow()
    queue = fair_queue.fair_queue()
    with factory() as session:
        delivered = session.scalar(select(queue.c.place).where(queue.c.job_id == ahead_of))
        if delivered is None:
            return None
        row = session.execute(
            select(Job.id, Job.stage_done).join(queue, queue.c.job_id == Job.id).where(
                or_(*(_waits_for(stage) for stage in stages)),
                _lease_free(now),
                queue.c.place < delivered,
            ).order_by(queue.c.place).limit(1)
        ).one_or_none()
    if row is None:
        return None
    stage = next_stage(row.stage_done)
    return (row.id, stage) if stage is not None else None


def _owned(job_id: int, worker_id: str) -> ColumnElement[bool]:
    return and_(Job.id == job_id, Job.lease_owner == worker_id, Job.state == JobState.processing.value)


def heartbeat(factory: sessionmaker[Session], job_id: int, worker_id: str, lease_seconds: int) -> bool:
    """Renew the lease; False when the job was cancelled, deleted or reaped (the stage must stop)."""
    now = utcnow()
    with write_session(factory) as session:
        result = session.execute(update(Job).where(_owned(job_id, worker_id)).values(
            lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now))
        return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def still_owned(factory: sessionmaker[Session], job_id: int, worker_id: str) -> bool:
    """A read-only check (no write lock) used to notice cancellation quickly."""
    with factory() as session:
        return session.scalar(select(Job.id).where(_owned(job_id, worker_id))) is not None


def report_progress(factory: sessionmaker[Session], job_id: int, worker_id: str, *, position: int, size: int,
                    message: str, eta_seconds: int | None) -> bool:
    """Record the step counter; False when the job is no longer ours (cancelled/deleted/reaped)."""
    with write_session(factory) as session:
        result = session.execute(update(Job).where(_owned(job_id, worker_id)).values(
            current_position=position, current_size=size, message=message[:500], eta_seconds=eta_seconds))
        return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def complete_stage(factory: sessionmaker[Session], job_id: int, worker_id: str,
                   stage: Stage) -> Stage | bool | None:
    """Mark ``stage`` finished. Returns the next stage, None when the job is done, or False if not ours.

    Between stages the job stays ``processing`` with no owner: the next stage's message is in flight (it
    may wait behind other jobs' stages), and if it was lost the reaper re-sends it after a while.
    """
    now = utcnow()
    following = next_stage(stage.value)
    with write_session(factory) as session:
        values: dict[str, object] = {"stage_done": stage.value, "lease_owner": None, "heartbeat_at": now}
        if following is None:
            values.update(state=JobState.done.value, stage=stage.value, finished_at=now, lease_expires_at=None,
                          message="Scene processed", eta_seconds=0)
        else:
            values.update(stage=following.value, attempts=0, current_position=0, current_size=0,
                          lease_expires_at=None, message=f"Waiting for {following.value}", eta_seconds=None)
        result = session.execute(update(Job).where(_owned(job_id, worker_id)).values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]  # CursorResult has rowcount
            return False
        outbox.job_event(session, job_id, outbox.SCENE_STAGE, stage=stage.value)
        if following is None:
            outbox.job_event(session, job_id, outbox.SCENE_DONE)
    return following


def fail(factory: sessionmaker[Session], job_id: int, worker_id: str, *, message: str, code: int) -> bool:
    now = utcnow()
    with write_session(factory) as session:
        result = session.execute(update(Job).where(_owned(job_id, worker_id)).values(
            state=JobState.failed.value, message=message[:2000], error_code=code or 1, lease_owner=None,
            lease_expires_at=None, finished_at=now, eta_seconds=None))
        if not result.rowcount:  # type: ignore[attr-defined]  # CursorResult has rowcount
            return False
        outbox.job_event(session, job_id, outbox.SCENE_FAILED)
        return True


def restart(session: Session, job: Job, *, keep_through: Stage | None) -> None:
    """Queue a finished job again, inside the caller's write transaction: a retry with other settings.

    ``keep_through`` is the last stage whose result stays valid (``sfm`` when the frames and camera poses
    can be reused), or None to start from the frames. The job goes to the back of the queue. Only a job
    that is done or failed may restart: one still queued or running belongs to the engine.
    """
    if job.state in ACTIVE_STATES:
        raise ValueError(f"job {job.id} is still {job.state}")
    now = utcnow()
    following = next_stage(keep_through.value if keep_through is not None else None)
    job.state = JobState.queued.value
    job.stage_done = keep_through.value if keep_through is not None else None
    job.stage = following.value if following is not None and keep_through is not None else None
    job.current_position = job.current_size = job.attempts = job.error_code = 0
    job.eta_seconds = None
    job.message = f"Waiting for {(following or STAGE_ORDER[0]).value}"
    job.lease_owner = job.lease_expires_at = job.heartbeat_at = None
    job.stage_started_at = job.started_at = job.finished_at = None
    job.created_at = job.updated_at = now
    session.execute(delete(Output).where(Output.scene_id == job.scene_id))


def pending_stage(factory: sessionmaker[Session], job_id: int) -> Stage:
    """The stage a new or restarted job waits for (what to enqueue for it)."""
    with factory() as session:
        done = session.scalar(select(Job.stage_done).where(Job.id == job_id))
    return next_stage(done) or STAGE_ORDER[0]


def delete_scenes(session: Session, scene_ids: Sequence[str]) -> None:
    """Cancel the scenes' jobs and delete the scenes' rows, inside the caller's write transaction.

    The one cancel-then-delete of the service (deleting a scene, deleting an account): a worker running one
    of these jobs sees it cancelled, or gone once the cascade commits, at its next progress report or
    watchdog poll, stops within about a second and removes what it was writing. The files are the caller's
    to remove after the commit. Scenes whose job was unfinished announce ``scene.cancelled`` (``jobs.outbox``)
    before their rows go.
    """
    if not scene_ids:
        return
    unfinished = list(session.scalars(select(Job.scene_id).where(Job.scene_id.in_(scene_ids),
                                                                 Job.state.in_(ACTIVE_STATES))))
    session.execute(update(Job).where(Job.scene_id.in_(scene_ids))
                    .values(state=JobState.cancelled.value, finished_at=utcnow()))
    outbox.scenes_cancelled(session, unfinished)
    session.execute(delete(Scene).where(Scene.id.in_(scene_ids)))


def job_exists(factory: sessionmaker[Session], job_id: int) -> bool:
    with factory() as session:
        return session.scalar(select(Job.id).where(Job.id == job_id,
                                                   Job.state != JobState.cancelled.value)) is not None


def expired_jobs(factory: sessionmaker[Session], *, now: datetime, requeue_waiting_after: timedelta,
                 lease_seconds: int) -> list[tuple[int, Stage]]:
    """Jobs to re-deliver, with the stage to run; their expiry is pushed forward so each is sent once per period.

    Two cases: a running stage whose lease expired (its worker died), and a job waiting for a stage
    (queued, or between stages) whose message may have been lost with the broker for ``requeue_waiting_after``.
    A duplicate message is harmless: ``claim`` lets only one delivery run.
    """
    out: list[tuple[int, Stage]] = []
    with write_session(factory) as session:
        jobs = session.scalars(select(Job).where(
            Job.state.in_(ACTIVE_STATES),
            or_(
                and_(Job.lease_owner.is_not(None), Job.lease_expires_at < now),
                and_(Job.lease_owner.is_(None), Job.lease_expires_at.is_not(None), Job.lease_expires_at < now),
                and_(Job.lease_owner.is_(None), Job.lease_expires_at.is_(None),
                     Job.updated_at < now - requeue_waiting_after),
            ),
        ).with_for_update()).all()
        for job in jobs:
            stage = next_stage(job.stage_done)
            if stage is None:
                continue
            if job.lease_owner is not None:
                log.warning("lease expired, re-delivering", extra={"scene": job.scene_id, "stage": stage.value,
                                                                     "worker": job.lease_owner})
            job.lease_owner = None
            job.lease_expires_at = now + max(requeue_waiting_after, timedelta(seconds=lease_seconds))
            job.updated_at = now
            out.append((job.id, stage))
    return out


def stalled_job(factory: sessionmaker[Session], *, now: datetime, idle_after: timedelta,
                worker_seen_after: timedelta) -> tuple[int, Stage] | None:
    """A job to re-send because its stage message was lost: None unless the engine is idle while work waits.

    Every waiting stage has one message in the broker, and whichever message a worker gets runs the first
    waiting stage of its queue (``stage_execution.claim_oldest_first``); so a lost message shows as an engine with
    nothing to do while a job waits: no live lease anywhere, and no job row written for ``idle_after`` (claims,
    heartbeats, progress and finished stages all write one). The gap between one stage finishing and a new
    pool process claiming the next is a few seconds of that silence and must not count, or every such gap
    would send the oldest waiting stage again (a soak run sent 143 duplicates for 12 scenes that way, each
    costing a process start to be ignored). Then the first waiting job in the queue's order, on a queue some
    live worker consumes, is sent again and its clock restarted: a re-send costs ``idle_after`` plus a reaper interval,
    happens once per ``idle_after`` at most, and is harmless if the message was only late (``claim`` lets one
    delivery run).
    """
    with write_session(factory) as session:
        running = session.scalar(select(Job.id).where(
            Job.state == JobState.processing.value, Job.lease_owner.is_not(None), Job.lease_expires_at >= now,
        ).limit(1))
        if running is not None:
            return None
        last_write = session.scalar(select(func.max(Job.updated_at)))
        if last_write is None or last_write >= now - idle_after:
            return None
        beats = session.scalars(select(WorkerBeat.queues).where(WorkerBeat.seen_at >= now - worker_seen_after))
        consumed = {queue for queues in beats for queue in queues.split(",") if queue}
        stages = [stage for stage, queue in STAGE_QUEUES.items() if queue in consumed]
        if not stages:
            return None
        queue = fair_queue.fair_queue()
        first = select(Job.id).join(queue, queue.c.job_id == Job.id).where(
            or_(*(_waits_for(stage) for stage in stages)), _lease_free(now)).order_by(queue.c.place).limit(1)
        job = session.scalars(select(Job).where(Job.id == first.scalar_subquery()).with_for_update()).first()
        if job is None:
            return None
        stage = next_stage(job.stage_done)
        if stage is None:
            return None
        job.updated_at = now
        log.warning("engine idle while a stage waits: sending it again", extra={"scene": job.scene_id,
                                                                               "stage": stage.value})
        return job.id, stage


def record_output(factory: sessionmaker[Session], scene_id: str, output_type: str, iteration: int, relpath: str,
                  size: int) -> None:
    """Insert or refresh the row for a finished output file (idempotent across retries)."""
    with write_session(factory) as session:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(Output).values(scene_id=scene_id, output_type=output_type, iteration=iteration,
                                     relpath=relpath, size=size, created_at=utcnow())
        session.execute(stmt.on_conflict_do_update(index_elements=["scene_id", "output_type", "iteration"],
                                                   set_={"relpath": relpath, "size": size}))


def scene_for_job(factory: sessionmaker[Session], job_id: int) -> Scene | None:
    with factory() as session:
        job = session.get(Job, job_id)
        return job.scene if job is not None else None


def beat_worker(factory: sessionmaker[Session], worker_id: str, hostname: str, pid: int, queues: Sequence[str]) -> None:
    with write_session(factory) as session:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(WorkerBeat).values(worker_id=worker_id, hostname=hostname, pid=pid, queues=",".join(queues),
                                         seen_at=utcnow())
        session.execute(stmt.on_conflict_do_update(index_elements=["worker_id"], set_={"seen_at": utcnow()}))


def forget_worker(factory: sessionmaker[Session], worker_id: str) -> None:
    with write_session(factory) as session:
        session.execute(delete(WorkerBeat).where(WorkerBeat.worker_id == worker_id))
