"""Fairness soak (run by hand): three users submit 1, 3 and 12 scenes; how long each user's scenes wait before
their first stage starts and until they are done, with the queue oldest-first ("before") and round-robin
across users ("after", ``jobs.fair_queue``).

    .venv/bin/python bench/fair_soak.py [--stage-seconds 0.05] [--order both|oldest|fair]

What runs is the job system with a cheap stage, not the pipeline: a real SQLite database (migrated), the real
claim path (``stage_execution.claim_oldest_first`` -> ``state.first_waiting`` -> ``state.claim``), and per queue
one worker thread fed by a first-in, first-out message list, as Celery's broker is (a message per waiting
stage; the next stage's message sent when a stage completes). A stage is a sleep: frames and export 1 unit,
SfM 2, training 5 (``--stage-seconds`` per unit), so the GPU queue is the bottleneck as it is in production.
"Before" replaces ``state.first_waiting`` with the pre-fairness query (the oldest waiting job, created_at then id).
The heavy user submits first, the light user last: the worst case for the light user under oldest-first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support.scenes import add_scene
from vidscene.config import Settings
from vidscene.db.migrate import upgrade
from vidscene.db.models import ACTIVE_STATES, STAGE_ORDER, STAGE_QUEUES, Job, Stage, utcnow
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.jobs import stage_execution, state
from vidscene.storage import Storage

USERS = (("heavy", 12), ("medium", 3), ("light", 1))  # submitted in this order
UNITS = {Stage.frames: 1, Stage.sfm: 2, Stage.train: 5, Stage.export: 1}
FirstWaiting = Callable[..., "tuple[int, Stage] | None"]


def waits_for(stage: Stage) -> ColumnElement[bool]:
    index = STAGE_ORDER.index(stage)
    return Job.stage_done.is_(None) if index == 0 else Job.stage_done == STAGE_ORDER[index - 1].value


def oldest_first(factory: sessionmaker[Session], stages: Sequence[Stage], *,
                 ahead_of: int) -> tuple[int, Stage] | None:
    """The queue order before ``jobs.fair_queue``: the oldest waiting job created before the delivered one."""
    now = utcnow()
    with factory() as session:
        delivered = session.execute(select(Job.created_at, Job.id).where(Job.id == ahead_of)).one_or_none()
        if delivered is None:
            return None
        row = session.execute(select(Job.id, Job.stage_done).where(
            Job.state.in_(ACTIVE_STATES),
            or_(*(waits_for(stage) for stage in stages)),
            or_(Job.lease_owner.is_(None), Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
            or_(Job.created_at < delivered.created_at,
                and_(Job.created_at == delivered.created_at, Job.id < delivered.id)),
        ).order_by(Job.created_at, Job.id).limit(1)).one_or_none()
    if row is None:
        return None
    stage = state.next_stage(row.stage_done)
    return (row.id, stage) if stage is not None else None


class Engine:
    """One worker thread per queue over FIFO message lists; records when each job started and finished."""

    def __init__(self, factory: sessionmaker[Session], data_dir: Path, unit_seconds: float) -> None:
        self.messages: dict[str, deque[tuple[int, Stage]]] = {"cpu": deque(), "gpu": deque()}
        self.lock = threading.Lock()
        self.unit_seconds = unit_seconds
        self.started: dict[int, float] = {}
        self.finished: dict[int, float] = {}
        engine = factory.kw["bind"]
        self.contexts = {queue: stage_execution.WorkerContext(
            settings=Settings(data_dir=data_dir, database_url=str(engine.url)), engine=engine, factory=factory,
            storage=Storage(data_dir), enqueue=self.send, worker_id=f"bench:{queue}") for queue in self.messages}

    def send(self, job_id: int, stage: Stage) -> None:
        with self.lock:
            self.messages[STAGE_QUEUES[stage]].append((job_id, stage))

    def work(self, queue: str, total: int) -> None:
        ctx = self.contexts[queue]
        while len(self.finished) < total:
            with self.lock:
                message = self.messages[queue].popleft() if self.messages[queue] else None
            if message is None:
                time.sleep(0.002)
                continue
            claimed = stage_execution.claim_oldest_first(ctx, *message)
            if claimed is None:
                continue
            self.started.setdefault(claimed.job_id, time.monotonic())
            time.sleep(UNITS[claimed.stage] * self.unit_seconds)
            following = state.complete_stage(ctx.factory, claimed.job_id, ctx.worker_id, claimed.stage)
            if following is None:
                self.finished[claimed.job_id] = time.monotonic()
            elif following is not False:
                self.send(claimed.job_id, following)


def run(order: str, unit_seconds: float) -> dict[str, tuple[list[float], list[float]]]:
    """Each user's (waits to start, times to finish), in seconds from submission."""
    with tempfile.TemporaryDirectory(prefix="vidscene-fair-") as tmp:
        url = f"sqlite:///{tmp}/vidscene.db"
        upgrade(url)
        db = make_engine(url)
        factory = make_sessionmaker(db)
        engine = Engine(factory, Path(tmp), unit_seconds)
        owners: dict[int, str] = {}
        submitted = time.monotonic()
        for user, count in USERS:
            for n in range(count):
                job = add_scene(factory, f"{user}-{n}", username=user)
                owners[job] = user
                engine.send(job, Stage.frames)
        original: FirstWaiting = state.first_waiting
        if order == "oldest":
            state.first_waiting = oldest_first
        try:
            threads = [threading.Thread(target=engine.work, args=(queue, len(owners))) for queue in engine.messages]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            state.first_waiting = original
            db.dispose()
    out: dict[str, tuple[list[float], list[float]]] = {user: ([], []) for user, _ in USERS}
    for job, user in owners.items():
        out[user][0].append(engine.started[job] - submitted)
        out[user][1].append(engine.finished[job] - submitted)
    return out


def report(order: str, waits: dict[str, tuple[list[float], list[float]]], unit_seconds: float) -> None:
    scene = sum(UNITS.values()) * unit_seconds
    print(f"\n{order}: wait to start / to finish, seconds (one scene alone: {scene:.2f} s of stages)")
    print(f"{'user':8} {'scenes':>6} {'start mean':>10} {'start max':>9} {'done mean':>9} {'done max':>8}")
    for user, count in USERS:
        start, done = waits[user]
        print(f"{user:8} {count:6d} {statistics.mean(start):10.2f} {max(start):9.2f} "
              f"{statistics.mean(done):9.2f} {max(done):8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage-seconds", type=float, default=0.05, help="seconds per stage unit")
    parser.add_argument("--order", choices=("both", "oldest", "fair"), default="both")
    args = parser.parse_args()
    for order in ("oldest", "fair") if args.order == "both" else (args.order,):
        report(order, run(order, args.stage_seconds), args.stage_seconds)


if __name__ == "__main__":
    main()
