"""The webhook outbox: a delivery row for every webhook subscribed to an event, written inside the transaction
of the state change the event announces (``jobs.state``).

Written there, an event exists exactly when its change committed: a rolled-back change leaves no delivery,
and a committed one cannot lose its delivery to a crash between the two. Nothing is sent here; the workers
send what is due (``jobs.webhooks``), so the API process never makes an outgoing request.

The body is fixed now, from the same fields as the progress route (``jobs.progress``): a cancelled scene's
rows are deleted in the same transaction, and a later send must still describe the scene as it was.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from vidscene import catalogue
from vidscene.db.models import DeliveryState, Job, Scene, Webhook, WebhookDelivery, utcnow
from vidscene.jobs import progress

SCENE_DONE, SCENE_FAILED, SCENE_CANCELLED, SCENE_STAGE = catalogue.WEBHOOK_EVENTS


def iso(value: datetime) -> str:
    """A time in UTC as the API writes it (pydantic's JSON: ``...Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_ready(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: iso(value) if isinstance(value, datetime) else value for key, value in fields.items()}


def _subscribers(session: Session, condition: ColumnElement[bool], event: str) -> list[tuple[str, str]]:
    """(webhook id, scene id) for each webhook of the scene's owner that wants ``event``."""
    rows = session.execute(select(Webhook.id, Webhook.events, Scene.id.label("scene_id"))
                           .join(Scene, Scene.user_id == Webhook.user_id)
                           .join(Job, Job.scene_id == Scene.id)
                           .where(condition)
                           .order_by(Webhook.created_at, Webhook.id)).all()
    return [(row.id, row.scene_id) for row in rows if event in row.events]


def _add(session: Session, subscribers: Sequence[tuple[str, str]], event: str, stage: str | None) -> int:
    """Insert one delivery per subscriber, all carrying the scene's progress as it is now in this transaction."""
    if not subscribers:
        return 0
    session.flush()  # ORM changes of this transaction (a job failed in ``claim``) must show in the read below
    now = utcnow()
    scenes: dict[str, dict[str, Any] | None] = {}
    added = 0
    for webhook_id, scene_id in subscribers:
        if scene_id not in scenes:
            found = progress.scene_progress(session.connection(), scene_id)
            scenes[scene_id] = None if found is None else _json_ready(found)
        scene = scenes[scene_id]
        if scene is None:
            continue
        delivery_id = secrets.token_urlsafe(16)
        body: dict[str, Any] = {"id": delivery_id, "event": event, "created_at": iso(now), "scene": scene}
        if stage is not None:
            body["stage"] = stage
        session.add(WebhookDelivery(
            id=delivery_id, webhook_id=webhook_id, event=event, scene_id=scene_id,
            payload=json.dumps(body, separators=(",", ":"), sort_keys=True), state=DeliveryState.pending.value,
            attempts=0, created_at=now, next_attempt_at=now))
        added += 1
    return added


def job_event(session: Session, job_id: int, event: str, *, stage: str | None = None) -> int:
    """Record ``event`` of the job ``job_id`` for its owner's webhooks; returns how many deliveries."""
    return _add(session, _subscribers(session, Job.id == job_id, event), event, stage)


def scenes_cancelled(session: Session, scene_ids: Sequence[str]) -> int:
    """Record ``scene.cancelled`` for these scenes (their jobs already marked cancelled, rows not yet deleted)."""
    if not scene_ids:
        return 0
    return _add(session, _subscribers(session, Scene.id.in_(scene_ids), SCENE_CANCELLED), SCENE_CANCELLED, None)
