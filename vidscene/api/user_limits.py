"""Per-user limits, judged before a job exists: scenes waiting or running (``VIDSCENE_USER_MAX_QUEUED``, 429
above it) and bytes kept (``VIDSCENE_USER_QUOTA_BYTES``, 413 for an upload that would pass it), and
``GET /user/account/usage``, which shows a user where they stand.

The upload routes ask ``check_new_scene`` with the size the request announces (``Content-Length``, tus
``Upload-Length``) before reading a byte of the body, and cap the bytes they then accept at what the quota
has left, so a body without a length cannot pass it either. Two uploads racing may each pass the check: a
limit is a fair-use bound, not an accounting one, and locking the user for the length of an upload would
serialise a user's uploads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, select

from vidscene.api.auth import ScenesReadUser
from vidscene.api.deps import ContextDep, read_in_thread
from vidscene.api.errors import PayloadTooLargeError, TooManyRequestsError
from vidscene.api.schemas import error_responses
from vidscene.config import Settings
from vidscene.db.models import ACTIVE_STATES, Job, Output, Scene, TusUpload

# A user at the queue limit is told to come back; about one preview scene's time on the reference CPU.
RETRY_AFTER_SECONDS = 60
# The scene's upload size, kept in ``scenes.video_info`` when the scene is created.
UPLOAD_BYTES_KEY = "upload_bytes"

router = APIRouter(prefix="/user/account", tags=["account"])


@dataclass(frozen=True)
class Usage:
    queued: int  # scenes waiting or running
    bytes: int  # uploads, outputs, and the announced size of resumable uploads still arriving


def usage(conn: Connection, user_id: int) -> Usage:
    queued = conn.scalar(select(func.count()).select_from(Job).join(Scene, Scene.id == Job.scene_id)
                         .where(Scene.user_id == user_id, Job.state.in_(ACTIVE_STATES)))
    uploads = conn.scalar(select(func.coalesce(func.sum(Scene.video_info[UPLOAD_BYTES_KEY].as_integer()), 0))
                          .where(Scene.user_id == user_id))
    # One file may have several rows: an edit serves the originals of the types it leaves (``UNEDITED``)
    # through rows of its own version pointing at the same file. Count each file once.
    files = (select(Output.scene_id, Output.relpath, func.max(Output.size).label("size"))
             .join(Scene, Scene.id == Output.scene_id).where(Scene.user_id == user_id)
             .group_by(Output.scene_id, Output.relpath).subquery())
    outputs = conn.scalar(select(func.coalesce(func.sum(files.c.size), 0)))
    arriving = conn.scalar(select(func.coalesce(func.sum(TusUpload.length), 0))
                           .where(TusUpload.user_id == user_id, TusUpload.scene_id.is_(None)))
    return Usage(queued=int(queued or 0), bytes=int(uploads or 0) + int(outputs or 0) + int(arriving or 0))


def check_new_scene(conn: Connection, settings: Settings, *, user_id: int, incoming_bytes: int | None) -> int:
    """Refuse a new scene over the user's limits; otherwise the bytes the upload may still take (the quota
    left, or ``settings.max_upload_bytes`` when that is smaller or there is no quota).

    ``incoming_bytes`` is the upload's size as announced (None: unknown until it has arrived).
    """
    if not settings.user_max_queued and not settings.user_quota_bytes:
        return settings.max_upload_bytes
    used = usage(conn, user_id)
    if settings.user_max_queued and used.queued >= settings.user_max_queued:
        raise TooManyRequestsError(
            f"You have {used.queued} scenes waiting or processing, the most allowed at once "
            f"({settings.user_max_queued}). Upload again when one has finished.", retry_after=RETRY_AFTER_SECONDS)
    if not settings.user_quota_bytes:
        return settings.max_upload_bytes
    left = max(0, settings.user_quota_bytes - used.bytes)
    if incoming_bytes is not None and incoming_bytes > left:
        raise PayloadTooLargeError(
            f"This upload ({incoming_bytes} bytes) would pass your storage quota: {used.bytes} of "
            f"{settings.user_quota_bytes} bytes are used. Delete scenes to make room.")
    return min(left, settings.max_upload_bytes)


class UsageOut(BaseModel):
    queued: int = Field(description="Scenes waiting or processing")
    max_queued: int | None = Field(description="Most scenes waiting or processing at once (null: no limit)")
    bytes: int = Field(description="Bytes kept: uploads, outputs and resumable uploads still arriving")
    quota_bytes: int | None = Field(description="The storage quota in bytes (null: no quota)")


def usage_out(conn: Connection, settings: Settings, user_id: int) -> UsageOut:
    used = usage(conn, user_id)
    return UsageOut(queued=used.queued, max_queued=settings.user_max_queued or None, bytes=used.bytes,
                    quota_bytes=settings.user_quota_bytes or None)


@router.get("/usage", response_model=UsageOut, summary="The user's scenes in the queue and bytes kept, "
            "against their limits", responses=error_responses(401, 403))
async def account_usage(user: ScenesReadUser, context: ContextDep) -> UsageOut:
    return await read_in_thread(context, partial(usage_out, settings=context.settings, user_id=user.id))
