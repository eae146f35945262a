"""Every SQL statement of the account routes."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vidscene.db.models import Scene, User, utcnow


def username_taken(session: Session, username: str) -> bool:
    return session.scalar(select(User.id).where(User.username == username)) is not None


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def add_user(session: Session, *, username: str, password_hash: str, token_version: int) -> None:
    """Insert the user; a concurrent registration of the same name raises ``IntegrityError`` here (flush)."""
    session.add(User(username=username, password_hash=password_hash, token_version=token_version,
                     created_at=utcnow()))
    session.flush()


def locked_user(session: Session, user_id: int) -> User | None:
    """The user's row re-read inside the write transaction, locked on PostgreSQL."""
    return session.get(User, user_id, with_for_update=True, populate_existing=True)


def scene_ids_of(session: Session, user_id: int) -> list[str]:
    return list(session.scalars(select(Scene.id).where(Scene.user_id == user_id)))


def delete_user(session: Session, user_id: int) -> None:
    session.execute(delete(User).where(User.id == user_id))
