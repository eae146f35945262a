"""Re-deliver jobs whose worker vanished, so no scene stays "processing" forever.

Runs as a thread inside ``vidscene serve`` and inside every worker: any one of them suffices, and several
at once are safe because ``state.expired_jobs`` pushes each job's expiry forward inside its transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from vidscene.config import Settings
from vidscene.db.fork_guard import sqlite_operation
from vidscene.db.models import Stage, utcnow
from vidscene.jobs import derive, state

log = logging.getLogger(__name__)

# A job waiting for a stage is re-sent after this long: its message may have been lost with the broker.
REQUEUE_WAITING_AFTER = timedelta(minutes=10)


def reap_once(factory: sessionmaker[Session], settings: Settings, enqueue: Callable[[int, Stage], None],
              *, requeue_waiting_after: timedelta = REQUEUE_WAITING_AFTER,
              enqueue_derive: Callable[[int], None] | None = None) -> int:
    """Re-send expired leases and long-waiting stages, and a stage left without a message while the engine
    idles (``state.stalled_job``), and the same for derive jobs (``jobs.derive``); returns how many were sent."""
    now = utcnow()
    sent = 0
    if enqueue_derive is not None:
        for derive_id in derive.expired(factory, now=now, requeue_waiting_after=requeue_waiting_after,
                                        lease_seconds=settings.lease_seconds):
            enqueue_derive(derive_id)
            sent += 1
    jobs = state.expired_jobs(factory, now=now, requeue_waiting_after=requeue_waiting_after,
                              lease_seconds=settings.lease_seconds)
    stalled = state.stalled_job(factory, now=now, idle_after=timedelta(seconds=settings.requeue_idle_seconds),
                                worker_seen_after=timedelta(seconds=3 * settings.reaper_interval_seconds))
    if stalled is not None and stalled[0] not in {job_id for job_id, _ in jobs}:
        jobs.append(stalled)
    for job_id, stage in jobs:
        enqueue(job_id, stage)
    return sent + len(jobs)


class Reaper(threading.Thread):
    def __init__(self, factory: sessionmaker[Session], settings: Settings, enqueue: Callable[[int, Stage], None],
                 *, worker_queues: Sequence[str] = (), enqueue_derive: Callable[[int], None] | None = None) -> None:
        super().__init__(name="vidscene-reaper", daemon=True)
        self.factory = factory
        self.settings = settings
        self.enqueue = enqueue
        self.enqueue_derive = enqueue_derive
        self.worker_queues = tuple(worker_queues)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._stop_event = threading.Event()
        self._sqlite = settings.resolved_database_url.startswith("sqlite")

    def run_once(self) -> int:
        """One pass: the worker's beat, then ``reap_once``. On SQLite inside ``sqlite_operation``, because a
        worker's pool forks stage processes while this thread runs (see ``vidscene.db.fork_guard``); other
        databases keep no lock state in the process, and a stalled server must not hold forks back."""
        with sqlite_operation() if self._sqlite else nullcontext():
            if self.worker_queues:
                state.beat_worker(self.factory, self.worker_id, socket.gethostname(), os.getpid(),
                                  self.worker_queues)
            return reap_once(self.factory, self.settings, self.enqueue, enqueue_derive=self.enqueue_derive)

    def run(self) -> None:
        while True:
            try:
                count = self.run_once()
                if count:
                    log.info("re-delivered %d job(s)", count)
            except Exception:
                log.warning("reaper pass failed", exc_info=True)
            if self._stop_event.wait(self.settings.reaper_interval_seconds):
                break
        if self.worker_queues:
            try:
                with sqlite_operation() if self._sqlite else nullcontext():
                    state.forget_worker(self.factory, self.worker_id)
            except Exception:
                log.debug("could not remove worker beat", exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()
