"""``/user/webhooks``: URLs told about the user's scenes (``scene.done``, ``scene.failed``,
``scene.cancelled``, ``scene.stage``), each delivery signed with the webhook's secret. Only the login token may
manage them (``CurrentUser`` refuses a personal API token with 403).

HTTP only; the rules are in ``service``. The routes are sync (a worker thread each): creating one resolves
the URL's host name.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, status

from vidscene.api.deps import ContextDep, CurrentUser, SessionReleasingRoute
from vidscene.api.forms import body_of, request_body_openapi
from vidscene.api.schemas import MessageOut, error_responses
from vidscene.api.webhooks import service
from vidscene.api.webhooks.schemas import DeliveryList, NewWebhookOut, WebhookList, WebhookRequest

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/webhooks", tags=["webhooks"], route_class=SessionReleasingRoute)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewWebhookOut,
             summary="Register a webhook (its signing secret is shown this once)",
             responses=error_responses(400, 401, 403, 413), openapi_extra=request_body_openapi(WebhookRequest))
def create_webhook(user: CurrentUser, body: Annotated[WebhookRequest, Depends(body_of(WebhookRequest))],
                   context: ContextDep) -> NewWebhookOut:
    webhook = service.create(context.unit_of_work, user_id=user.id, request=body,
                             allow_private=context.settings.webhook_allow_private)
    logger.info("webhook created", extra={"user_id": user.id, "webhook_id": webhook.id, "events": webhook.events})
    return webhook


@router.get("", response_model=WebhookList, summary="The user's webhooks (never their secrets)",
            responses=error_responses(401, 403))
def list_webhooks(user: CurrentUser, context: ContextDep) -> WebhookList:
    return WebhookList(webhooks=service.list_webhooks(context.unit_of_work, user_id=user.id))


@router.delete("/{webhook_id}", response_model=MessageOut, summary="Delete a webhook and its pending deliveries",
               responses=error_responses(401, 403, 404))
def delete_webhook(webhook_id: str, user: CurrentUser, context: ContextDep) -> MessageOut:
    service.delete(context.unit_of_work, user_id=user.id, webhook_id=webhook_id)
    logger.info("webhook deleted", extra={"user_id": user.id, "webhook_id": webhook_id})
    return MessageOut(message="Webhook deleted")


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList,
            summary="The webhook's last 100 deliveries, newest first", responses=error_responses(401, 403, 404))
def list_deliveries(webhook_id: str, user: CurrentUser, context: ContextDep) -> DeliveryList:
    return DeliveryList(deliveries=service.deliveries(context.unit_of_work, user_id=user.id, webhook_id=webhook_id))
