"""The rules of share links: only a scene's owner makes, lists and revokes them; a live token (not revoked,
not expired, its scene not deleted) lets anyone read the scene's public outputs and nothing else.

No HTTP and no commit here (the routes pass the unit of work); the public answers reuse the scene
service's, so a shared download is byte for byte what the owner gets.
"""

from __future__ import annotations

import html
import secrets
from datetime import timedelta

from sqlalchemy import Connection

from vidscene import catalogue
from vidscene.api.deps import UnitOfWork
from vidscene.api.errors import NotFoundError, SceneNotFoundError
from vidscene.api.scenes import repository as scene_repository
from vidscene.api.scenes.schemas import SceneMetadata
from vidscene.api.scenes.service import OutputFile, metadata_of, output_of
from vidscene.api.shares import repository
from vidscene.api.shares.schemas import ShareOut
from vidscene.db.models import Share, utcnow
from vidscene.storage import Storage

TOKEN_BYTES = 24  # 32 URL-safe characters


class ShareNotFoundError(NotFoundError):
    """Unknown, revoked or expired token, or its scene deleted: all the same to the caller."""

    default_message = "This share link does not exist or no longer works."


def share_out(share: Share) -> ShareOut:
    url = f"/s/{share.token}"
    embed = (f'<iframe src="{html.escape(url)}?embed=1" width="960" height="540" style="border:0" '
             'allow="fullscreen" loading="lazy"></iframe>')
    return ShareOut(token=share.token, url=url, embed=embed, created=share.created_at, expires=share.expires_at)


def create(unit_of_work: UnitOfWork, *, user_id: int, scene_id: str, expires_in_days: int | None) -> ShareOut:
    with unit_of_work() as session:
        if scene_repository.lock_owned_scene(session, user_id, scene_id) is None:
            raise SceneNotFoundError()
        now = utcnow()
        expires = now + timedelta(days=expires_in_days) if expires_in_days else None
        share = repository.add_share(session, token=secrets.token_urlsafe(TOKEN_BYTES), scene_id=scene_id,
                                     created_at=now, expires_at=expires)
        return share_out(share)


def list_shares(unit_of_work: UnitOfWork, *, user_id: int, scene_id: str) -> list[ShareOut]:
    with unit_of_work() as session:
        if scene_repository.lock_owned_scene(session, user_id, scene_id) is None:
            raise SceneNotFoundError()
        return [share_out(s) for s in repository.shares_of(session, scene_id)]


def revoke(unit_of_work: UnitOfWork, *, user_id: int, scene_id: str, token: str) -> None:
    with unit_of_work() as session:
        if scene_repository.lock_owned_scene(session, user_id, scene_id) is None:
            raise SceneNotFoundError()
        if not repository.delete_share(session, scene_id, token):
            raise ShareNotFoundError()


# ---- what a token opens ---------------------------------------------------------------------------------


def shared_name(conn: Connection, token: str) -> str:
    scene = repository.shared_scene(conn, token, utcnow())
    if scene is None:
        raise ShareNotFoundError()
    return str(scene.name)


def shared_metadata(conn: Connection, storage: Storage, token: str) -> SceneMetadata:
    rows = repository.shared_metadata_rows(conn, token, utcnow())
    if not rows:
        raise ShareNotFoundError()
    return metadata_of(rows, storage, uuid=token, public_only=True)


def shared_output(conn: Connection, storage: Storage, token: str, output_type: str,
                  iteration: int | None, *, first: tuple[int, int] | None = None) -> OutputFile:
    if not catalogue.OUTPUT_TYPES[output_type].public:
        raise NotFoundError(f"{output_type} is not shared.")
    rows = repository.shared_output_rows(conn, token, utcnow(), output_type, iteration)
    if not rows:
        raise ShareNotFoundError()
    return output_of(rows, storage, output_type, iteration, first=first)
