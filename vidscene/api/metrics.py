"""Prometheus metrics at ``GET /metrics``, through ``prometheus_client``.

Two kinds, by where the truth lives:

- read from the database at scrape time (``DatabaseCollector``): queue depth per queue and state, stage
  durations (``stage_timings``), workers and their last heartbeat. Any API process answers the same, so a
  scrape of one instance behind a load balancer is the cluster's state, whichever process it reached.
- counted in this process (``ApiMetrics``): upload bytes received and answers with a 5xx status. Each API
  process counts its own; scrape every instance and sum (the usual Prometheus practice for counters).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidscene.db.models import ACTIVE_STATES, STAGE_ORDER, STAGE_QUEUES, Job, Stage, StageTiming, WorkerBeat, utcnow
from vidscene.db.session import read_connection

# Paths whose request bodies are uploads (the multipart route and tus PATCHes).
UPLOAD_PATHS = ("/user/scene/new", "/user/scene/uploads/")


def _queue_of(stage: str | None) -> str:
    """The broker queue of the stage a job runs or waits for (``jobs.stage``; none yet: the first stage)."""
    return STAGE_QUEUES[Stage(stage) if stage is not None else STAGE_ORDER[0]]


class DatabaseCollector(Collector):
    """The gauges and summaries read from the database when Prometheus scrapes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []  # collected from the database at scrape time only; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        with read_connection(self.engine) as conn:
            leased = Job.lease_owner.is_not(None)
            jobs = conn.execute(select(Job.stage, leased, func.count()).where(Job.state.in_(ACTIVE_STATES))
                                .group_by(Job.stage, leased)).all()
            timings = conn.execute(select(StageTiming.stage, func.count(), func.sum(StageTiming.seconds))
                                   .group_by(StageTiming.stage)).all()
            workers = conn.execute(select(WorkerBeat.worker_id, WorkerBeat.queues, WorkerBeat.seen_at)).all()
        yield self._queue_depth(jobs)
        stages = SummaryMetricFamily("vidscene_stage_duration_seconds",
                                     "Seconds of stages finished in one go (all time, from stage_timings)",
                                     labels=["stage"])
        for stage, count, seconds in timings:
            stages.add_metric([stage], count_value=count, sum_value=float(seconds or 0.0))
        yield stages
        yield from self._workers(workers)

    @staticmethod
    def _queue_depth(rows: Iterable[Any]) -> Metric:
        depth = {(queue, state): 0 for queue in sorted(set(STAGE_QUEUES.values())) for state in ("waiting", "running")}
        for stage, leased, count in rows:
            key = (_queue_of(stage), "running" if leased else "waiting")
            depth[key] += count
        gauge = GaugeMetricFamily("vidscene_queue_depth", "Unfinished jobs by the queue of their stage: waiting "
                                  "for it, or running it", labels=["queue", "state"])
        for (queue, state), count in depth.items():
            gauge.add_metric([queue, state], count)
        return gauge

    @staticmethod
    def _workers(rows: Iterable[Any]) -> Iterator[Metric]:
        beats = GaugeMetricFamily("vidscene_worker_last_heartbeat_timestamp_seconds",
                                  "When each worker last beat (Unix time)", labels=["worker", "queues"])
        age = GaugeMetricFamily("vidscene_worker_heartbeat_age_seconds", "Seconds since each worker last beat",
                                labels=["worker", "queues"])
        now = utcnow()
        for worker_id, queues, seen_at in rows:
            beats.add_metric([worker_id, queues], seen_at.timestamp())
            age.add_metric([worker_id, queues], max(0.0, (now - seen_at).total_seconds()))
        yield beats
        yield age


class ApiMetrics:
    """One app's registry: its own (so several apps in one process, as in the tests, do not collide)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.upload_bytes = Counter("vidscene_upload_bytes", "Request body bytes received by the upload routes "
                                    "(this process)", registry=self.registry)
        self.server_errors = Counter("vidscene_http_5xx_responses", "Answers with a 5xx status (this process)",
                                     ["status"], registry=self.registry)
        self.registry.register(DatabaseCollector(engine))


def api_metrics(app: Starlette) -> ApiMetrics:
    """The app's metrics (``app.create_app`` keeps them on its state)."""
    metrics = app.state.metrics
    assert isinstance(metrics, ApiMetrics)
    return metrics


class MetricsMiddleware:
    """Counts upload body bytes as the routes read them, and 5xx answers, an unhandled exception included
    (it becomes a 500 further out, in Starlette's ``ServerErrorMiddleware``)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        is_upload = scope["method"] in ("POST", "PATCH") and str(scope["path"]).startswith(UPLOAD_PATHS)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                metrics.upload_bytes.inc(len(message.get("body", b"")))
            return message

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 500:
                metrics.server_errors.labels(str(message["status"])).inc()
            await send(message)

        try:
            await self.app(scope, counting_receive if is_upload else receive, watching_send)
        except Exception:
            metrics.server_errors.labels("500").inc()
            raise
