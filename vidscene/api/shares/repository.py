"""Every SQL statement of share links: the owner's management of them, and the public lookups by token."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, bindparam, delete, or_, select
from sqlalchemy.orm import Session

from vidscene.api.scenes.repository import SCENE_COLUMNS, output_statements
from vidscene.db.models import Scene, Share

_LIVE = or_(Share.expires_at.is_(None), Share.expires_at > bindparam("now"))

# The scene behind a live token, with the columns the scene service's metadata and output answers read.
SHARED_SCENE: Select[Any] = cast(Select[Any], (
    select(*SCENE_COLUMNS).join(Share, Share.scene_id == Scene.id).where(Share.token == bindparam("token"), _LIVE)
))
SHARED_METADATA, SHARED_OUTPUTS, SHARED_OUTPUT_AT = output_statements(SHARED_SCENE)


def shared_scene(conn: Connection, token: str, now: datetime) -> Row[Any] | None:
    return conn.execute(SHARED_SCENE, {"token": token, "now": now}).one_or_none()


def shared_metadata_rows(conn: Connection, token: str, now: datetime) -> Sequence[Row[Any]]:
    return conn.execute(SHARED_METADATA, {"token": token, "now": now}).all()


def shared_output_rows(conn: Connection, token: str, now: datetime, output_type: str,
                       iteration: int | None) -> Sequence[Row[Any]]:
    params: dict[str, object] = {"token": token, "now": now, "output_type": output_type}
    if iteration is None:
        return conn.execute(SHARED_OUTPUTS, params).all()
    return conn.execute(SHARED_OUTPUT_AT, {**params, "iteration": iteration}).all()


def add_share(session: Session, *, token: str, scene_id: str, created_at: datetime,
              expires_at: datetime | None) -> Share:
    share = Share(token=token, scene_id=scene_id, created_at=created_at, expires_at=expires_at)
    session.add(share)
    session.flush()
    return share


def shares_of(session: Session, scene_id: str) -> list[Share]:
    return list(session.scalars(select(Share).where(Share.scene_id == scene_id)
                                .order_by(Share.created_at, Share.token)))


def delete_share(session: Session, scene_id: str, token: str) -> bool:
    result = session.execute(delete(Share).where(Share.scene_id == scene_id, Share.token == token))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount
