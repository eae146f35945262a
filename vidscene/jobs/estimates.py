"""How long a scene will take, from what this server measured: the one place time estimates are made.

An estimate is a function of the preset and the video, never of one past run: each stage's cost per unit of
work times the units this job has (``stage_units``): the video's frames for decoding, the frames kept (at most
the preset's) for SfM, the iterations for training (a step's cost is bounded by the preset's resolution and
its gaussian budget, which no run passes at any iteration: ``gaussian/budget.py``), plain seconds for the export.

Every stage that a worker finishes without interruption leaves a ``stage_timings`` row (``record_stage``):
its mode, preset, units and seconds. The cost per unit is the median of the latest ``SAMPLES`` rows per
(stage, mode, preset) (training's includes the exports and evaluations at saved iterations; rows from before
frames and SfM had units count in plain seconds). Until this server has finished a stage of that kind, the
figure is the reference 2-core CPU's (``catalogue.Preset.costs``, measured in bench/RESULTS.md), or unknown
(None) where nobody measured it.

The API reads estimates on every progress poll, so the table is read once per ``CACHE_SECONDS`` per engine
(one small query), and everything else is arithmetic on rows the progress query already has.
"""

from __future__ import annotations

import statistics
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from vidscene import catalogue
from vidscene.db.models import STAGE_ORDER, Job, JobState, Scene, Stage, StageTiming, WorkerBeat, utcnow
from vidscene.db.session import write_session
from vidscene.jobs import fair_queue

SAMPLES = 20  # latest finished stages per (stage, mode, preset) that an estimate is the median of
CACHE_SECONDS = 30.0
# A worker's reaper beats every ``reaper_interval_seconds`` (15 s by default); one silent for this long is gone.
WORKER_SEEN_SECONDS = 120
QUEUE_LOOKAHEAD = 1000  # unfinished jobs summed at most; a job further back has an unknown wait
QUEUE_CACHE_SECONDS = 5.0
TRUST_OWN_AFTER = 0.2  # share of a stage after which its own remaining-time estimate is taken as it is

SERVER = "server"
REFERENCE = "reference"


@dataclass(frozen=True)
class ModeCosts:
    """Expected seconds of each stage of one (training mode, preset); None where nothing was measured.

    ``source`` and ``scenes`` describe the training figure, which dominates: ``"server"`` with the number of
    this server's finished trainings it is the median of, or ``"reference"`` (0 scenes).
    """

    frames: float | None
    sfm: float | None
    seconds_per_iteration: float | None
    export: float | None
    source: str
    scenes: int = 0

    def stage_seconds(self, stage: Stage, iterations: int) -> float | None:
        if stage == Stage.train:
            return None if self.seconds_per_iteration is None else self.seconds_per_iteration * iterations
        return {Stage.frames: self.frames, Stage.sfm: self.sfm, Stage.export: self.export}[stage]

    def total_seconds(self, iterations: int) -> float | None:
        parts = [self.stage_seconds(stage, iterations) for stage in STAGE_ORDER]
        return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)

    def stage_spans(self, iterations: int) -> dict[str, tuple[float, float]] | None:
        """Each stage's (start, end) in percent of the whole job, by its share of the typical time; None when
        a stage has no figure. A progress bar that reaches 30% when SfM ends (fixed shares) and then crawls
        through training is wrong by minutes: at standard, frames and SfM are 4% of the time."""
        parts = [self.stage_seconds(stage, iterations) for stage in STAGE_ORDER]
        total = sum(p for p in parts if p is not None)
        if any(p is None for p in parts) or total <= 0:
            return None
        spans: dict[str, tuple[float, float]] = {}
        start = 0.0
        for stage, seconds in zip(STAGE_ORDER, parts, strict=True):
            end = min(100.0, start + 100.0 * (seconds or 0.0) / total)
            spans[stage.value] = (start, end)
            start = end
        return spans


REFERENCE_VIDEO_FRAMES = 240  # the 10 s, 24 fps clips the reference figures were measured on


def video_frames(video_info: Mapping[str, Any] | None) -> int | None:
    """The source frame count a scene's ``video_info`` holds (``probe.VideoInfo``), None when unknown."""
    count = (video_info or {}).get("frame_count")
    return int(count) if isinstance(count, (int, float)) and count > 0 else None


def stage_units(stage: Stage, preset: str, frames: int | None) -> int:
    """The units of work a frames or SfM stage has for a video of ``frames`` source frames (0 when unknown):
    decoding reads all of them, SfM works on those kept, at most the preset's ``frames``."""
    if frames is None:
        return 0
    if stage == Stage.frames:
        return frames
    if stage == Stage.sfm:
        target = catalogue.PRESETS[preset].frames if preset in catalogue.PRESETS else 0
        return min(frames, target) if target > 0 else frames
    return 0


def reference_costs(mode: str, preset: str, frames: int | None = None) -> ModeCosts:
    """The reference 2-core CPU's figures for a video of ``frames`` source frames (the reference clip's 240
    when unknown); unknown stages where the catalogue has no figure."""
    found = catalogue.PRESETS.get(preset)
    cost = found.costs.get(mode) if found is not None else None
    if cost is None:
        return UNMEASURED
    count = frames or REFERENCE_VIDEO_FRAMES
    return ModeCosts(cost.seconds_per_source_frame * stage_units(Stage.frames, preset, count),
                     cost.seconds_per_kept_frame * stage_units(Stage.sfm, preset, count),
                     cost.seconds_per_iteration, cost.export_seconds, REFERENCE)


UNMEASURED = ModeCosts(None, None, None, None, REFERENCE)
# The reference figures for the reference clip, by (mode, preset), for readers that want the table.
REFERENCE_COSTS: Mapping[tuple[str, str], ModeCosts] = MappingProxyType({
    (mode, p.name): reference_costs(mode, p.name) for p in catalogue.PRESETS.values() for mode in p.costs})


# ---- what the workers record ----------------------------------------------------------------------------


def record_stage(factory: sessionmaker[Session], *, stage: Stage, training_mode: str, preset: str, units: int,
                 seconds: float) -> None:
    """Keep one uninterrupted stage's duration (``stage_execution`` calls it after the stage completed)."""
    with write_session(factory) as session:
        session.add(StageTiming(stage=stage.value, training_mode=training_mode, preset=preset, units=max(0, units),
                                seconds=max(0.0, seconds), finished_at=utcnow()))


# ---- what the server measured ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """Medians of the server's latest finished stages, by (stage, mode, preset)."""

    seconds: Mapping[tuple[str, str, str], float]
    per_unit: Mapping[tuple[str, str, str], float]
    samples: Mapping[tuple[str, str, str], int]

    def costs(self, mode: str, preset: str, frames: int | None = None) -> ModeCosts:
        """Each stage's expected seconds for a video of ``frames`` source frames (the reference clip's when
        unknown): this server's cost per unit where it has one, else its plain median, else the reference's."""
        reference = reference_costs(mode, preset, frames)
        count = frames or REFERENCE_VIDEO_FRAMES

        def stage(name: Stage, fallback: float | None) -> float | None:
            key = (name.value, mode, preset)
            per_unit = self.per_unit.get(key)
            if per_unit is not None and name in (Stage.frames, Stage.sfm):
                return per_unit * stage_units(name, preset, count)
            return self.seconds.get(key, fallback)

        train_key = (Stage.train.value, mode, preset)
        rate = self.per_unit.get(train_key)
        return ModeCosts(
            frames=stage(Stage.frames, reference.frames),
            sfm=stage(Stage.sfm, reference.sfm),
            seconds_per_iteration=rate if rate is not None else reference.seconds_per_iteration,
            export=stage(Stage.export, reference.export),
            source=SERVER if rate is not None else REFERENCE,
            scenes=self.samples.get(train_key, 0) if rate is not None else 0,
        )


def _load(conn: Connection) -> Measured:
    newest = func.row_number().over(
        partition_by=(StageTiming.stage, StageTiming.training_mode, StageTiming.preset),
        order_by=(StageTiming.finished_at.desc(), StageTiming.id.desc())).label("newest")
    ranked = select(StageTiming.stage, StageTiming.training_mode, StageTiming.preset, StageTiming.units,
                    StageTiming.seconds, newest).subquery()
    rows = conn.execute(select(ranked).where(ranked.c.newest <= SAMPLES)).all()
    seconds: dict[tuple[str, str, str], list[float]] = {}
    per_unit: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        key = (row.stage, row.training_mode, row.preset)
        seconds.setdefault(key, []).append(float(row.seconds))
        if row.units > 0:
            per_unit.setdefault(key, []).append(float(row.seconds) / row.units)
    return Measured(seconds={k: statistics.median(v) for k, v in seconds.items()},
                    per_unit={k: statistics.median(v) for k, v in per_unit.items()},
                    samples={k: len(v) for k, v in per_unit.items()})


_cache: weakref.WeakKeyDictionary[Engine, tuple[float, Measured]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def measured(conn: Connection, *, max_age: float = CACHE_SECONDS) -> Measured:
    """The server's figures, read at most once per ``max_age`` seconds per database engine."""
    engine = conn.engine
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(engine)
    if hit is not None and now - hit[0] < max_age:
        return hit[1]
    fresh = _load(conn)
    with _cache_lock:
        _cache[engine] = (now, fresh)
    return fresh


def forget_cached(engine: Engine) -> None:
    """Drop an engine's cached figures and queue (a test that has just changed them wants to see it)."""
    with _cache_lock:
        _cache.pop(engine, None)
        _queues.pop(engine, None)


def preset_estimates(conn: Connection) -> dict[str, dict[str, dict[str, Any]]]:
    """For the catalogue: preset -> training mode -> the cost of its default run on a 10 s clip (240 source
    frames: a form has no video yet), and where it comes from."""
    figures = measured(conn)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for preset in catalogue.PRESETS.values():
        out[preset.name] = {}
        for mode, iterations in preset.iterations.items():
            costs = figures.costs(mode, preset.name)
            total = costs.total_seconds(iterations)
            known = costs.seconds_per_iteration is not None
            out[preset.name][mode] = {
                "seconds_per_iteration": (round(costs.seconds_per_iteration, 4)
                                          if costs.seconds_per_iteration is not None else None),
                "estimated_seconds": round(total) if total is not None else None,
                "source": costs.source if known else None,
                "scenes": costs.scenes,
                "basis": _basis(costs) if known else "not measured yet on this server or the reference CPU",
            }
    return out


def _basis(costs: ModeCosts) -> str:
    if costs.source == SERVER:
        return f"measured on this server over {costs.scenes} scene{'s' if costs.scenes != 1 else ''}"
    return "measured on the reference 2-core CPU (bench/RESULTS.md)"


# ---- a job's remaining time and its wait in the queue ---------------------------------------------------


@dataclass(frozen=True)
class JobView:
    """The columns of a job (and its scene) that its remaining time depends on."""

    state: str
    stage: str | None
    stage_done: str | None
    running: bool  # a worker holds the lease: ``stage`` is under way
    eta_seconds: int | None  # the running stage's own estimate from its progress (position / elapsed)
    stage_started_at: datetime | None
    training_mode: str
    preset: str
    total_iterations: int
    progress: float | None = None  # share of the running stage done (its position over its size)
    video_frames: int | None = None  # the video's source frames (``video_frames``), None when unknown

    @classmethod
    def of(cls, row: Any) -> JobView:
        done = (row.current_position / row.current_size
                if row.lease_owner is not None and row.current_size else None)
        return cls(state=row.state, stage=row.stage, stage_done=row.stage_done,
                   running=row.lease_owner is not None, eta_seconds=row.eta_seconds,
                   stage_started_at=row.stage_started_at, training_mode=row.training_mode, preset=row.preset,
                   total_iterations=row.total_iterations, progress=min(max(done, 0.0), 1.0) if done else None,
                   video_frames=video_frames(row.video_info))


def _stages_left(job: JobView) -> list[Stage]:
    """The stage under way or next (``jobs.stage``), and those after it."""
    if job.stage is not None:
        return list(STAGE_ORDER[STAGE_ORDER.index(Stage(job.stage)):])
    if job.stage_done is None:
        return list(STAGE_ORDER)
    return list(STAGE_ORDER[STAGE_ORDER.index(Stage(job.stage_done)) + 1:])


def remaining_seconds(job: JobView, figures: Measured, *, now: datetime | None = None) -> int | None:
    """Seconds of work left for the job: the rest of the current stage plus every stage after it (the wait
    in the queue is not included: see ``queue_wait_seconds``). 0 once finished; None when a stage left has
    no figure.

    The current stage's rest is its typical time less what it has run so far, blended into the stage's own
    estimate (elapsed / position) as the stage advances: the own estimate alone swings by an order of
    magnitude in a stage's first seconds (set-up time divided by a handful of steps), the typical time alone
    ignores how fast this machine is today. Past ``TRUST_OWN_AFTER`` of the stage the own estimate stands."""
    if job.state not in (JobState.queued.value, JobState.processing.value):
        return 0
    costs = figures.costs(job.training_mode, job.preset, job.video_frames)
    todo = _stages_left(job)
    if job.stage_done is not None and todo and todo[0].value == job.stage_done:
        todo.pop(0)  # finished, waiting for the next stage's delivery
    total = 0.0
    for n, stage in enumerate(todo):
        typical = costs.stage_seconds(stage, job.total_iterations)
        if n == 0 and job.eta_seconds is not None:
            total += _blended(job.eta_seconds, typical, job.progress)
            continue
        if typical is None:
            return None
        if n == 0 and job.running and job.stage_started_at is not None:
            typical = max(0.0, typical - ((now or utcnow()) - job.stage_started_at).total_seconds())
        total += typical
    return round(total)


def _blended(own: float, typical: float | None, progress: float | None) -> float:
    """The running stage's rest: its ``own`` estimate, weighted by how far it has got, and the ``typical``
    stage time's rest for the remainder (``remaining_seconds``)."""
    if typical is None or progress is None:
        return own
    trust = min(1.0, progress / TRUST_OWN_AFTER)
    return trust * own + (1.0 - trust) * typical * (1.0 - progress)


JOB_COLUMNS = (Job.state, Job.stage, Job.stage_done, Job.lease_owner, Job.eta_seconds, Job.stage_started_at,
               Job.current_position, Job.current_size, Scene.training_mode, Scene.preset, Scene.total_iterations,
               Scene.video_info)


def live_workers(conn: Connection, *, now: datetime | None = None) -> int:
    seen_after = (now or utcnow()) - timedelta(seconds=WORKER_SEEN_SECONDS)
    return int(conn.scalar(LIVE_WORKERS, {"seen_after": seen_after}) or 0)


LIVE_WORKERS = select(func.count()).select_from(WorkerBeat).where(WorkerBeat.seen_at >= bindparam("seen_after"))
_ORDER = fair_queue.fair_queue()
# The unfinished jobs in the queue's order (round-robin across users: ``jobs.fair_queue``).
QUEUE = (select(Job.id.label("job_id"), *JOB_COLUMNS).join(Scene, Scene.id == Job.scene_id)
         .join(_ORDER, _ORDER.c.job_id == Job.id)
         .order_by(_ORDER.c.place).limit(QUEUE_LOOKAHEAD))


@dataclass(frozen=True)
class QueueSnapshot:
    """Seconds of work ahead of each unfinished job (None once a job ahead has no figure), and the workers."""

    ahead: Mapping[int, float | None]
    workers: int
    complete: bool  # False when the queue is longer than QUEUE_LOOKAHEAD (jobs further back are not in it)


def _queue_snapshot(conn: Connection, now: datetime) -> QueueSnapshot:
    figures = measured(conn)
    ahead: dict[int, float | None] = {}
    total: float | None = 0.0
    rows = conn.execute(QUEUE).all()
    for row in rows:
        ahead[row.job_id] = total
        work = remaining_seconds(JobView.of(row), figures, now=now)
        total = None if total is None or work is None else total + work
    return QueueSnapshot(ahead=ahead, workers=live_workers(conn, now=now), complete=len(rows) < QUEUE_LOOKAHEAD)


_queues: weakref.WeakKeyDictionary[Engine, tuple[float, QueueSnapshot]] = weakref.WeakKeyDictionary()


def queue_wait_seconds(conn: Connection, *, job_id: int, now: datetime | None = None,
                       max_age: float = QUEUE_CACHE_SECONDS) -> int | None:
    """Seconds until a queued job is likely to start: the work left in every unfinished job ahead of it
    in the queue's order (``jobs.fair_queue``, as the queue position) shared among the live workers. None when no worker
    is alive, some job ahead has no estimate, or the job is past the first ``QUEUE_LOOKAHEAD``.

    Every queued scene's page polls this, so the whole queue is summed once per ``max_age`` seconds per
    engine (one query) and each poll looks its job up: a long queue costs no more per poll than a short one.
    """
    engine = conn.engine
    clock = time.monotonic()
    with _cache_lock:
        hit = _queues.get(engine)
    # A job missing from a fresh, complete snapshot was queued since: look again (uploads are rare next to polls).
    if hit is None or clock - hit[0] >= max_age or (job_id not in hit[1].ahead and hit[1].complete):
        hit = (clock, _queue_snapshot(conn, now or utcnow()))
        with _cache_lock:
            _queues[engine] = hit
    snapshot = hit[1]
    work = snapshot.ahead.get(job_id)
    if snapshot.workers == 0 or work is None:
        return None
    return round(work / snapshot.workers)
