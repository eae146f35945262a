"""Celery delivers job ids (one task per stage); the database decides whether a delivery may run.

Settings for long jobs: late acks and ``reject_on_worker_lost`` so a killed worker's message is not lost,
prefetch 1 so a worker never sits on a queue of stages it cannot start, one task per child process so
training memory is returned to the system, and a visibility timeout above the longest stage.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery

from vidscene.config import Settings
from vidscene.db.models import STAGE_ORDER, STAGE_QUEUES, Stage
from vidscene.jobs import sqlite_transport

log = logging.getLogger(__name__)

VISIBILITY_TIMEOUT_S = 24 * 3600
# Outputs made after a scene finished (``jobs.derive``): an export's work, on the export stage's queue.
DERIVE_TASK = "vidscene.derive"
DERIVE_QUEUE = STAGE_QUEUES[Stage.export]


def task_name(stage: Stage) -> str:
    return f"vidscene.stage.{stage.value}"


def broker_url(settings: Settings) -> str:
    """The broker URL, with a SQLite broker served by our fork-safe transport (``sqlite_transport``)."""
    url = settings.resolved_broker_url
    scheme, _, rest = url.partition("+")
    if scheme in ("sqla", "sqlalchemy") and rest.startswith("sqlite:"):
        return f"{sqlite_transport.ALIAS}+{rest}"
    return url


def make_celery(settings: Settings) -> Celery:
    app = Celery("vidscene", broker=broker_url(settings), set_as_current=False)
    embedded = settings.is_embedded_broker
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue="cpu",
        task_routes={**{task_name(s): {"queue": q} for s, q in STAGE_QUEUES.items()},
                     DERIVE_TASK: {"queue": DERIVE_QUEUE}},
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        # kombu's SQLAlchemy transport hands its options to create_engine(); it has no visibility timeout.
        broker_transport_options=({"connect_args": {"timeout": 30}} if embedded
                                  else {"visibility_timeout": VISIBILITY_TIMEOUT_S}),
        # The SQLite (kombu SQLAlchemy) transport has no fanout exchanges, which remote control and
        # gossip need; worker liveness is tracked in the database instead (``vidscene status``).
        worker_enable_remote_control=not embedded,
        worker_send_task_events=False,
        broker_heartbeat=0 if embedded else 60,
    )
    if embedded:
        settings.ensure_data_dir()
    _register_tasks(app, settings)
    return app


_contexts: dict[int, Any] = {}


def _context(settings: Settings, app: Celery) -> Any:
    """One ``WorkerContext`` per process: database engines must not cross a fork."""
    from vidscene.jobs.stage_execution import WorkerContext

    pid = os.getpid()
    ctx = _contexts.get(pid)
    if ctx is None:
        ctx = WorkerContext.create(settings, lambda job_id, stage: enqueue_stage(app, job_id, stage),
                                   hard_exit_on_cancel=True)
        _contexts.clear()
        _contexts[pid] = ctx
    return ctx


def _register_tasks(app: Celery, settings: Settings) -> None:
    for stage in STAGE_ORDER:
        def run(job_id: int, _stage: Stage = stage) -> None:
            from vidscene.jobs.stage_execution import run_stage

            run_stage(_context(settings, app), int(job_id), _stage)

        app.task(name=task_name(stage), acks_late=True, reject_on_worker_lost=True)(run)

    def run_derive(job_id: int) -> None:
        from vidscene.jobs.derive_execution import run_derive

        run_derive(_context(settings, app), int(job_id))

    app.task(name=DERIVE_TASK, acks_late=True, reject_on_worker_lost=True)(run_derive)


def enqueue_stage(app: Celery, job_id: int, stage: Stage) -> None:
    sent = app.send_task(task_name(stage), args=[job_id], queue=STAGE_QUEUES[stage])
    # The task id ties this line to the worker's "received" line: how a lost message is told from a late one.
    log.info("enqueued", extra={"job": job_id, "stage": stage.value, "task_id": sent.id, "pid": os.getpid()})


def enqueue_derive(app: Celery, job_id: int) -> None:
    sent = app.send_task(DERIVE_TASK, args=[job_id], queue=DERIVE_QUEUE)
    log.info("enqueued", extra={"derive_job": job_id, "task_id": sent.id, "pid": os.getpid()})
