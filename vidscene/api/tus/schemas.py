"""Bodies of the resumable-upload routes (tus itself has none: its answers are headers)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class UploadOut(BaseModel):
    """``GET`` on an upload URL: where it stands, and the scene it became once its last byte arrived."""

    id: str | None = Field(description="The scene the upload became; null until its last byte arrived")
    upload: str = Field(description="The upload's id (the last part of its URL)")
    offset: int = Field(description="Bytes received and stored")
    length: int = Field(description="The upload's size in bytes (Upload-Length at creation)")
    expires: datetime = Field(description="When an upload left idle is removed")
    file_name: str | None
