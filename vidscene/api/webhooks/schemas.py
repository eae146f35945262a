"""Bodies of the webhook routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vidscene.webhook_targets import MAX_URL_LENGTH

Event = Literal["scene.done", "scene.failed", "scene.cancelled", "scene.stage"]  # catalogue.WEBHOOK_EVENTS


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH,
                     description="http(s) URL the events are POSTed to; its host must resolve to public addresses")
    events: list[Event] = Field(min_length=1, description="Which events to send; at least one")


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[Event]
    created_at: datetime


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="`whsec_...`: the HMAC-SHA256 key of the `Vidscene-Signature` header, "
                                    "shown this once")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: str = Field(description="The payload's `id`: receivers dedupe on it")
    event: Event
    scene_id: str
    state: Literal["pending", "delivered", "failed"] = Field(
        description="pending: not yet delivered (retried with back-off); delivered: a 2xx came back; failed: "
                    "given up after 24 h")
    status_code: int | None = Field(description="The last attempt's HTTP status; none without an answer")
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
