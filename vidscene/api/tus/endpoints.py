"""``/user/scene/uploads``: resumable uploads, tus 1.0 core with the creation, termination and expiration
extensions. The seed's multipart ``POST /user/scene/new`` is untouched; this is the way to send a video
that may need more than one connection.

- ``OPTIONS /user/scene/uploads``: ``Tus-Version``, ``Tus-Extension``, ``Tus-Max-Size`` (no login).
- ``POST /user/scene/uploads``: ``Upload-Length`` and ``Upload-Metadata`` (``filename`` and the multipart
  form's fields, base64) -> 201 with ``Location``. Bad fields are 400 here, before any byte is sent.
- ``HEAD /user/scene/uploads/{id}``: ``Upload-Offset``, ``Upload-Length``.
- ``PATCH /user/scene/uploads/{id}``: appends at ``Upload-Offset`` -> 204 with the new offset. The PATCH whose
  bytes reach the first MiB judges the format from them (not a video: 415 there and then, the upload gone);
  the one that brings the last byte probes the video and creates the scene: its answer carries
  ``Upload-Scene-Id``.
- ``GET /user/scene/uploads/{id}``: the same as JSON, with the scene's ``id`` once there is one.
- ``DELETE /user/scene/uploads/{id}``: terminates the upload and removes its bytes.

HTTP only; the rules are in ``service``. Another user's upload is 404, like every scene route.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response, status
from sqlalchemy import Connection
from starlette.requests import ClientDisconnect

from vidscene.api import user_limits
from vidscene.api.auth import ScenesWrite
from vidscene.api.deps import ContextDep, SessionReleasingRoute, read_in_thread
from vidscene.api.errors import APIError, BadRequestError, PayloadTooLargeError
from vidscene.api.scenes.endpoints import enqueue_job
from vidscene.api.schemas import error_responses
from vidscene.api.tus import files, protocol, service
from vidscene.api.tus.schemas import UploadOut
from vidscene.api.upload import check_free_space

logger = logging.getLogger(__name__)

WRITE_BATCH_BYTES = 1024 * 1024  # bytes gathered before one worker-thread hop writes them


class TusRoute(SessionReleasingRoute):
    """Every answer of these routes, errors included, says ``Tus-Resumable`` (the protocol asks for it, and
    tus clients read an error without it as a server that does not speak tus)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except APIError as exc:
                exc.headers.setdefault("Tus-Resumable", protocol.TUS_VERSION)
                raise
            response.headers.setdefault("Tus-Resumable", protocol.TUS_VERSION)
            return response

        return handle


router = APIRouter(prefix="/user/scene/uploads", tags=["resumable upload"], route_class=TusRoute)

_NO_BODY: dict[str, Any] = {"content": {}}
_OFFSET_HEADERS = {
    "Upload-Offset": {"schema": {"type": "integer"}, "description": "Bytes received and stored"},
    "Upload-Length": {"schema": {"type": "integer"}, "description": "The upload's size"},
    "Upload-Expires": {"schema": {"type": "string"}, "description": "When the upload expires if left idle"},
    "Tus-Resumable": {"schema": {"type": "string"}, "description": protocol.TUS_VERSION},
}
_SCENE_HEADER = {"Upload-Scene-Id": {"schema": {"type": "string"},
                                     "description": "Only once the last byte arrived: the scene it became"}}


def _upload_headers(state: service.UploadState) -> dict[str, str]:
    headers = {"Upload-Offset": str(state.offset), "Upload-Length": str(state.length),
               "Upload-Expires": protocol.http_date(state.expires_at), "Cache-Control": "no-store"}
    if state.scene_id is not None:
        headers["Upload-Scene-Id"] = state.scene_id
    return headers


@router.options("", status_code=status.HTTP_204_NO_CONTENT, summary="What the tus server supports",
                responses={204: {**_NO_BODY, "description": "Tus-Version, Tus-Extension and Tus-Max-Size",
                                 "headers": {"Tus-Version": {"schema": {"type": "string"}},
                                             "Tus-Extension": {"schema": {"type": "string"}},
                                             "Tus-Max-Size": {"schema": {"type": "integer"}}}},
                           **error_responses()})
async def tus_options(context: ContextDep) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={
        "Tus-Version": protocol.TUS_VERSION, "Tus-Extension": ",".join(protocol.TUS_EXTENSIONS),
        "Tus-Max-Size": str(context.settings.max_upload_bytes)})


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Create a resumable upload of a video (tus creation)",
    responses={201: {**_NO_BODY, "description": "Created; send its bytes with PATCH to the Location",
                     "headers": {"Location": {"schema": {"type": "string"}, "description": "The upload's URL"},
                                 **_OFFSET_HEADERS}},
               **error_responses(400, 401, 403, 412, 413, 429, 507)},
    openapi_extra={"parameters": [
        {"name": "Tus-Resumable", "in": "header", "required": True, "schema": {"type": "string",
                                                                              "enum": [protocol.TUS_VERSION]}},
        {"name": "Upload-Length", "in": "header", "required": True,
         "schema": {"type": "integer", "minimum": 0}, "description": "The video's size in bytes"},
        {"name": "Upload-Metadata", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "Comma-separated `key base64(value)` pairs: `filename` and the fields of "
                        "POST /user/scene/new (training_mode, output_types, save_iterations, total_iterations, "
                        "preset, scene_name)"},
    ]},
)
async def create_upload(request: Request, user: ScenesWrite, context: ContextDep) -> Response:
    protocol.require_tus_version(request)
    length = protocol.upload_length(request)
    metadata = protocol.upload_metadata(request)
    if (protocol.content_length(request) or 0) > 0:
        raise BadRequestError("Send the bytes with PATCH after creating the upload (creation-with-upload is "
                              "not supported).")
    settings = context.settings
    max_bytes = await read_in_thread(context, partial(
        user_limits.check_new_scene, settings=settings, user_id=user.id, incoming_bytes=length))
    free = await anyio.to_thread.run_sync(context.storage.free_bytes)
    state = await anyio.to_thread.run_sync(partial(
        service.create_upload, context.unit_of_work, context.storage, user_id=user.id, length=length,
        metadata=metadata, max_bytes=max_bytes, free_bytes=free,
        default_preset=settings.default_preset, expiry_s=settings.upload_expiry_seconds))
    logger.info("resumable upload created", extra={"upload_id": state.id, "user_id": user.id, "bytes": length})
    return Response(status_code=status.HTTP_201_CREATED,
                    headers={"Location": f"{router.prefix}/{state.id}", **_upload_headers(state)})


@router.head("/{upload_id}", summary="How much of the upload the server has (tus core)",
             responses={200: {**_NO_BODY, "description": "Upload-Offset and Upload-Length",
                              "headers": {**_OFFSET_HEADERS, **_SCENE_HEADER}},
                        **error_responses(401, 403, 404, 410, 412)})
async def upload_offset(upload_id: str, request: Request, user: ScenesWrite, context: ContextDep) -> Response:
    protocol.require_tus_version(request)
    state = await _read_state(context, user.id, upload_id)
    return Response(status_code=status.HTTP_200_OK, headers=_upload_headers(state))


@router.get("/{upload_id}", response_model=UploadOut,
            summary="Where the upload stands, and the scene it became (id) once complete",
            responses=error_responses(401, 403, 404, 410))
async def upload_status(upload_id: str, user: ScenesWrite, context: ContextDep, response: Response) -> UploadOut:
    state = await _read_state(context, user.id, upload_id)
    response.headers.update(_upload_headers(state))
    return UploadOut(id=state.scene_id, upload=state.id, offset=state.offset, length=state.length,
                     expires=state.expires_at, file_name=state.file_name)


async def _read_state(context: ContextDep, user_id: int, upload_id: str) -> service.UploadState:
    def read(conn: Connection) -> service.UploadState:
        return service.upload_state(conn, user_id=user_id, upload_id=upload_id)

    return await read_in_thread(context, read)


@router.patch(
    "/{upload_id}", status_code=status.HTTP_204_NO_CONTENT,
    summary="Append bytes at Upload-Offset (tus core); the last byte creates the scene",
    responses={204: {**_NO_BODY, "description": "Stored and fsynced; the new Upload-Offset. The answer to the "
                                                "PATCH that completes the upload names the new scene in "
                                                "Upload-Scene-Id (GET on the upload URL says it too)",
                     "headers": {**_OFFSET_HEADERS, **_SCENE_HEADER}},
               **error_responses(400, 401, 403, 404, 409, 410, 412, 413, 415, 423, 507)},
    openapi_extra={"parameters": [
        {"name": "Tus-Resumable", "in": "header", "required": True,
         "schema": {"type": "string", "enum": [protocol.TUS_VERSION]}},
        {"name": "Upload-Offset", "in": "header", "required": True, "schema": {"type": "integer", "minimum": 0}},
    ], "requestBody": {"required": True, "content": {protocol.OFFSET_MEDIA_TYPE: {
        "schema": {"type": "string", "format": "binary"}}}}},
)
async def append(upload_id: str, request: Request, user: ScenesWrite, context: ContextDep) -> Response:
    protocol.require_tus_version(request)
    protocol.require_offset_body(request)
    offset = protocol.upload_offset(request)
    announced = protocol.content_length(request)
    settings = context.settings
    state, appender = await anyio.to_thread.run_sync(partial(
        service.begin_append, context.unit_of_work, context.storage, user_id=user.id, upload_id=upload_id,
        offset=offset, content_length=announced))
    if appender is None:  # complete already: the answer the client missed
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_upload_headers(state))
    try:
        free = await anyio.to_thread.run_sync(context.storage.free_bytes)
        check_free_space(free, state.length - state.offset)
        judge = None
        if state.offset < service.HEAD_BYTES <= state.length:  # the bytes the format is judged from are not all in
            judge = partial(service.check_head, context.unit_of_work, context.storage, user_id=user.id,
                            upload_id=upload_id)
        interrupted = await _receive(request, appender, room=state.length - state.offset, judge=judge)
        await anyio.to_thread.run_sync(appender.sync)
        new_offset = appender.start + appender.written
        expires = await anyio.to_thread.run_sync(partial(
            service.record_append, context.unit_of_work, upload_id=upload_id, start=appender.start,
            offset=new_offset, expiry_s=settings.upload_expiry_seconds))
        state = service.UploadState(id=state.id, length=state.length, offset=new_offset, expires_at=expires,
                                    scene_id=None, file_name=state.file_name, fields=state.fields)
        if new_offset < state.length and interrupted:
            logger.info("resumable upload interrupted", extra={"upload_id": upload_id, "offset": new_offset})
            raise BadRequestError("The upload was interrupted; resume it from the offset a HEAD gives.")
        if new_offset == state.length:
            scene_id, job_id = await anyio.to_thread.run_sync(partial(
                service.complete_upload, context.unit_of_work, context.storage, user_id=user.id, state=state,
                default_preset=settings.default_preset))
            state = service.UploadState(id=state.id, length=state.length, offset=new_offset, expires_at=expires,
                                        scene_id=scene_id, file_name=state.file_name, fields=state.fields)
            logger.info("scene created", extra={"scene_id": scene_id, "job_id": job_id, "user_id": user.id,
                                                "upload_id": upload_id, "bytes": state.length})
            appender.close()
            await enqueue_job(context, scene_id, job_id)
    finally:
        appender.close()
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_upload_headers(state))


async def _receive(request: Request, appender: files.PartAppender, *, room: int,
                   judge: Callable[[], None] | None = None) -> bool:
    """Stream the body into the file, never past ``room`` bytes; whether the client went away midway.

    A body longer than the room is refused whole (413, the file cut back). The bytes of an interrupted one
    are kept: they are written, and the caller fsyncs and counts them, so the client resumes after them.
    ``judge`` runs (in a worker thread) once the file holds ``service.HEAD_BYTES``: it raises to refuse the
    upload from its first bytes, while the client still holds the rest."""
    pending: list[bytes] = []
    pending_bytes = 0
    received = 0
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            received += len(chunk)
            if received > room:
                await anyio.to_thread.run_sync(appender.discard_written)
                raise PayloadTooLargeError(f"The body goes past the upload's length ({room} bytes were left).")
            pending.append(chunk)
            pending_bytes += len(chunk)
            head_in = judge is not None and appender.start + received >= service.HEAD_BYTES
            if pending_bytes >= WRITE_BATCH_BYTES or head_in:
                batch, pending, pending_bytes = pending, [], 0
                await anyio.to_thread.run_sync(appender.write, batch)
            if judge is not None and head_in:
                await anyio.to_thread.run_sync(judge)
                judge = None
    except ClientDisconnect:
        if pending:
            await anyio.to_thread.run_sync(appender.write, pending)
        return True
    if pending:
        await anyio.to_thread.run_sync(appender.write, pending)
    return False


@router.delete("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Terminate the upload and remove its bytes (tus termination)",
               responses={204: {**_NO_BODY, "description": "Terminated"},
                          **error_responses(401, 403, 404, 412)})
async def terminate(upload_id: str, request: Request, user: ScenesWrite, context: ContextDep) -> Response:
    protocol.require_tus_version(request)
    await anyio.to_thread.run_sync(partial(service.terminate, context.unit_of_work, context.storage,
                                           user_id=user.id, upload_id=upload_id))
    logger.info("resumable upload terminated", extra={"upload_id": upload_id, "user_id": user.id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
