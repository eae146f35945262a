"""Share links: the owner's routes under ``/user/scene/share*``, and what a token opens without login:
``/public/<token>/metadata``, ``/public/<token>/output/<type>`` and the share page ``/s/<token>``.

HTTP only; the rules are in ``service``. Downloads answer exactly like the owner's (Range, 1 MiB chunks).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from vidscene import catalogue
from vidscene.api.auth import ScenesReadUser, ScenesWrite
from vidscene.api.deps import ContextDep, SessionReleasingRoute, read_in_thread
from vidscene.api.downloads import DownloadResponse, answered, file_response, safe_filename
from vidscene.api.errors import BadRequestError
from vidscene.api.forms import body_of, request_body_openapi
from vidscene.api.middleware import page_policy
from vidscene.api.scenes.schemas import SceneMetadata
from vidscene.api.schemas import MessageOut, error_responses
from vidscene.api.shares import service
from vidscene.api.shares.schemas import ShareList, ShareOut, ShareRequest

logger = logging.getLogger(__name__)

owner_router = APIRouter(prefix="/user/scene", tags=["share"], route_class=SessionReleasingRoute)
public_router = APIRouter(tags=["public"])

_PUBLIC_TYPES = [name for name, kind in catalogue.OUTPUT_TYPES.items() if kind.public]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_NOT_FOUND = error_responses(404)
SHARE_PAGE_POLICY = page_policy("*")  # the share page may be embedded anywhere; see SecurityHeaders


async def _optional_share_request(request: Request) -> ShareRequest:
    """The body is optional: none (or an empty one) means a link that never expires."""
    if not request.headers.get("content-length", "0").strip("0") and "transfer-encoding" not in request.headers:
        return ShareRequest()
    return await body_of(ShareRequest)(request)


@owner_router.post("/share/{scene_id}", status_code=status.HTTP_201_CREATED, response_model=ShareOut,
                   summary="Create a read-only public link to the scene",
                   responses=error_responses(400, 401, 403, 404),
                   openapi_extra={**request_body_openapi(ShareRequest),
                                  "requestBody": {**request_body_openapi(ShareRequest)["requestBody"],
                                                  "required": False}})
def create_share(scene_id: str, user: ScenesWrite, body: Annotated[ShareRequest, Depends(_optional_share_request)],
                 context: ContextDep) -> ShareOut:
    share = service.create(context.unit_of_work, user_id=user.id, scene_id=scene_id,
                           expires_in_days=body.expires_in_days)
    logger.info("share link created", extra={"scene_id": scene_id, "user_id": user.id})
    return share


@owner_router.get("/shares/{scene_id}", response_model=ShareList, summary="The scene's share links",
                  responses=error_responses(401, 403, 404))
def list_shares(scene_id: str, user: ScenesReadUser, context: ContextDep) -> ShareList:
    return ShareList(shares=service.list_shares(context.unit_of_work, user_id=user.id, scene_id=scene_id))


@owner_router.delete("/share/{scene_id}/{token}", response_model=MessageOut, summary="Revoke a share link",
                     responses=error_responses(401, 403, 404))
def revoke_share(scene_id: str, token: str, user: ScenesWrite, context: ContextDep) -> MessageOut:
    service.revoke(context.unit_of_work, user_id=user.id, scene_id=scene_id, token=token)
    logger.info("share link revoked", extra={"scene_id": scene_id, "user_id": user.id})
    return MessageOut(message="Share link revoked")


@public_router.get("/public/{token}/metadata", response_model=SceneMetadata,
                   summary="A shared scene's outputs (no login; the checkpoint is never listed)",
                   responses=_NOT_FOUND)
async def shared_metadata(token: str, context: ContextDep) -> SceneMetadata:
    return await read_in_thread(context, partial(service.shared_metadata, storage=context.storage, token=token))


@public_router.api_route(
    "/public/{token}/output/{output_type}", methods=["GET"], response_class=DownloadResponse,
    summary="Download a shared output (no login; Range requests supported)",
    responses={200: {"content": {"application/octet-stream": _BINARY, "video/mp4": _BINARY},
                     "description": "The whole file"},
               206: {"content": {"application/octet-stream": _BINARY, "video/mp4": _BINARY,
                                 "multipart/byteranges": _BINARY}, "description": "The requested byte range(s)"},
               **error_responses(400, 404, 416)},
)
async def shared_output(
    token: str,
    output_type: Annotated[str, Path(json_schema_extra={"enum": _PUBLIC_TYPES})],
    context: ContextDep,
    request: Request,
    iteration: Annotated[int | None, Query(ge=1, le=catalogue.MAX_TOTAL_ITERATIONS)] = None,
) -> Response:
    if output_type not in catalogue.OUTPUT_TYPES:
        raise BadRequestError(f"Invalid output_type: unknown output type {output_type!r}.")

    def read(conn: Connection) -> Response:
        def respond(first: tuple[int, int] | None) -> Response:
            found = service.shared_output(conn, context.storage, token, output_type, iteration, first=first)
            return file_response(found.file, media_type=found.media_type,
                                 filename=safe_filename(found.filename_stem, found.extension))

        return answered(request.method, request.headers, respond)

    return await read_in_thread(context, read)


def _page(index: FilePath) -> str:
    try:
        return index.read_text(encoding="utf-8")
    except FileNotFoundError:  # the web app is not built: still a page, saying where to look
        return "<!doctype html><title>vidscene</title><p>The web app is not built; see /routes.</p>"


@public_router.get("/s/{token}", response_class=HTMLResponse, include_in_schema=True,
                   summary="The share page: the viewer and the video of a shared scene (no login)",
                   responses={200: {"content": {"text/html": {}}, "description": "The page"},
                              404: {"content": {"text/html": {}}, "description": "The page, saying the link is dead"},
                              **error_responses()})
async def share_page(token: str, context: ContextDep, request: Request) -> HTMLResponse:
    """The web app's page (it renders the share view for ``/s/...``), with 404 for a dead link so that
    crawlers and link checkers see it; the page itself then says so."""
    def live(conn: Connection) -> bool:
        try:
            service.shared_name(conn, token)
        except service.ShareNotFoundError:
            return False
        return True

    ok = await read_in_thread(context, live)
    return HTMLResponse(_page(context.web_dist / "index.html"), status_code=200 if ok else 404,
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": SHARE_PAGE_POLICY})
