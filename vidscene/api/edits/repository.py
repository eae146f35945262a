"""Every SQL statement of the edit routes and of outputs asked for after the fact."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vidscene.db.models import Job, Output, Scene, SceneEdit


def owned_scene(session: Session, user_id: int, scene_id: str, *, lock: bool = False) -> Scene | None:
    """The user's scene (its job as ``scene.job``), locked for the transaction when ``lock`` (PostgreSQL)."""
    query = select(Scene).where(Scene.id == scene_id, Scene.user_id == user_id)
    return session.scalar(query.with_for_update() if lock else query)


def job_state(session: Session, scene_id: str) -> str | None:
    return session.scalar(select(Job.state).where(Job.scene_id == scene_id))


def edit_of(session: Session, scene_id: str, *, lock: bool = False) -> SceneEdit | None:
    query = select(SceneEdit).where(SceneEdit.scene_id == scene_id)
    return session.scalar(query.with_for_update() if lock else query)


def original_outputs(session: Session, scene_id: str) -> list[Output]:
    """The scene's original output files (edit version 0), by type and iteration."""
    return list(session.scalars(select(Output).where(Output.scene_id == scene_id, Output.edit_version == 0)
                                .order_by(Output.output_type, Output.iteration)))


def drop_edited_outputs(session: Session, scene_id: str) -> None:
    session.execute(delete(Output).where(Output.scene_id == scene_id, Output.edit_version != 0))
