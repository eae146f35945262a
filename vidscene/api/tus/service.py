"""The rules of resumable (tus 1.0) uploads: what a creation must say, when bytes may be appended, what a
complete upload becomes, and when an idle one is forgotten. No HTTP here and no commit: the routes pass the
unit of work, and every function is blocking (run it in a worker thread).

A resumable upload carries the same fields as ``POST /user/scene/new`` and they are validated at creation,
before any byte is sent; its last byte turns it into a scene through the same service call as the multipart
route (``scenes.service.create_scene``), in one transaction with the record of which scene it became.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session

from vidscene import format_probe
from vidscene.api.deps import UnitOfWork
from vidscene.api.errors import (
    ConflictError,
    GoneError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaError,
)
from vidscene.api.scenes import repository as scene_repository
from vidscene.api.scenes import service as scenes
from vidscene.api.tus import files, repository
from vidscene.api.upload import check_free_space
from vidscene.db.models import utcnow
from vidscene.format_probe import PROBE_BUF_MAX
from vidscene.storage import Storage

logger = logging.getLogger(__name__)

# The multipart form's text fields, carried in Upload-Metadata under the same names.
SCENE_FIELDS = ("training_mode", "output_types", "save_iterations", "total_iterations", "preset", "scene_name")
FILE_NAME_KEYS = ("filename", "name")  # tus-js-client examples use either
MAX_FILE_NAME = 255
# The first bytes the format is judged from while the rest is still to come: FFmpeg has chosen its demuxer by
# then, always (``vidscene.format_probe``). A container is known after a few KiB; a raw elementary stream,
# whose probe looks for several start codes, can take more, and an undecided guess would refuse a video.
HEAD_BYTES = PROBE_BUF_MAX
# A part file without a row this old is a leftover of a creation that crashed before its commit.
ORPHAN_GRACE_SECONDS = 3600.0


class UploadNotFoundError(NotFoundError):
    """Unknown, terminated or swept upload, or an upload of another user: all the same to the caller."""

    default_message = "Upload not found."


@dataclass(frozen=True)
class UploadState:
    id: str
    length: int
    offset: int
    expires_at: datetime
    scene_id: str | None
    file_name: str | None
    fields: dict[str, str]

    @property
    def complete(self) -> bool:
        return self.scene_id is not None


def _state(row: Any) -> UploadState:
    return UploadState(id=row.id, length=row.length, offset=row.offset, expires_at=row.expires_at,
                       scene_id=row.scene_id, file_name=row.file_name, fields=dict(row.fields))


def _live(row: Row[Any] | Any | None, now: datetime) -> UploadState:
    if row is None:
        raise UploadNotFoundError()
    if row.expires_at <= now:
        raise GoneError("This upload expired; start it again.")
    return _state(row)


# ---- creation ------------------------------------------------------------------------------------------


def create_upload(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, length: int,
                  metadata: dict[str, str], max_bytes: int, free_bytes: int, default_preset: str,
                  expiry_s: int) -> UploadState:
    """A new, empty upload of ``length`` bytes for ``user_id``, its fields validated now.

    Raises ``PayloadTooLargeError`` (over ``max_bytes``), ``InsufficientStorageError`` (the disk cannot take
    it), ``BadRequestError`` naming a bad field. The file exists before the row commits, so a row always has
    its file; a file whose row never committed is swept later (``sweep``).
    """
    if length > max_bytes:
        raise PayloadTooLargeError(f"The video is larger than the limit of {max_bytes} bytes.")
    check_free_space(free_bytes, length)
    fields = {name: metadata[name] for name in SCENE_FIELDS if name in metadata}
    scenes.parse_scene_request(fields, default_preset=default_preset)
    file_name = next((metadata[key] for key in FILE_NAME_KEYS if metadata.get(key)), None)
    if file_name is not None:
        file_name = file_name[:MAX_FILE_NAME]
    upload_id = secrets.token_urlsafe(16)
    path = files.part_path(storage.tmp_dir, upload_id)
    storage.ensure()
    files.create_part(path)
    now = utcnow()
    expires = now + timedelta(seconds=expiry_s)
    try:
        with unit_of_work() as session:
            if not scene_repository.lock_user(session, user_id):
                raise UploadNotFoundError()
            repository.insert_upload(session, upload_id=upload_id, user_id=user_id, length=length,
                                     file_name=file_name, fields=fields, created_at=now, expires_at=expires)
    except BaseException:
        files.remove_part(path)
        raise
    return UploadState(id=upload_id, length=length, offset=0, expires_at=expires, scene_id=None,
                       file_name=file_name, fields=fields)


# ---- reading --------------------------------------------------------------------------------------------


def upload_state(conn: Connection, *, user_id: int, upload_id: str) -> UploadState:
    """The user's upload; ``UploadNotFoundError`` for an unknown or foreign one, ``GoneError`` once expired."""
    return _live(repository.owned_upload(conn, user_id, upload_id), utcnow())


# ---- appending ------------------------------------------------------------------------------------------


def begin_append(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, upload_id: str, offset: int,
                 content_length: int | None) -> tuple[UploadState, files.PartAppender | None]:
    """Check a PATCH against the upload and lock its file for appending at ``offset``.

    ``offset`` must be the upload's (``ConflictError`` otherwise: the client resumes from a HEAD); a body
    announced past the upload's length is ``PayloadTooLargeError`` before a byte is read. A complete upload
    answers a PATCH at its end with no appender (the client's earlier answer was lost). The caller closes the
    appender. The offset is read again once the lock is held: another PATCH may have ended in between.
    """
    with unit_of_work() as session:
        state = _live(repository.lock_owned_upload(session, user_id, upload_id), utcnow())
    _check_offset(state, offset, content_length)
    if state.complete:
        return state, None
    appender = files.PartAppender(files.part_path(storage.tmp_dir, upload_id), state.offset)
    try:
        with unit_of_work() as session:
            state = _live(repository.lock_owned_upload(session, user_id, upload_id), utcnow())
        _check_offset(state, offset, content_length)
        if state.complete:
            appender.close()
            return state, None
        if appender.start != state.offset:
            appender.close()
            appender = files.PartAppender(appender.path, state.offset)
    except BaseException:
        appender.close()
        raise
    return state, appender


def _check_offset(state: UploadState, offset: int, content_length: int | None) -> None:
    if offset != state.offset:
        raise ConflictError(f"Upload-Offset {offset} does not match the upload's offset {state.offset}; "
                            "resume from the offset a HEAD request gives.")
    if content_length is not None and state.offset + content_length > state.length:
        raise PayloadTooLargeError(f"The body goes past the upload's length of {state.length} bytes.")


def record_append(unit_of_work: UnitOfWork, *, upload_id: str, start: int, offset: int,
                  expiry_s: int) -> datetime:
    """Count the fsynced bytes up to ``offset`` and push the expiry back; returns the new expiry.

    ``UploadNotFoundError`` when the upload was terminated while its bytes arrived (its file is removed)."""
    expires = utcnow() + timedelta(seconds=expiry_s)
    with unit_of_work() as session:
        if not repository.advance_offset(session, upload_id, start=start, offset=offset, expires_at=expires):
            raise UploadNotFoundError()
    return expires


def check_head(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, upload_id: str) -> None:
    """Judge the format from the first ``HEAD_BYTES`` of the upload (in its file now, the rest still to come).

    A file FFmpeg will not open as a video (an image, a playlist, nothing it recognises) is
    ``UnsupportedMediaError`` now rather than after gigabytes, and nothing is kept, as at completion. Called
    with the upload's file locked, once per upload: by the PATCH whose bytes reach ``HEAD_BYTES``.
    """
    path = files.part_path(storage.tmp_dir, upload_id)
    head, _ = format_probe.read_head(path)
    message = scenes.head_refusal(head, path)
    if message is None:
        return
    logger.info("resumable upload refused from its first bytes: not a video",
                extra={"upload_id": upload_id, "user_id": user_id})
    _remove(unit_of_work, storage, upload_id)
    raise UnsupportedMediaError(message)


# ---- completion -----------------------------------------------------------------------------------------


def complete_upload(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, state: UploadState,
                    default_preset: str) -> tuple[str, int]:
    """Probe the complete upload and turn it into a scene with its queued job; (scene id, job id).

    Called with the upload's file locked. A file that is not a video is ``UnsupportedMediaError``, and so is
    nothing kept: the upload and its bytes are removed, as the multipart route removes its temporary file.
    Any other failure removes them too (``create_scene`` has already removed the scene's folder, into which
    the bytes had moved). The caller enqueues the job after this returns.
    """
    path = files.part_path(storage.tmp_dir, state.id)

    def mark(session: Session, scene_id: str) -> None:
        if not repository.mark_scene(session, state.id, scene_id):
            raise UploadNotFoundError()  # terminated meanwhile: no scene either

    try:
        request = scenes.parse_scene_request(state.fields, default_preset=default_preset)
        info = scenes.probe(path)
        return scenes.create_scene(unit_of_work, storage, user_id=user_id, request=request, upload_path=path,
                                   info=info, in_transaction=mark)
    except UnsupportedMediaError:
        logger.info("resumable upload refused: not a video", extra={"upload_id": state.id, "user_id": user_id})
        _remove(unit_of_work, storage, state.id)
        raise
    except BaseException:
        _remove(unit_of_work, storage, state.id)
        raise


# ---- termination and expiry -----------------------------------------------------------------------------


def terminate(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, upload_id: str) -> None:
    """Delete the user's upload and its bytes (a PATCH still running finds it gone and stops)."""
    with unit_of_work() as session:
        if repository.lock_owned_upload(session, user_id, upload_id) is None:
            raise UploadNotFoundError()
        repository.delete_upload(session, upload_id)
    files.remove_part(files.part_path(storage.tmp_dir, upload_id))


def _remove(unit_of_work: UnitOfWork, storage: Storage, upload_id: str) -> None:
    with unit_of_work() as session:
        repository.delete_upload(session, upload_id)
    files.remove_part(files.part_path(storage.tmp_dir, upload_id))


def sweep(unit_of_work: UnitOfWork, storage: Storage, *, orphan_grace_s: float = ORPHAN_GRACE_SECONDS) -> int:
    """Remove expired uploads (rows, then bytes) and part files no row claims; returns how many went.

    Run periodically by the API (``create_app``'s lifespan). Safe with several API processes on one data
    dir: the rows are deleted in one transaction, and a file is only judged an orphan past the grace time.
    """
    with unit_of_work() as session:
        expired = repository.expired_ids(session, utcnow())
        repository.delete_uploads(session, expired)
    for upload_id in expired:
        files.remove_part(files.part_path(storage.tmp_dir, upload_id))
    candidates: dict[str, Any] = {}
    for path in files.part_files(storage.tmp_dir):
        found = files.upload_id_of(path)
        if found is not None and files.older_than(path, orphan_grace_s):
            candidates[found] = path
    orphans: list[Any] = []
    if candidates:
        with unit_of_work() as session:
            known = repository.existing_ids(session, candidates.keys())
        orphans = [path for found, path in candidates.items() if found not in known]
        for path in orphans:
            files.remove_part(path)
    removed = len(expired) + len(orphans)
    if removed:
        logger.info("expired resumable uploads removed", extra={"expired": len(expired), "orphans": len(orphans)})
    return removed
