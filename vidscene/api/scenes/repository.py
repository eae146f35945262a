"""Every SQL statement of the scene routes.

The read routes run these on every poll and every 1 MiB chunk, so they are built once (building a statement
with joins and aliases costs more than running it on SQLite) and run on a plain connection that selects
columns, not ORM objects (half the cost of a session). Bind them with ``owner_params``: ownership, token
revocation and the lookup are one query, so a polled route costs one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, and_, bindparam, select
from sqlalchemy.orm import Session

from vidscene.api.security import TokenClaims
from vidscene.db.models import Job, JobState, Output, Scene, User, utcnow
from vidscene.jobs import progress, state

UNFINISHED = state.ACTIVE_STATES

SCENE_COLUMNS = progress.SCENE_COLUMNS
# Typed as Select[Any]: the routes read rows by column name, the 7-tuple type would only be noise.
OWNED_SCENE: Select[Any] = cast(Select[Any], (
    select(*SCENE_COLUMNS)
    .join(User, User.id == Scene.user_id)
    .where(Scene.id == bindparam("scene_id"), User.id == bindparam("user_id"),
           User.token_version == bindparam("token_version"))
))
"""The scene if the token's user owns it and the token is not revoked."""


def owner_params(claims: TokenClaims, scene_id: str, **extra: object) -> dict[str, object]:
    return {"scene_id": scene_id, "user_id": claims.user_id, "token_version": claims.token_version, **extra}


def token_revoked(conn: Connection, claims: TokenClaims) -> bool:
    """Whether the token's user is gone or changed the password since (``token_version``)."""
    version = conn.scalar(select(User.token_version).where(User.id == claims.user_id))
    return version is None or version != claims.token_version


def output_statements(scene: Select[Any]) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """For a statement selecting one scene (``SCENE_COLUMNS``): its metadata rows (every output), its
    outputs of ``:output_type`` newest first, and its output of ``:output_type`` at ``:iteration``.

    The owner's routes build them on ``OWNED_SCENE``, share links on their token lookup: one shape, so a
    shared answer is exactly the owner's. Only the files of the edit the scene serves (``Scene.edit_version``,
    0 for the original) are joined, so every answer switches to an edit, and back, at one commit."""
    served = and_(Output.scene_id == Scene.id, Output.edit_version == Scene.edit_version)
    of_type = and_(served, Output.output_type == bindparam("output_type"))
    metadata = scene.outerjoin(Output, served).add_columns(
        Output.output_type, Output.iteration, Output.relpath)
    outputs = scene.outerjoin(Output, of_type).add_columns(Output.iteration, Output.relpath).order_by(
        Output.iteration.desc())
    output_at = scene.outerjoin(Output, and_(of_type, Output.iteration == bindparam("iteration"))).add_columns(
        Output.iteration, Output.relpath)
    return metadata, outputs, output_at


PROGRESS = progress.progress_statement(OWNED_SCENE)
METADATA, OUTPUTS, OUTPUT_AT = output_statements(OWNED_SCENE)
HISTORY = select(Scene.id).where(Scene.user_id == bindparam("user_id")).order_by(Scene.created_at, Scene.id)


def owned_scene(conn: Connection, claims: TokenClaims, scene_id: str) -> Row[Any] | None:
    return conn.execute(OWNED_SCENE, owner_params(claims, scene_id)).one_or_none()


def progress_row(conn: Connection, claims: TokenClaims, scene_id: str) -> Row[Any] | None:
    return conn.execute(PROGRESS, owner_params(claims, scene_id)).one_or_none()


def metadata_rows(conn: Connection, claims: TokenClaims, scene_id: str) -> Sequence[Row[Any]]:
    return conn.execute(METADATA, owner_params(claims, scene_id)).all()


def output_rows(conn: Connection, claims: TokenClaims, scene_id: str, output_type: str,
                iteration: int | None) -> Sequence[Row[Any]]:
    """The scene with its outputs of ``output_type`` (newest first), or at ``iteration``; empty if not owned."""
    if iteration is None:
        return conn.execute(OUTPUTS, owner_params(claims, scene_id, output_type=output_type)).all()
    return conn.execute(OUTPUT_AT, owner_params(claims, scene_id, output_type=output_type,
                                                iteration=iteration)).all()


def scene_ids_of(conn: Connection, user_id: int) -> list[str]:
    return list(conn.scalars(HISTORY, {"user_id": user_id}))


def lock_user(session: Session, user_id: int) -> bool:
    """Whether the user still exists, holding its row (PostgreSQL) until the transaction ends, so an account
    deleted while one of its uploads was arriving cannot lose the race to the insert."""
    return session.scalar(select(User.id).where(User.id == user_id).with_for_update()) is not None


def insert_scene(session: Session, *, scene_id: str, user_id: int, name: str, training_mode: str,
                 output_types: list[str], save_iterations: list[int], total_iterations: int, preset: str,
                 video_filename: str, video_info: dict[str, Any]) -> int:
    """Add the scene and its queued job; returns the job id (flushed, not committed)."""
    now = utcnow()
    session.add(Scene(id=scene_id, user_id=user_id, name=name, training_mode=training_mode,
                      output_types=output_types, save_iterations=save_iterations,
                      total_iterations=total_iterations, preset=preset, video_filename=video_filename,
                      video_info=video_info, created_at=now))
    job = Job(scene_id=scene_id, state=JobState.queued.value, created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    return job.id


def lock_owned_scene_row(session: Session, user_id: int, scene_id: str) -> Scene | None:
    """The user's scene (with its job reachable as ``scene.job``), locked for the transaction (PostgreSQL)."""
    return session.scalar(select(Scene).where(Scene.id == scene_id, Scene.user_id == user_id).with_for_update())


def lock_owned_scene(session: Session, user_id: int, scene_id: str) -> str | None:
    """The scene's id if ``user_id`` owns it, locked for the rest of the transaction (PostgreSQL)."""
    return session.scalar(select(Scene.id).where(Scene.id == scene_id, Scene.user_id == user_id)
                          .with_for_update())
