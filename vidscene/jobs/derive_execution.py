"""Run one derive job (``jobs.derive``): claim it, make its files with ``pipeline.derive``, record them.

Beside ``stage_execution`` the other place where the pipeline meets the database. A derive job touches no
stage of its scene: it reads the kept models and the SfM cameras and writes next to the originals, so it can
run on a finished scene at any time, and a failure leaves the scene as it was (its edit marked failed).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from vidscene.edits import parse_operations
from vidscene.jobs import derive
from vidscene.jobs.stage_execution import WorkerContext, derive_plan, scene_work, staging_for
from vidscene.pipeline.derive import DeriveRequest, derive_outputs
from vidscene.pipeline.errors import PipelineError
from vidscene.pipeline.progress import Cancelled
from vidscene.pipeline.scene import SceneWork
from vidscene.storage import is_disk_full
from vidscene.storage.staging import Staging

log = logging.getLogger(__name__)


def run_derive(ctx: WorkerContext, job_id: int) -> None:
    """Make a derive job's outputs if this delivery may (``derive.claim``)."""
    claimed = derive.claim(ctx.factory, job_id, ctx.worker_id, ctx.settings.lease_seconds,
                           max_attempts=ctx.settings.max_attempts)
    if claimed is None:
        log.info("stale or duplicate derive delivery ignored", extra={"derive_job": job_id})
        failed = derive.failed_edit(ctx.factory, job_id)
        if failed is not None:  # failed at this claim (killed too often): the killed runs' files go
            ctx.storage.remove_edits(failed[0], lambda version: version == failed[1])
        return
    scene = derive.scene_of(ctx.factory, claimed.scene_id)
    if scene is None:
        return
    staging = staging_for(ctx, scene.id, derive_plan(claimed.edit_version, claimed.output_types))
    work = scene_work(ctx, scene, staging.files)
    try:
        _derive(ctx, job_id, claimed, work, staging)
    finally:
        staging.remove()


def _derive(ctx: WorkerContext, job_id: int, claimed: derive.ClaimedDerive, work: SceneWork,
            staging: Staging) -> None:
    extra = {"scene": claimed.scene_id, "derive_job": job_id, "edit_version": claimed.edit_version}
    made: list[derive.MadeFile] = []
    last_renew = time.monotonic()

    def progress(position: int, total: int, message: str = "") -> None:
        nonlocal last_renew
        if time.monotonic() - last_renew >= ctx.settings.heartbeat_seconds:
            last_renew = time.monotonic()
            if not derive.renew(ctx.factory, job_id, ctx.worker_id, ctx.settings.lease_seconds):
                raise Cancelled(f"derive job {job_id} is no longer ours")

    def on_output(output_type: str, iteration: int, path: Path) -> None:
        staging.push_file(path)  # the row is written only once its file can be read
        made.append(derive.MadeFile(output_type, iteration, str(path.relative_to(work.files.root)),
                                    path.stat().st_size))

    try:
        request = DeriveRequest(output_types=claimed.output_types, edit_version=claimed.edit_version,
                                operations=parse_operations(list(claimed.operations)) if claimed.edit_version
                                else ())
        staging.fetch()
        kept = derive_outputs(work, request, progress, on_output)
        staging.finish()
    except Cancelled:
        log.info("derive job lost its lease (scene deleted, or taken over)", extra=extra)
        _remove_if_deleted(ctx, claimed.scene_id)
        return
    except Exception as exc:
        _failed(ctx, job_id, exc, extra)
        _remove_edit(ctx, claimed)
        return
    outcome = derive.finish(ctx.factory, claimed, ctx.worker_id, made, kept)
    if outcome != derive.RECORDED:
        log.info("derive job %s", outcome, extra=extra)
        if outcome == derive.SUPERSEDED:
            _remove_edit(ctx, claimed)
        else:
            _remove_if_deleted(ctx, claimed.scene_id)
        return
    log.info("derive job done", extra={**extra, "files": len(made), "kept": kept})
    if claimed.edit_version:
        remove_older_edits(ctx, claimed)


def _failed(ctx: WorkerContext, job_id: int, exc: Exception, extra: dict[str, object]) -> None:
    if isinstance(exc, PipelineError):
        message = str(exc)
    elif is_disk_full(exc):
        message = "The server ran out of disk space while making the outputs."
    else:
        log.exception("derive job crashed", extra=extra)
        message = "Making the outputs failed unexpectedly."
    derive.fail(ctx.factory, job_id, ctx.worker_id, message)


def _remove_if_deleted(ctx: WorkerContext, scene_id: str) -> None:
    """A scene deleted while its files were being made: what this job wrote (or sent to the store) after
    the API removed the scene goes too."""
    if derive.scene_of(ctx.factory, scene_id) is None:
        ctx.storage.remove_scenes([scene_id])


def _remove_edit(ctx: WorkerContext, claimed: derive.ClaimedDerive) -> None:
    """The files of an edit that will never be served (superseded, or failed half-way)."""
    version = claimed.edit_version
    if version:
        ctx.storage.remove_edits(claimed.scene_id, lambda found: found == version)


def remove_older_edits(ctx: WorkerContext, claimed: derive.ClaimedDerive) -> None:
    """The files of edit versions before the one just served: their rows went with the switch, and a newer
    version still being made is not touched. Also what a killed job of an older version left."""
    version = claimed.edit_version
    removed = ctx.storage.remove_edits(claimed.scene_id, lambda found: found < version)
    if removed:
        log.info("older edits' objects removed", extra={"scene": claimed.scene_id, "objects": removed})
