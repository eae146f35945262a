"""Bodies of the share-link routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_EXPIRY_DAYS = 3650


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_EXPIRY_DAYS,
                                        description="Days until the link stops working; none: until revoked")


class ShareOut(BaseModel):
    token: str = Field(description="At least 22 URL-safe characters")
    url: str = Field(description="The share page, relative to the server: /s/<token>")
    embed: str = Field(description="An <iframe> snippet for the share page in embed mode")
    created: datetime
    expires: datetime | None


class ShareList(BaseModel):
    shares: list[ShareOut]
