"""The rules of webhooks: a user registers URLs for their scenes' events, lists them, removes them and reads
what was delivered. A URL must be http(s) and resolve to public addresses only (``webhook_targets``) unless
``VIDSCENE_WEBHOOK_ALLOW_PRIVATE`` is set. No HTTP and no commit here."""

from __future__ import annotations

import secrets
from typing import cast

from vidscene import webhook_targets
from vidscene.api.deps import UnitOfWork
from vidscene.api.errors import BadRequestError, NotFoundError
from vidscene.api.webhooks import repository
from vidscene.api.webhooks.schemas import (
    DeliveryOut,
    Event,
    NewWebhookOut,
    WebhookOut,
    WebhookRequest,
)
from vidscene.catalogue import WEBHOOK_EVENTS
from vidscene.db.models import Webhook, WebhookDelivery, utcnow

MAX_WEBHOOKS_PER_USER = 10
DELIVERIES_SHOWN = 100
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a credential


class WebhookNotFoundError(NotFoundError):
    default_message = "Webhook not found."


def webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(id=webhook.id, url=webhook.url, events=cast(list[Event], webhook.events),
                      created_at=webhook.created_at)


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery, from_attributes=True)


def create(unit_of_work: UnitOfWork, *, user_id: int, request: WebhookRequest, allow_private: bool) -> NewWebhookOut:
    """Check the URL (resolving its host: blocking, run it in a worker thread), then store the webhook with a
    new signing secret, which is in the answer and shown nowhere else."""
    url = request.url.strip()
    try:
        webhook_targets.check_url(url, allow_private=allow_private)
    except webhook_targets.TargetError as exc:
        raise BadRequestError(f"Invalid url: {exc}.") from exc
    events = [event for event in WEBHOOK_EVENTS if event in request.events]
    with unit_of_work() as session:
        if repository.count_of(session, user_id) >= MAX_WEBHOOKS_PER_USER:
            raise BadRequestError(f"You have {MAX_WEBHOOKS_PER_USER} webhooks; delete one before adding another.")
        webhook = repository.add_webhook(session, Webhook(
            id=secrets.token_urlsafe(12), user_id=user_id, url=url, events=events,
            secret=SECRET_PREFIX + secrets.token_urlsafe(32), created_at=utcnow()))
        return NewWebhookOut(**webhook_out(webhook).model_dump(), secret=webhook.secret)


def list_webhooks(unit_of_work: UnitOfWork, *, user_id: int) -> list[WebhookOut]:
    with unit_of_work() as session:
        return [webhook_out(webhook) for webhook in repository.webhooks_of(session, user_id)]


def delete(unit_of_work: UnitOfWork, *, user_id: int, webhook_id: str) -> None:
    """Remove the webhook and its deliveries: nothing more is sent to it. Another user's is 404."""
    with unit_of_work() as session:
        if not repository.delete_webhook(session, user_id, webhook_id):
            raise WebhookNotFoundError()


def deliveries(unit_of_work: UnitOfWork, *, user_id: int, webhook_id: str) -> list[DeliveryOut]:
    """The webhook's last ``DELIVERIES_SHOWN`` deliveries, newest first."""
    with unit_of_work() as session:
        if repository.owned_webhook(session, user_id, webhook_id) is None:
            raise WebhookNotFoundError()
        return [delivery_out(d) for d in repository.recent_deliveries(session, webhook_id, DELIVERIES_SHOWN)]
