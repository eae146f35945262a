"""Run one stage of one job: claim it, drive the pipeline with a database-backed progress reporter, record
its outputs, and hand over to the next stage.

This is the only place where the pipeline meets the database; the pipeline itself sees a ``ProgressFn``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vidscene.config import Settings
from vidscene.db.models import STAGE_QUEUES, Scene, Stage
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.jobs import estimates, state
from vidscene.pipeline.errors import PipelineError, StorageFullError
from vidscene.pipeline.presets import preset_config
from vidscene.pipeline.progress import Cancelled
from vidscene.pipeline.scene import STAGES, SceneWork
from vidscene.storage import SceneFiles, Storage, StoreUnavailableError, is_disk_full, open_storage
from vidscene.storage.scratch import WorkerScratch
from vidscene.storage.staging import InPlace, StagedScene, StagePlan, Staging

log = logging.getLogger(__name__)

Enqueue = Callable[[int, Stage], None]

CANCEL_POLL_SECONDS = 1.0
PROGRESS_WRITE_SECONDS = 1.0
# A stage blocked in native code (a pycolmap call) cannot see Cancelled; past this grace the process exits.
CANCEL_GRACE_SECONDS = 3.0


@dataclass
class WorkerContext:
    """What a worker process needs to run stages; built once per process (after fork)."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    storage: Storage
    enqueue: Enqueue
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # True inside a Celery child process: a stage stuck in native code after cancellation ends the process.
    hard_exit_on_cancel: bool = False
    scratch: WorkerScratch | None = None  # made on first use: only s3:// stages use scratch

    def scratch_root(self) -> Path:
        """This process's own folder in the scratch dir; what workers that died left there is removed first
        (``storage.scratch``)."""
        if self.scratch is None:
            self.scratch = WorkerScratch(self.settings.resolved_scratch_dir)
        return self.scratch.root()

    @classmethod
    def create(cls, settings: Settings, enqueue: Enqueue, *, hard_exit_on_cancel: bool = False) -> WorkerContext:
        engine = make_engine(settings.resolved_database_url)
        return cls(settings=settings, engine=engine, factory=make_sessionmaker(engine),
                   storage=open_storage(settings.data_dir, settings.storage_url), enqueue=enqueue,
                   hard_exit_on_cancel=hard_exit_on_cancel)


# With an object store: what each stage fetches into its scratch folder and sends back (``storage.staging``;
# the stage table of docs/design.md). A stage never fetches its own results, so a half-sent run is redone.
_COLMAP = ("sfm/colmap/",)  # pycolmap's working files, kept for inspection: no later stage reads them
STAGE_PLANS: Mapping[Stage, StagePlan] = {
    Stage.frames: StagePlan(fetch=("upload/",), mirror=("frames/", "thumbnail.jpg", "capture.json")),
    Stage.sfm: StagePlan(fetch=("frames/", "capture.json"), mirror=("sfm/", "capture.json")),
    Stage.train: StagePlan(fetch=("sfm/", "frames/", "capture.json", "train/", "outputs/", "metrics/"), skip=_COLMAP,
                           mirror=("train/", "outputs/", "metrics/", "capture.json"), sync=("train/",)),
    Stage.export: StagePlan(fetch=("sfm/", "train/checkpoints/", "outputs/", "metrics/"), skip=_COLMAP,
                            mirror=("outputs/", "metrics/")),
}


def derive_plan(edit_version: int, output_types: tuple[str, ...]) -> StagePlan:
    """What a derive job stages: the cameras and the kept models, and only the folders it writes. An edit's
    job owns ``outputs/edits/<version>/`` and nothing else; a format made after the fact owns its type's
    folder (fetched so a re-delivered job keeps what it made). Mirroring all of ``outputs/`` would delete what
    another derive job of the scene sent meanwhile (two edits in a row run on two workers at once)."""
    owned = ((f"outputs/edits/{edit_version}/",) if edit_version
             else tuple(f"outputs/{output_type}/" for output_type in output_types))
    reads = () if edit_version else owned
    return StagePlan(fetch=("sfm/", "train/checkpoints/", *reads), skip=_COLMAP, mirror=owned)


def staging_for(ctx: WorkerContext, scene_id: str, stage: Stage | StagePlan) -> Staging:
    """Where the stage (or a derive job: ``derive_plan``) works: the scene's folder in the data dir, or a
    scratch copy of its objects."""
    if ctx.storage.objects is None:
        return InPlace(ctx.storage.scene(scene_id))
    root = ctx.scratch_root() / ctx.storage.scene(scene_id).root.name
    plan = stage if isinstance(stage, StagePlan) else STAGE_PLANS[stage]
    return StagedScene(ctx.storage.objects, scene_id, root, plan)


class StageReporter:
    """The ``ProgressFn`` handed to a stage, plus a watchdog thread that renews the lease and notices
    cancellation (scene deleted) within about a second even while the stage makes no progress calls."""

    def __init__(self, ctx: WorkerContext, job: state.ClaimedJob, on_abandon: Callable[[], None]) -> None:
        self.ctx = ctx
        self.job = job
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._on_abandon = on_abandon
        self._last_write = 0.0
        self._first: tuple[float, int] | None = None  # (time, position) of the first step reported
        self._stage_done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"job-{job.job_id}-watchdog", daemon=True)

    def __enter__(self) -> StageReporter:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stage_done.set()
        self._stop.set()
        self._thread.join(timeout=10)

    def __call__(self, position: int, total: int, message: str = "") -> None:
        if self.lost.is_set():
            raise Cancelled(f"job {self.job.job_id} is no longer ours")
        now = time.monotonic()
        if now - self._last_write < PROGRESS_WRITE_SECONDS and position < total:
            return
        self._last_write = now
        eta = self._own_eta(now, position, total)
        ok = state.report_progress(self.ctx.factory, self.job.job_id, self.ctx.worker_id, position=position,
                                   size=total, message=message or f"{self.job.stage.value} {position}/{total}",
                                   eta_seconds=eta)
        if not ok:
            self.lost.set()
            raise Cancelled(f"job {self.job.job_id} is no longer ours")

    def _own_eta(self, now: float, position: int, total: int) -> int | None:
        """Seconds left at the rate since the first step reported: the set-up before it (loading frames,
        compiling kernels) is no measure of the steps, and counting it made the first estimates of a
        training stage ten times too long."""
        if self._first is None:
            if position > 0:
                self._first = (now, position)
            return None
        t0, p0 = self._first
        if position <= p0 or total < position:
            return None
        return int((now - t0) / (position - p0) * (total - position))

    def _watch(self) -> None:
        settings = self.ctx.settings
        last_beat = time.monotonic()
        while not self._stop.wait(CANCEL_POLL_SECONDS):
            try:
                if time.monotonic() - last_beat >= settings.heartbeat_seconds:
                    owned = state.heartbeat(self.ctx.factory, self.job.job_id, self.ctx.worker_id,
                                            settings.lease_seconds)
                    last_beat = time.monotonic()
                else:
                    owned = state.still_owned(self.ctx.factory, self.job.job_id, self.ctx.worker_id)
            except Exception:  # a database hiccup must not kill the stage; the lease has slack
                log.warning("heartbeat failed", exc_info=True, extra=self._extra())
                continue
            if not owned:
                self.lost.set()
                log.info("job cancelled or taken over; stopping stage", extra=self._extra())
                if not self._stage_done.wait(CANCEL_GRACE_SECONDS) and self.ctx.hard_exit_on_cancel:
                    log.warning("stage did not stop in time; ending the worker process", extra=self._extra())
                    self._on_abandon()
                    os._exit(3)
                return

    def _extra(self) -> dict[str, object]:
        return {"scene": self.job.scene_id, "stage": self.job.stage.value, "job": self.job.job_id}


def scene_work(ctx: WorkerContext, scene: Scene, files: SceneFiles) -> SceneWork:
    config = preset_config(scene.preset, device=ctx.settings.device)
    return SceneWork.create(scene_id=scene.id, video=files.upload_dir / scene.video_filename, files=files,
                            training_mode=scene.training_mode, output_types=scene.output_types,
                            save_iterations=scene.save_iterations, total_iterations=scene.total_iterations,
                            config=config)


def claim_oldest_first(ctx: WorkerContext, job_id: int, stage: Stage) -> state.ClaimedJob | None:
    """Claim the first waiting job's stage on this delivery's queue in the queue's order (``jobs.fair_queue``:
    round-robin across users, each user's scenes oldest first), else the delivered one.

    The broker hands out stages first in, first out: with 20 scenes queued, every scene would move one stage
    at a time and the first upload would finish with the last. Whichever message a worker gets, it runs the
    first waiting scene's next stage instead and sends the delivered stage again, so there is still one message for
    every waiting stage (the older job's own message turns stale; ``claim`` ignores it when it arrives).
    """
    def claim(job: int, job_stage: Stage) -> state.ClaimedJob | None:
        return state.claim(ctx.factory, job, job_stage, ctx.worker_id, ctx.settings.lease_seconds,
                           max_attempts=ctx.settings.max_attempts)

    queue = STAGE_QUEUES[stage]
    older = state.first_waiting(ctx.factory, [s for s, q in STAGE_QUEUES.items() if q == queue], ahead_of=job_id)
    if older is not None:
        claimed = claim(*older)
        if claimed is not None:
            ctx.enqueue(job_id, stage)
            log.info("older scene first", extra={"job": older[0], "stage": older[1].value, "deferred_job": job_id})
            return claimed
    return claim(job_id, stage)


def record_timing(factory: sessionmaker[Session], claimed: state.ClaimedJob, scene: Scene, seconds: float) -> None:
    """Teach the estimates (``jobs.estimates``) how long this stage took, if it ran in one go: a stage that
    resumed after a killed worker did only part of the work in ``seconds``. Never fails the job."""
    if claimed.attempts != 1:
        return
    units = {Stage.train: scene.total_iterations, Stage.export: len(scene.save_iterations)}.get(claimed.stage) or \
        estimates.stage_units(claimed.stage, scene.preset, estimates.video_frames(scene.video_info))
    try:
        estimates.record_stage(factory, stage=claimed.stage, training_mode=scene.training_mode,
                               preset=scene.preset, units=units, seconds=seconds)
    except Exception:
        log.warning("could not record the stage's duration", exc_info=True,
                    extra={"scene": claimed.scene_id, "stage": claimed.stage.value})


def _ran(ctx: WorkerContext, claimed: state.ClaimedJob, stage_call: Callable[[], None],
         cleanup_if_gone: Callable[[], None], extra: Mapping[str, object]) -> bool:
    """Run the stage; False when it did not finish: cancelled (files of a deleted scene removed), or failed
    with the reason recorded on the job (the user's sentence, a full disk, or a crash logged with its trace)."""
    crashed = f"Processing failed unexpectedly during the {claimed.stage.value} stage."
    try:
        stage_call()
        return True
    except Cancelled:
        cleanup_if_gone()
        log.info("stage stopped: job cancelled", extra=extra)
    except StoreUnavailableError as exc:
        # Not the scene's fault: the job stays as it is, and once the lease runs out the reaper sends the
        # stage again; what was fetched or half sent is redone (``storage.staging``).
        log.warning("stage stopped: object store unavailable: %s", exc, extra=extra)
    except PipelineError as exc:
        log.warning("stage failed: %s", exc, extra=extra)
        state.fail(ctx.factory, claimed.job_id, ctx.worker_id, message=str(exc), code=exc.code)
    except OSError as exc:
        if is_disk_full(exc):
            err = StorageFullError("The server ran out of disk space while processing this scene.")
            state.fail(ctx.factory, claimed.job_id, ctx.worker_id, message=str(err), code=err.code)
        else:
            log.exception("stage crashed", extra=extra)
            state.fail(ctx.factory, claimed.job_id, ctx.worker_id, message=crashed, code=1)
    except Exception:
        log.exception("stage crashed", extra=extra)
        state.fail(ctx.factory, claimed.job_id, ctx.worker_id, message=crashed, code=1)
    return False


def run_stage(ctx: WorkerContext, job_id: int, stage: Stage) -> None:
    """Run a stage (see ``claim_oldest_first``) if this delivery may (``state.claim``), then enqueue the next."""
    claimed = claim_oldest_first(ctx, job_id, stage)
    if claimed is None:
        log.info("stale or duplicate delivery ignored", extra={"job": job_id, "stage": stage.value})
        return
    job_id, stage = claimed.job_id, claimed.stage
    extra = {"scene": claimed.scene_id, "stage": stage.value, "job": job_id, "attempt": claimed.attempts}
    scene = state.scene_for_job(ctx.factory, job_id)
    if scene is None:
        return
    staging = staging_for(ctx, scene.id, stage)
    work = scene_work(ctx, scene, staging.files)

    def cleanup_if_gone() -> None:
        if not state.job_exists(ctx.factory, job_id):
            ctx.storage.remove_scenes([scene.id])
            staging.remove()
            log.info("scene deleted; files removed", extra=extra)

    def on_output(output_type: str, iteration: int, path: Path) -> None:
        if reporter.lost.is_set():
            raise Cancelled("job cancelled")
        staging.push_file(path)  # the row is written only once its file can be read
        state.record_output(ctx.factory, work.scene_id, output_type, iteration,
                            str(path.relative_to(work.files.root)), path.stat().st_size)

    def stage_call() -> None:
        staging.fetch()
        with staging.syncing(ctx.settings.storage_sync_seconds):
            STAGES[stage.value](work, reporter, on_output)
        staging.finish()

    log.info("stage started", extra=extra)
    started = time.monotonic()
    try:
        with StageReporter(ctx, claimed, cleanup_if_gone) as reporter:
            if not _ran(ctx, claimed, stage_call, cleanup_if_gone, extra):
                return
    finally:
        staging.remove()
    seconds = time.monotonic() - started
    following = state.complete_stage(ctx.factory, job_id, ctx.worker_id, stage)
    log.info("stage finished in %.1f s", seconds, extra=extra)
    if following is False:
        cleanup_if_gone()
        return
    record_timing(ctx.factory, claimed, scene, seconds)
    if following is None:
        log.info("scene done", extra=extra)
        return
    ctx.enqueue(job_id, cast(Stage, following))
