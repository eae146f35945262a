"""The estimate rules on a real database: what a finished stage records, which figures count, and the
remaining time of a job at each point of its life."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.scenes import add_scene
from vidscene.db.models import Scene, Stage, StageTiming, utcnow
from vidscene.jobs import estimates, stage_execution, state
from vidscene.jobs.estimates import JobView, remaining_seconds

REF = estimates.REFERENCE_COSTS[("gaussian", "preview")]


def _engine(factory: sessionmaker[Session]) -> Engine:
    bind = factory.kw["bind"]
    assert isinstance(bind, Engine)
    return bind


def _figures(factory: sessionmaker[Session]) -> estimates.Measured:
    with _engine(factory).connect() as conn:
        return estimates.measured(conn, max_age=0)


def test_only_uninterrupted_stages_are_recorded(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory, total=300)
    with factory() as session:
        scene = session.scalars(select(Scene)).one()
        session.expunge(scene)
    resumed = state.ClaimedJob(job_id=job_id, scene_id=scene.id, stage=Stage.train, attempts=2)
    stage_execution.record_timing(factory, resumed, scene, 12.0)  # a re-run after a killed worker did only part of it
    first = state.ClaimedJob(job_id=job_id, scene_id=scene.id, stage=Stage.train, attempts=1)
    stage_execution.record_timing(factory, first, scene, 9.0)
    with factory() as session:
        rows = session.scalars(select(StageTiming)).all()
    assert [(r.stage, r.training_mode, r.preset, r.units, r.seconds) for r in rows] == [
        ("train", "gaussian", "preview", 300, 9.0)]
    costs = _figures(factory).costs("gaussian", "preview")
    assert (costs.source, costs.scenes, costs.seconds_per_iteration) == ("server", 1, 9.0 / 300)
    assert costs.sfm == REF.sfm  # stages this server has not timed yet keep the reference figure


def test_the_median_of_the_latest_runs_only(factory: sessionmaker[Session]) -> None:
    now = utcnow()
    with factory() as session:
        # 30 old slow runs, then the 20 latest at 0.01-0.03 s/iteration: the old ones no longer count
        session.add_all(StageTiming(stage="train", training_mode="gaussian", preset="preview", units=100,
                                    seconds=50.0, finished_at=now - timedelta(days=3, minutes=n)) for n in range(30))
        session.add_all(StageTiming(stage="train", training_mode="gaussian", preset="preview", units=100,
                                    seconds=1.0 + (n % 3), finished_at=now - timedelta(minutes=n)) for n in range(20))
        session.commit()
    costs = _figures(factory).costs("gaussian", "preview")
    assert costs.scenes == estimates.SAMPLES
    assert costs.seconds_per_iteration == 0.02


BASE = JobView(state="processing", stage=None, stage_done=None, running=False, eta_seconds=None,
               stage_started_at=None, training_mode="gaussian", preset="preview", total_iterations=1000)


def _job(**values: Any) -> JobView:
    return replace(BASE, **values)


def test_a_stages_first_estimates_lean_on_its_typical_time(factory: sessionmaker[Session]) -> None:
    """A training stage's own estimate early on is its set-up over a few steps: once "1 h 53 min", then
    "11 min" 25 s later. The typical time carries the start; the stage's own rate takes over by a fifth."""
    figures = _figures(factory)
    per_it, export = REF.seconds_per_iteration or 0.0, REF.export or 0.0
    typical = 1000 * per_it
    shown = []
    for progress, own in [(0.002, 60 * typical), (0.01, 10 * typical), (0.05, 2 * typical), (0.1, 1.2 * typical)]:
        job = _job(stage="train", stage_done="sfm", running=True, eta_seconds=round(own), progress=progress)
        shown.append((remaining_seconds(job, figures) or 0) - export)
    assert all(0.5 * typical < s < 2.0 * typical for s in shown), shown  # never an order of magnitude off
    late = _job(stage="train", stage_done="sfm", running=True, eta_seconds=30, progress=0.5)
    assert remaining_seconds(late, figures) == round(30 + export)  # past a fifth: the stage's own rate


def test_remaining_time_through_a_jobs_life(factory: sessionmaker[Session]) -> None:
    figures = _figures(factory)  # nothing measured: the reference CPU
    per_it = REF.seconds_per_iteration or 0.0
    frames, sfm, export = REF.frames or 0.0, REF.sfm or 0.0, REF.export or 0.0
    assert remaining_seconds(_job(state="queued"), figures) == round(frames + sfm + 1000 * per_it + export)
    now = utcnow()
    sfm_running = _job(stage="sfm", stage_done="frames", running=True, stage_started_at=now - timedelta(seconds=4))
    assert remaining_seconds(sfm_running, figures, now=now) == round(sfm - 4 + 1000 * per_it + export)
    overdue = _job(stage="sfm", stage_done="frames", running=True, stage_started_at=now - timedelta(hours=1))
    assert remaining_seconds(overdue, figures, now=now) == round(1000 * per_it + export)  # never negative
    training = _job(stage="train", stage_done="sfm", running=True, eta_seconds=42)
    assert remaining_seconds(training, figures) == round(42 + export)
    waiting = _job(stage="export", stage_done="train")
    assert remaining_seconds(waiting, figures) == round(export)
    assert remaining_seconds(_job(state="done", stage="export", stage_done="export"), figures) == 0
    # a preset nobody measured: unknown rather than a guess
    assert remaining_seconds(_job(state="queued", preset="quality"), figures) is None


def test_an_estimate_is_a_function_of_the_preset_and_the_videos_length() -> None:
    """Not one past run's time: decoding scales with the video's frames, SfM with those kept (at most the
    preset's), training with the iterations at the preset's bounded step cost."""
    short, reference, long = (estimates.reference_costs("gaussian", "preview", n) for n in (60, 240, 960))
    assert reference == REF  # 240 frames: the reference clip's
    assert estimates.reference_costs("gaussian", "preview") == REF  # unknown length: the reference clip's
    assert short.frames == pytest.approx((reference.frames or 0) / 4)
    assert long.frames == pytest.approx((reference.frames or 0) * 4)
    assert (short.sfm or 0) < (reference.sfm or 0) == long.sfm  # preview keeps at most 80 frames of either
    assert short.seconds_per_iteration == reference.seconds_per_iteration == long.seconds_per_iteration
    # standard's own figures: a dearer step (more gaussians, larger frames) over more iterations
    standard = estimates.reference_costs("gaussian", "standard", 240)
    assert (standard.seconds_per_iteration or 0) > (reference.seconds_per_iteration or 0)
    assert (standard.total_seconds(7000) or 0) > 5 * (reference.total_seconds(1500) or 0)


def test_frames_and_sfm_record_their_units_and_scale_by_them(factory: sessionmaker[Session]) -> None:
    job_id = add_scene(factory, total=300)
    with factory() as session:
        scene = session.scalars(select(Scene)).one()
        scene.video_info = {"frame_count": 480, "duration_s": 20.0}
        session.commit()
        session.refresh(scene)
        session.expunge(scene)
    for stage, seconds in ((Stage.frames, 4.8), (Stage.sfm, 16.0)):
        claimed = state.ClaimedJob(job_id=job_id, scene_id=scene.id, stage=stage, attempts=1)
        stage_execution.record_timing(factory, claimed, scene, seconds)
    with factory() as session:
        units = {r.stage: r.units for r in session.scalars(select(StageTiming))}
    assert units == {"frames": 480, "sfm": 80}  # every frame decoded; SfM on the 80 preview keeps
    figures = _figures(factory)
    half = figures.costs("gaussian", "preview", 240)
    assert half.frames == pytest.approx(2.4)  # 0.01 s a source frame
    assert half.sfm == pytest.approx(16.0)  # still 80 frames kept
    assert figures.costs("gaussian", "preview", 40).sfm == pytest.approx(8.0)  # 40 kept: 0.2 s each
