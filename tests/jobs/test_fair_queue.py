"""The queue is round-robin across users (each user's scenes oldest first): claims and the progress route's
positions follow the one order of ``jobs.fair_queue``."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tests.support.scenes import add_scene
from vidscene.db.models import STAGE_ORDER, STAGE_QUEUES, Stage
from vidscene.jobs import estimates, progress, state

CPU = [stage for stage, queue in STAGE_QUEUES.items() if queue == "cpu"]
WORKER = "host:1"


def three_users(factory: sessionmaker[Session]) -> dict[str, int]:
    """Alice uploads three scenes, then Bob two, then Carol one: oldest first, Carol's would be last."""
    names = [("a1", "alice"), ("a2", "alice"), ("a3", "alice"), ("b1", "bob"), ("b2", "bob"), ("c1", "carol")]
    return {name: add_scene(factory, name, username=user) for name, user in names}


def positions(factory: sessionmaker[Session], scenes: list[str]) -> list[str]:
    """The unfinished scenes in the order of their ``overall_position``."""
    engine = factory.kw["bind"]
    estimates.forget_cached(engine)
    with engine.connect() as conn:
        places = {name: progress.scene_progress(conn, name) for name in scenes}
    unfinished = {name: fields["overall_position"] for name, fields in places.items()
                  if fields is not None and fields["processing"]}
    assert sorted(unfinished.values()) == list(range(len(unfinished)))
    return sorted(unfinished, key=unfinished.__getitem__)


def run_all_through(factory: sessionmaker[Session], job: int, last: Stage) -> None:
    for stage in STAGE_ORDER[:STAGE_ORDER.index(last) + 1]:
        assert state.claim(factory, job, stage, WORKER, 60, max_attempts=3) is not None
        state.complete_stage(factory, job, WORKER, stage)


def test_positions_go_round_robin_across_three_users(factory: sessionmaker[Session]) -> None:
    jobs = three_users(factory)
    # Carol waits behind one scene of each other user, not behind all five.
    assert positions(factory, list(jobs)) == ["a1", "b1", "c1", "a2", "b2", "a3"]
    # A running stage stays ahead of every waiting scene (a worker took a3's message directly); Alice's turn-1
    # scene is still a1, and she was served last.
    assert state.claim(factory, jobs["a3"], Stage.frames, WORKER, 60, max_attempts=3) is not None
    assert positions(factory, list(jobs)) == ["a3", "b1", "c1", "a1", "b2", "a2"]


def test_cpu_stages_are_claimed_round_robin(factory: sessionmaker[Session]) -> None:
    """One cpu worker; every message it gets is the newest scene's (the broker's order does not matter):
    whichever it is, the stage run is the first waiting one in the fair order."""
    jobs = three_users(factory)
    names = {job: name for name, job in jobs.items()}
    ran: list[str] = []
    delivered = (jobs["a3"], Stage.frames)
    for _ in range(12):
        first = state.first_waiting(factory, CPU, ahead_of=delivered[0])
        job, stage = first if first is not None else delivered
        assert state.claim(factory, job, stage, WORKER, 60, max_attempts=3) is not None
        state.complete_stage(factory, job, WORKER, stage)
        ran.append(f"{names[job]}.{stage.value}")
        if job == delivered[0]:
            delivered = (job, Stage.sfm)
    # After frames and SfM the first scenes wait for training (the gpu queue); the cpu then serves the rest.
    assert ran == ["a1.frames", "b1.frames", "c1.frames", "a1.sfm", "b1.sfm", "c1.sfm",
                   "a2.frames", "b2.frames", "a2.sfm", "b2.sfm", "a3.frames", "a3.sfm"]
    # The gpu goes first to Carol, whose last stage was handed out longest ago.
    assert state.first_waiting(factory, [Stage.train], ahead_of=jobs["a3"]) == (jobs["c1"], Stage.train)


def test_a_finished_scene_does_not_give_its_users_next_scene_a_head_start(factory: sessionmaker[Session]) -> None:
    """Alice's second scene is older than Bob's only one, but Alice just had a whole scene: Bob goes first."""
    a1, _ = add_scene(factory, "a1", username="alice"), add_scene(factory, "a2", username="alice")
    b1 = add_scene(factory, "b1", username="bob")
    run_all_through(factory, a1, Stage.export)
    assert positions(factory, ["a1", "a2", "b1"]) == ["b1", "a2"]
    assert state.first_waiting(factory, CPU, ahead_of=b1) is None  # Bob's own message runs Bob's scene
    assert state.first_waiting(factory, CPU, ahead_of=add_scene(factory, "b2", username="bob")) == (b1, Stage.frames)

