"""Every SQL statement of personal API tokens: the per-request lookup by hash, and the owner's management."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from vidscene.db.models import ApiToken, User

# The token by its hash, with the owner's current token version: one indexed query per request. Typed as
# Select[Any]: the caller reads the row by column name.
BY_HASH: Select[Any] = cast(Select[Any], (
    select(ApiToken.id, ApiToken.user_id, ApiToken.scopes, ApiToken.expires_at, ApiToken.last_used_at,
           User.token_version)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
))


def token_by_hash(conn: Connection, token_hash: str) -> Row[Any] | None:
    return conn.execute(BY_HASH, {"token_hash": token_hash}).one_or_none()


def touch(conn: Connection, token_id: str, *, now: datetime, before: datetime) -> None:
    """Set ``last_used_at`` unless another request did since ``before``, and commit (the connection is a
    read connection: on SQLite the statement commits by itself, elsewhere the commit does it)."""
    conn.execute(update(ApiToken).where(ApiToken.id == token_id, or_(ApiToken.last_used_at.is_(None),
                                                                     ApiToken.last_used_at < before))
                 .values(last_used_at=now))
    conn.commit()


def add_token(session: Session, token: ApiToken) -> ApiToken:
    session.add(token)
    session.flush()
    return token


def count_of(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user_id)) or 0


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                .order_by(ApiToken.created_at, ApiToken.id)))


def delete_token(session: Session, user_id: int, token_id: str) -> bool:
    result = session.execute(delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


def delete_tokens_of(session: Session, user_id: int) -> None:
    session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
