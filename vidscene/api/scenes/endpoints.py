"""``/user/scene/*``: upload a video as a new scene, follow its progress, list and download its outputs.

HTTP only: parameters in, the service's answer out. The read routes are async and do their database and
file-system work in one worker-thread hop (``read_in_thread``): clients poll progress and metadata every
few seconds and fetch outputs in 1 MiB chunks, so per-request overhead is what limits how many of them one
process serves. Each route names the token scope it needs (``api.auth``: ``ScenesRead``, ``ScenesWrite``),
so a personal API token works wherever its scopes allow. Nothing here imports the pipeline or the job
engine; a new job is handed over through the ``enqueue`` callable given to ``create_app``, only after the
transaction that created it has committed.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import FileResponse, Response

from vidscene.api import user_limits
from vidscene.api.auth import ScenesRead, ScenesWrite
from vidscene.api.deps import AppContext, ContextDep, SessionReleasingRoute, read_in_thread
from vidscene.api.downloads import file_response
from vidscene.api.errors import BadRequestError
from vidscene.api.forms import body_of, request_body_openapi, text_fields
from vidscene.api.scenes import service
from vidscene.api.scenes.schemas import (
    SceneCapture,
    SceneCreated,
    SceneHistory,
    SceneMetadata,
    SceneMetrics,
    SceneName,
    SceneOptions,
    SceneProgress,
    retry_form_openapi,
    upload_form_openapi,
)
from vidscene.api.schemas import MessageOut, error_responses
from vidscene.api.upload import FILE_FIELD, ReceivedUpload, announced_file_bytes, receive_upload
from vidscene.storage.objects import LocalFile

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/scene", tags=["scene"], route_class=SessionReleasingRoute)

_SCENE_ERRORS = error_responses(400, 401, 403, 404)
_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get("/options", response_model=SceneOptions, summary="Training modes, output types, presets and limits",
            responses=error_responses())
async def options(context: ContextDep) -> dict[str, Any]:
    """The catalogue the server validates uploads against; the web app builds its form from it. Each preset
    carries what its default run costs on this server (measured, cached)."""
    return await read_in_thread(context, partial(service.options, settings=context.settings))


@router.post(
    "/new",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SceneCreated,
    summary="Upload a video and start processing it into a scene",
    responses=error_responses(400, 401, 403, 413, 415, 429, 507),
    openapi_extra=upload_form_openapi(),
)
async def create_scene(request: Request, user: ScenesWrite, context: ContextDep) -> SceneCreated:
    settings = context.settings
    max_file_bytes = await read_in_thread(context, partial(
        user_limits.check_new_scene, settings=settings, user_id=user.id, incoming_bytes=announced_file_bytes(request)))
    free = await anyio.to_thread.run_sync(context.storage.free_bytes)
    upload: ReceivedUpload = await receive_upload(
        request, tmp_dir=context.storage.tmp_dir, max_file_bytes=max_file_bytes, free_bytes=free,
        check_fields=partial(service.check_early_fields, default_preset=settings.default_preset),
        check_head=service.check_video_head, store=context.storage.objects)
    try:
        received, location = upload.received, upload.location
        if received is None or location is None:
            raise BadRequestError(f"Missing field: {FILE_FIELD}.")
        req = service.parse_scene_request(upload.fields, default_preset=settings.default_preset)
        info = await anyio.to_thread.run_sync(service.probe, received)
        scene_id, job_id = await anyio.to_thread.run_sync(partial(
            service.create_scene, context.unit_of_work, context.storage, user_id=user.id,
            request=req, upload_path=location, info=info))
    finally:
        upload.discard()  # already moved into place on success; removes the temporary file otherwise
    logger.info("scene created", extra={"scene_id": scene_id, "job_id": job_id, "user_id": user.id,
                                        "bytes": upload.file_size, "training_mode": req.training_mode})
    await enqueue_job(context, scene_id, job_id)
    return SceneCreated(id=scene_id,
                        message="Video received and processing scene. Check back later for updates.")


async def enqueue_job(context: AppContext, scene_id: str, job_id: int) -> None:
    """Hand a committed job to the engine. A failure is logged, not answered: the job row is committed as
    queued and the engine's recovery of queued jobs delivers it later, so the user is not asked to send
    gigabytes again."""
    if context.enqueue is None:
        return
    try:
        await anyio.to_thread.run_sync(context.enqueue, job_id)
    except Exception:
        logger.exception("enqueue failed; job stays queued", extra={"scene_id": scene_id, "job_id": job_id})


@router.get("/history", response_model=SceneHistory, summary="Ids of the user's scenes, oldest first",
            responses=error_responses(401, 403))
async def history(claims: ScenesRead, context: ContextDep) -> SceneHistory:
    ids = await read_in_thread(context, partial(service.history, claims=claims))
    return SceneHistory(resources=ids)


@router.get("/name/{scene_id}", response_model=SceneName, summary="The scene's name", responses=_SCENE_ERRORS)
async def scene_name(scene_id: str, claims: ScenesRead, context: ContextDep) -> SceneName:
    scene = await read_in_thread(context, partial(service.owned_scene, claims=claims, scene_id=scene_id))
    return SceneName(name=scene.name)


@router.get("/progress/{scene_id}", response_model=SceneProgress, summary="Processing progress",
            responses=_SCENE_ERRORS)
async def progress(scene_id: str, claims: ScenesRead, context: ContextDep) -> SceneProgress:
    return await read_in_thread(context, partial(service.progress, claims=claims, scene_id=scene_id))


@router.get("/metadata/{scene_id}", response_model=SceneMetadata,
            summary="Which outputs exist, their sizes and 1 MiB chunk counts", responses=_SCENE_ERRORS)
async def metadata(scene_id: str, claims: ScenesRead, context: ContextDep) -> SceneMetadata:
    return await read_in_thread(context, partial(service.metadata, storage=context.storage, claims=claims,
                                                 scene_id=scene_id))


@router.get("/metrics/{scene_id}", response_model=SceneMetrics,
            summary="Held-out PSNR/SSIM, gaussian count and training time per saved iteration",
            responses=_SCENE_ERRORS)
async def metrics(scene_id: str, claims: ScenesRead, context: ContextDep) -> SceneMetrics:
    return await read_in_thread(context, partial(service.metrics, storage=context.storage, claims=claims,
                                                 scene_id=scene_id))


@router.get("/capture/{scene_id}", response_model=SceneCapture,
            summary="The capture check: verdict, problems and a frame timeline (404 until frames are extracted)",
            responses=_SCENE_ERRORS)
async def capture(scene_id: str, claims: ScenesRead, context: ContextDep) -> SceneCapture:
    return await read_in_thread(context, partial(service.capture, storage=context.storage, claims=claims,
                                                 scene_id=scene_id))


@router.get(
    "/thumbnail/{scene_id}",
    response_class=FileResponse,
    summary="JPEG thumbnail (404 until frames are extracted)",
    responses={200: {"content": {"image/jpeg": _BINARY}, "description": "The thumbnail"}, **_SCENE_ERRORS},
)
async def thumbnail(scene_id: str, claims: ScenesRead, context: ContextDep) -> Response:
    found = await read_in_thread(context, partial(service.thumbnail, storage=context.storage,
                                                  claims=claims, scene_id=scene_id))
    if isinstance(found, LocalFile):
        return FileResponse(found.path, media_type="image/jpeg", stat_result=found.stat_result,
                            headers={"Cache-Control": "private, no-cache"})
    response = file_response(found, media_type="image/jpeg")
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@router.patch("/name/{scene_id}", response_model=SceneName, summary="Rename the scene",
              responses=_SCENE_ERRORS, openapi_extra=request_body_openapi(SceneName))
def rename_scene(scene_id: str, user: ScenesWrite, body: Annotated[SceneName, Depends(body_of(SceneName))],
                 context: ContextDep) -> SceneName:
    name = service.rename_scene(context.unit_of_work, user_id=user.id, scene_id=scene_id, name=body.name)
    return SceneName(name=name)


@router.post(
    "/retry/{scene_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SceneCreated,
    summary="Process the scene's video again with other settings (the upload's fields, without the file)",
    responses=error_responses(400, 401, 403, 404, 409, 413),
    openapi_extra=retry_form_openapi(),
)
async def retry_scene(scene_id: str, request: Request, user: ScenesWrite, context: ContextDep) -> SceneCreated:
    fields = await text_fields(request)
    job_id = await anyio.to_thread.run_sync(partial(
        service.retry_scene, context.unit_of_work, context.storage, user_id=user.id, scene_id=scene_id,
        fields=fields, default_preset=context.settings.default_preset))
    logger.info("scene retried", extra={"scene_id": scene_id, "job_id": job_id, "user_id": user.id})
    await enqueue_job(context, scene_id, job_id)
    return SceneCreated(id=scene_id, message="Processing the scene again with the new settings.")


@router.delete("/delete/{scene_id}", response_model=MessageOut, summary="Delete the scene, stopping its job",
               responses=_SCENE_ERRORS)
def delete_scene(scene_id: str, user: ScenesWrite, context: ContextDep) -> MessageOut:
    service.delete_scene(context.unit_of_work, context.storage, user_id=user.id, scene_id=scene_id)
    logger.info("scene deleted", extra={"scene_id": scene_id, "user_id": user.id})
    return MessageOut(message="Scene deleted")
