"""Every SQL statement of the webhook routes."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from vidscene.db.models import Webhook, WebhookDelivery


def add_webhook(session: Session, webhook: Webhook) -> Webhook:
    session.add(webhook)
    session.flush()
    return webhook


def count_of(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Webhook).where(Webhook.user_id == user_id)) or 0


def webhooks_of(session: Session, user_id: int) -> list[Webhook]:
    return list(session.scalars(select(Webhook).where(Webhook.user_id == user_id)
                                .order_by(Webhook.created_at, Webhook.id)))


def owned_webhook(session: Session, user_id: int, webhook_id: str) -> Webhook | None:
    return session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.user_id == user_id))


def delete_webhook(session: Session, user_id: int, webhook_id: str) -> bool:
    """Delete the webhook and (cascade) its deliveries, sent or not."""
    result = session.execute(delete(Webhook).where(Webhook.id == webhook_id, Webhook.user_id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def recent_deliveries(session: Session, webhook_id: str, limit: int) -> list[WebhookDelivery]:
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
                                .limit(limit)))
