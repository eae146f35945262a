"""Derive jobs on the ``derive_jobs`` table: outputs made after a scene finished (an edit's files, or an output
type the upload did not ask for), as conditional updates like ``jobs.state``.

``queued -> processing (lease) -> done | failed``. The API adds a job in its own transaction (``request``)
and sends its id after the commit; a worker claims it (``claim``), renews the lease while it writes
(``renew``), and records every file with the result in one transaction (``finish``): the rows of an edit's
files and the switch of the scene to that edit commit together, so a download never mixes versions. An edit
superseded meanwhile (a newer ``PUT`` or a revert) is recorded as done without serving anything; its files
are the worker's to remove. The API imports this module (no pipeline here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from vidscene.db.models import ACTIVE_STATES, DeriveJob, JobState, Output, Scene, SceneEdit, utcnow
from vidscene.db.session import write_session
from vidscene.edits import UNEDITED
from vidscene.jobs.state import upsert_output

EDIT_READY = "ready"
EDIT_PREPARING = "preparing"
EDIT_FAILED = "failed"
EDIT_ORIGINAL = "original"


@dataclass(frozen=True)
class ClaimedDerive:
    job_id: int
    scene_id: str
    edit_version: int
    output_types: tuple[str, ...]
    operations: tuple[dict[str, object], ...]  # the edit's, as stored (empty for version 0)


@dataclass(frozen=True)
class MadeFile:
    output_type: str
    iteration: int
    relpath: str
    size: int


def request(session: Session, scene_id: str, edit_version: int, output_types: Sequence[str]) -> int | None:
    """Queue a job making ``output_types`` for ``edit_version`` in the caller's transaction; None when an
    unfinished job of the scene already makes all of them for that version (asking twice makes one job)."""
    pending = session.scalars(select(DeriveJob).where(
        DeriveJob.scene_id == scene_id, DeriveJob.edit_version == edit_version,
        DeriveJob.state.in_(ACTIVE_STATES))).all()
    covered = {t for job in pending for t in job.output_types}
    if set(output_types) <= covered:
        return None
    now = utcnow()
    job = DeriveJob(scene_id=scene_id, edit_version=edit_version, output_types=list(dict.fromkeys(output_types)),
                    state=JobState.queued.value, attempts=0, message="", created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    return job.id


def failure(session: Session, scene_id: str, edit_version: int, output_type: str) -> str | None:
    """The message of the newest job making ``output_type`` for ``edit_version`` when it failed; None when
    that job is done or still on its way, or there is none. Asking again must not quietly start the same
    failing job over and over: the API reports this until the owner asks to retry."""
    jobs = session.scalars(select(DeriveJob).where(DeriveJob.scene_id == scene_id,
                                                   DeriveJob.edit_version == edit_version)
                           .order_by(DeriveJob.id.desc())).all()
    newest = next((job for job in jobs if output_type in job.output_types), None)
    if newest is None or newest.state != JobState.failed.value:
        return None
    return newest.message or "Making the outputs failed."


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(DeriveJob.lease_owner.is_(None), DeriveJob.lease_expires_at.is_(None),
               DeriveJob.lease_expires_at < now)


def claim(factory: sessionmaker[Session], job_id: int, worker_id: str, lease_seconds: int, *,
          max_attempts: int) -> ClaimedDerive | None:
    """Take the lease on an unfinished job nobody holds; None for a stale or duplicate delivery. A job that
    keeps killing its worker is failed after ``max_attempts``."""
    now = utcnow()
    with write_session(factory) as session:
        job = session.scalars(select(DeriveJob).where(
            DeriveJob.id == job_id, DeriveJob.state.in_(ACTIVE_STATES), _lease_free(now)).with_for_update()).first()
        if job is None:
            return None
        job.attempts += 1
        if job.attempts > max_attempts:
            _mark_failed(session, job, "Making the outputs was interrupted too often (the worker ran out of "
                                       "memory or was killed).")
            return None
        job.state = JobState.processing.value
        job.lease_owner = worker_id
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        edit = session.get(SceneEdit, job.scene_id) if job.edit_version else None
        operations = tuple(edit.operations) if edit is not None and edit.version == job.edit_version else ()
        if job.edit_version and not operations:  # superseded before it started: nothing to make
            job.state, job.lease_owner, job.message = JobState.done.value, None, "superseded"
            return None
        return ClaimedDerive(job_id=job.id, scene_id=job.scene_id, edit_version=job.edit_version,
                             output_types=tuple(job.output_types), operations=operations)


def _owned(job_id: int, worker_id: str) -> ColumnElement[bool]:
    return and_(DeriveJob.id == job_id, DeriveJob.lease_owner == worker_id,
                DeriveJob.state == JobState.processing.value)


def renew(factory: sessionmaker[Session], job_id: int, worker_id: str, lease_seconds: int) -> bool:
    """Push the lease forward; False when the job is no longer this worker's (its scene was deleted)."""
    with write_session(factory) as session:
        result = session.execute(update(DeriveJob).where(_owned(job_id, worker_id)).values(
            lease_expires_at=utcnow() + timedelta(seconds=lease_seconds)))
        return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


LOST = "lost"  # the job is not this worker's any more: leave the files to whoever has it
SUPERSEDED = "superseded"  # a newer edit or a revert came first: the files are the caller's to remove
RECORDED = "recorded"


def finish(factory: sessionmaker[Session], claimed: ClaimedDerive, worker_id: str, made: Sequence[MadeFile],
           kept: int | None) -> str:
    """Record the files and, for an edit still current, serve it: ``RECORDED``, ``SUPERSEDED`` or ``LOST``."""
    with write_session(factory) as session:
        job = session.scalars(select(DeriveJob).where(_owned(claimed.job_id, worker_id)).with_for_update()).first()
        if job is None:
            return LOST
        job.state, job.lease_owner, job.lease_expires_at = JobState.done.value, None, None
        version = claimed.edit_version
        if version:
            edit = session.scalars(select(SceneEdit).where(SceneEdit.scene_id == claimed.scene_id)
                                   .with_for_update()).first()
            if edit is None or edit.version != version:
                job.message = SUPERSEDED
                return SUPERSEDED
        served = session.scalar(select(Scene.edit_version).where(Scene.id == claimed.scene_id)) or 0
        for f in made:
            upsert_output(session, claimed.scene_id, f.output_type, f.iteration, f.relpath, f.size,
                          edit_version=version)
            if not version and served and f.output_type in UNEDITED:  # the served edit shows the original
                upsert_output(session, claimed.scene_id, f.output_type, f.iteration, f.relpath, f.size,
                              edit_version=served)
        if version:
            _serve_edit(session, claimed.scene_id, version, kept)
        return RECORDED


def _serve_edit(session: Session, scene_id: str, version: int, kept: int | None) -> None:
    """Switch the scene to edit ``version``: the unedited types' originals carried over, older edits' rows
    dropped, the edit marked ready."""
    made = set(session.scalars(select(Output.output_type).where(Output.scene_id == scene_id,
                                                                Output.edit_version == version)))
    for row in session.scalars(select(Output).where(Output.scene_id == scene_id, Output.edit_version == 0)).all():
        if row.output_type not in made:
            upsert_output(session, scene_id, row.output_type, row.iteration, row.relpath, row.size,
                          edit_version=version)
    session.execute(delete(Output).where(Output.scene_id == scene_id, Output.edit_version != 0,
                                         Output.edit_version != version))
    session.execute(update(Scene).where(Scene.id == scene_id).values(edit_version=version))
    values: dict[str, object] = {"state": EDIT_READY, "message": ""}
    if kept is not None:
        values["kept"] = kept
    session.execute(update(SceneEdit).where(SceneEdit.scene_id == scene_id, SceneEdit.version == version)
                    .values(**values))


def failed_edit(factory: sessionmaker[Session], job_id: int) -> tuple[str, int] | None:
    """(scene id, edit version) of a failed job that was making an edit: its files will never be served
    (a new edit takes a new version), so what its killed runs left may go."""
    with factory() as session:
        job = session.get(DeriveJob, job_id)
        if job is None or job.state != JobState.failed.value or not job.edit_version:
            return None
        return job.scene_id, job.edit_version


def scene_of(factory: sessionmaker[Session], scene_id: str) -> Scene | None:
    with factory() as session:
        return session.get(Scene, scene_id)


def fail(factory: sessionmaker[Session], job_id: int, worker_id: str, message: str) -> bool:
    with write_session(factory) as session:
        job = session.scalars(select(DeriveJob).where(_owned(job_id, worker_id)).with_for_update()).first()
        if job is None:
            return False
        _mark_failed(session, job, message)
        return True


def _mark_failed(session: Session, job: DeriveJob, message: str) -> None:
    job.state, job.lease_owner, job.lease_expires_at, job.message = JobState.failed.value, None, None, message[:2000]
    if job.edit_version:
        session.execute(update(SceneEdit).where(SceneEdit.scene_id == job.scene_id,
                                                SceneEdit.version == job.edit_version)
                        .values(state=EDIT_FAILED, message=message[:2000]))


def expired(factory: sessionmaker[Session], *, now: datetime, requeue_waiting_after: timedelta,
            lease_seconds: int) -> list[int]:
    """Jobs to send again: a lease that ran out (its worker died), or a job queued for
    ``requeue_waiting_after`` (its message may be lost); each is pushed forward so it is sent once a period."""
    with write_session(factory) as session:
        jobs = session.scalars(select(DeriveJob).where(
            DeriveJob.state.in_(ACTIVE_STATES),
            or_(and_(DeriveJob.lease_expires_at.is_not(None), DeriveJob.lease_expires_at < now),
                and_(DeriveJob.lease_expires_at.is_(None), DeriveJob.updated_at < now - requeue_waiting_after)),
        ).with_for_update()).all()
        for job in jobs:
            job.lease_owner = None
            job.lease_expires_at = now + max(requeue_waiting_after, timedelta(seconds=lease_seconds))
            job.updated_at = now
        return [job.id for job in jobs]
