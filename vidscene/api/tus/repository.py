"""Every SQL statement of resumable uploads. Lookups are by (upload id, owner), like every scene query."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, delete, select, update
from sqlalchemy.orm import Session

from vidscene.db.models import TusUpload

_COLUMNS = (TusUpload.id, TusUpload.length, TusUpload.offset, TusUpload.file_name, TusUpload.fields,
            TusUpload.scene_id, TusUpload.expires_at)
# Typed as Select[Any]: rows are read by column name.
_UPLOAD: Select[Any] = cast(Select[Any], select(*_COLUMNS))


def insert_upload(session: Session, *, upload_id: str, user_id: int, length: int, file_name: str | None,
                  fields: dict[str, str], created_at: datetime, expires_at: datetime) -> None:
    session.add(TusUpload(id=upload_id, user_id=user_id, length=length, offset=0, file_name=file_name,
                          fields=fields, created_at=created_at, expires_at=expires_at))
    session.flush()


def owned_upload(conn: Connection, user_id: int, upload_id: str) -> Row[Any] | None:
    return conn.execute(_UPLOAD.where(TusUpload.id == upload_id, TusUpload.user_id == user_id)).one_or_none()


def lock_owned_upload(session: Session, user_id: int, upload_id: str) -> TusUpload | None:
    """The user's upload, locked for the transaction (PostgreSQL; SQLite's write transaction locks all)."""
    return session.scalar(select(TusUpload).where(TusUpload.id == upload_id, TusUpload.user_id == user_id)
                          .with_for_update())


def advance_offset(session: Session, upload_id: str, *, start: int, offset: int, expires_at: datetime) -> bool:
    """Record that the bytes up to ``offset`` are on disk, if the upload is still where this PATCH began
    (not terminated, not completed); whether it was."""
    result = session.execute(
        update(TusUpload).where(TusUpload.id == upload_id, TusUpload.offset == start, TusUpload.scene_id.is_(None))
        .values(offset=offset, expires_at=expires_at))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def mark_scene(session: Session, upload_id: str, scene_id: str) -> bool:
    """Name the scene a complete upload became; false when it was terminated (or became one) meanwhile."""
    result = session.execute(
        update(TusUpload).where(TusUpload.id == upload_id, TusUpload.scene_id.is_(None),
                                TusUpload.offset == TusUpload.length)
        .values(scene_id=scene_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def delete_upload(session: Session, upload_id: str) -> bool:
    result = session.execute(delete(TusUpload).where(TusUpload.id == upload_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def expired_ids(session: Session, now: datetime) -> list[str]:
    return list(session.scalars(select(TusUpload.id).where(TusUpload.expires_at <= now).with_for_update()))


def delete_uploads(session: Session, upload_ids: Sequence[str]) -> None:
    if upload_ids:
        session.execute(delete(TusUpload).where(TusUpload.id.in_(upload_ids)))


def existing_ids(session: Session, upload_ids: Collection[str]) -> set[str]:
    if not upload_ids:
        return set()
    return set(session.scalars(select(TusUpload.id).where(TusUpload.id.in_(list(upload_ids)))))


def upload_ids_of(session: Session, user_id: int) -> list[str]:
    return list(session.scalars(select(TusUpload.id).where(TusUpload.user_id == user_id)))
