"""Bodies of the personal API token routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vidscene.catalogue import API_TOKEN_NAME_MAX, MAX_TOKEN_DAYS

Scope = Literal["scenes:read", "scenes:write"]  # catalogue.API_SCOPES; a test keeps the two equal


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=API_TOKEN_NAME_MAX, description="What the token is for")
    scopes: list[Scope] = Field(min_length=1, description="What the token may do; at least one")
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_TOKEN_DAYS,
                                        description="Days until the token stops working; none: until revoked")


class ApiTokenOut(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Within a minute; none: never used")


class NewTokenOut(ApiTokenOut):
    token: str = Field(description="The secret, `vst_...`: shown this once, only its hash is kept")


class TokenList(BaseModel):
    tokens: list[ApiTokenOut]
