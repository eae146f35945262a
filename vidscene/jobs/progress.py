"""What a scene's progress reads as: the answer of ``GET /user/scene/progress/<id>`` and the ``scene`` of a
webhook's payload (``jobs.outbox``), built by the one function here so the two can never disagree.

``progress_statement`` turns any statement selecting one scene into the progress query (the API builds it on
its owned-scene lookup, so ownership and revocation stay one query; the outbox on a lookup by id), and
``progress_fields`` turns its row into the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, bindparam, func, select
from sqlalchemy.orm import aliased

from vidscene.db.models import ACTIVE_STATES, Job, JobState, Scene, Stage
from vidscene.jobs import estimates, fair_queue

SFM_STAGES = (Stage.frames.value, Stage.sfm.value)
# Share of the whole job each stage represents in ``percent`` when neither this server nor the reference CPU has
# figures for the scene's mode and preset (``estimates.ModeCosts.stage_spans`` otherwise): training dominates.
STAGE_SPANS: dict[str, tuple[float, float]] = {
    Stage.frames.value: (0.0, 10.0),
    Stage.sfm.value: (10.0, 30.0),
    Stage.train.value: (30.0, 95.0),
    Stage.export.value: (95.0, 100.0),
}
# The scene columns the progress fields read, for a statement built here rather than by the API.
SCENE_COLUMNS = (Scene.id, Scene.name, Scene.output_types, Scene.save_iterations, Scene.total_iterations,
                 Scene.training_mode, Scene.preset, Scene.video_info)


def progress_statement(scene: Select[Any]) -> Select[Any]:
    """For a statement selecting one scene (at least ``SCENE_COLUMNS``): the scene, its job, and the queue:
    all unfinished (queued or processing) jobs of every user, and how many of them are ahead of this job in
    the queue's order (``fair_queue``: round-robin across users)."""
    everyone = aliased(Job)
    queue_size = select(func.count()).select_from(everyone).where(everyone.state.in_(ACTIVE_STATES))
    queue = fair_queue.fair_queue()
    ahead = select(queue.c.place).where(queue.c.job_id == Job.id)
    return (scene.join(Job, Job.scene_id == Scene.id)
            .add_columns(Job.id.label("job_id"), Job.state, Job.stage, Job.stage_done, Job.lease_owner,
                         Job.stage_started_at, Job.current_position, Job.current_size, Job.eta_seconds,
                         Job.message, Job.error_code, Scene.created_at,
                         Job.started_at, Job.finished_at,
                         queue_size.correlate(None).scalar_subquery().label("queue_size"),
                         ahead.correlate(Job).scalar_subquery().label("ahead")))


SCENE_PROGRESS = progress_statement(cast(Select[Any], select(*SCENE_COLUMNS).where(
    Scene.id == bindparam("scene_id"))))
"""The progress row of a scene by id, whoever owns it (the outbox's view)."""


def percent(job_state: str, stage: str | None, position: int, size: int,
            spans: Mapping[str, tuple[float, float]] | None = None) -> float:
    if job_state == JobState.done.value:
        return 100.0
    span = (spans or STAGE_SPANS).get(stage or "")
    if span is None:
        return 0.0
    fraction = min(1.0, position / size) if size > 0 else 0.0
    return round(span[0] + (span[1] - span[0]) * fraction, 1)


def _estimates(conn: Connection, row: Row[Any], figures: estimates.Measured) -> tuple[int | None, int | None]:
    """(seconds of work left for the scene, seconds until it starts while queued), from what this server
    measured (``jobs.estimates``); either None when unknown."""
    eta = estimates.remaining_seconds(estimates.JobView.of(row), figures)
    if row.state != JobState.queued.value:
        return eta, None
    return eta, estimates.queue_wait_seconds(conn, job_id=row.job_id)


def progress_fields(conn: Connection, row: Row[Any]) -> dict[str, Any]:
    """The seed's progress fields plus ``state/step/percent/eta_seconds/starts_in_seconds``, from a row of
    ``progress_statement``.

    ``overall_position`` is the 0-based place of this job among all unfinished jobs in the queue's order
    (``fair_queue``), ``overall_size`` their count. A finished job is in no queue: it reports position 0 and
    the current size, so a client's "n of m" display stays within bounds.
    """
    job_state: str = row.state
    error = 0
    message = "Scene progress retrieved successfully"
    if job_state == JobState.failed.value:
        error = row.error_code or 1
        message = row.message or "Processing failed."
    elif job_state == JobState.cancelled.value:
        message = row.message or "Processing was cancelled."
    unfinished = job_state in ACTIVE_STATES
    figures = estimates.measured(conn)  # cached: one read of the timings every 30 s at most
    eta, starts_in = _estimates(conn, row, figures) if unfinished else (None, None)
    # Also for a failed or cancelled scene: it shows where it stopped on the scale it was shown on.
    spans = (figures.costs(row.training_mode, row.preset, estimates.video_frames(row.video_info))
             .stage_spans(row.total_iterations))
    return {
        "uuid": row.id,
        "status": 200,
        "error": error,
        "message": message,
        # The seed's clients poll until ``processing`` is false and then show the scene as finished, so it is
        # true while the scene waits in the queue too (the seed's own example: true at position 3 of 10).
        "processing": unfinished,
        "overall_position": (row.ahead or 0) if unfinished else 0,
        "overall_size": row.queue_size or 0,
        "stage": "sfm_list" if (row.stage is None or row.stage in SFM_STAGES) else "nerf_list",
        "current_position": row.current_position,
        "current_size": row.current_size,
        "state": JobState(job_state).value,
        "step": row.stage,
        "percent": percent(job_state, row.stage, row.current_position, row.current_size, spans),
        "eta_seconds": eta,
        "starts_in_seconds": starts_in,
        "preset": row.preset,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at if not unfinished else None,
    }


def scene_progress(conn: Connection, scene_id: str) -> dict[str, Any] | None:
    """The progress fields of the scene ``scene_id`` (None when it has no job row)."""
    row = conn.execute(SCENE_PROGRESS, {"scene_id": scene_id}).one_or_none()
    return None if row is None else progress_fields(conn, row)
