"""``/user/scene/*``: upload a video as a new scene, follow its progress, list and download its outputs.

HTTP only: parameters in, the service's answer out. The read routes are async and do their database and
file-system work in one worker-thread hop (``read_in_thread``): clients poll progress and metadata every
few seconds and fetch outputs in 1 MiB chunks, so per-request overhead is what limits how many of them one
process serves. Nothing here imports the pipeline or the job engine; a new job is handed over through the
``enqueue`` callable given to ``create_app``, only after the transaction that created it has committed.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import FileResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection
from starlette.types import Receive, Scope, Send

from vidscene import catalogue
from vidscene.api.deps import (
    AppContext,
    ContextDep,
    CurrentUser,
    SessionReleasingRoute,
    TokenDep,
    bearer_scheme,
    get_context,
    get_token_claims,
    read_in_thread,
)
from vidscene.api.downloads import DownloadResponse, safe_filename
from vidscene.api.errors import BadRequestError
from vidscene.api.forms import body_of, request_body_openapi, text_fields
from vidscene.api.scenes import service
from vidscene.api.scenes.schemas import (
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
from vidscene.api.security import TokenClaims
from vidscene.api.upload import FILE_FIELD, ReceivedUpload, receive_upload

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/scene", tags=["scene"], route_class=SessionReleasingRoute)

_SCENE_ERRORS = error_responses(400, 401, 404)
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_MEDIA_TYPES = sorted({o.media_type for o in catalogue.OUTPUT_TYPES.values()})


@router.get("/options", response_model=SceneOptions, summary="Training modes, output types, presets and limits",
            responses=error_responses())
async def options(context: ContextDep) -> dict[str, Any]:
    """The catalogue the server validates uploads against; the web app builds its form from it."""
    return catalogue.describe(default_preset=context.settings.default_preset,
                              max_upload_bytes=context.settings.max_upload_bytes)


@router.post(
    "/new",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SceneCreated,
    summary="Upload a video and start processing it into a scene",
    responses=error_responses(400, 401, 413, 415, 507),
    openapi_extra=upload_form_openapi(),
)
async def create_scene(request: Request, user: CurrentUser, context: ContextDep) -> SceneCreated:
    settings = context.settings
    free = await anyio.to_thread.run_sync(context.storage.free_bytes)
    upload: ReceivedUpload = await receive_upload(
        request, tmp_dir=context.storage.tmp_dir, max_file_bytes=settings.max_upload_bytes, free_bytes=free,
        check_fields=partial(service.check_early_fields, default_preset=settings.default_preset))
    try:
        if upload.file_path is None:
            raise BadRequestError(f"Missing field: {FILE_FIELD}.")
        req = service.parse_scene_request(upload.fields, default_preset=settings.default_preset)
        info = await anyio.to_thread.run_sync(service.probe, upload.file_path)
        scene_id, job_id = await anyio.to_thread.run_sync(partial(
            service.create_scene, context.unit_of_work, context.storage, user_id=user.id,
            request=req, upload_path=upload.file_path, info=info))
    finally:
        upload.discard()  # already moved into place on success; removes the temporary file otherwise
    logger.info("scene created", extra={"scene_id": scene_id, "job_id": job_id, "user_id": user.id,
                                        "bytes": upload.file_size, "training_mode": req.training_mode})
    await _enqueue(context, scene_id, job_id)
    return SceneCreated(id=scene_id,
                        message="Video received and processing scene. Check back later for updates.")


async def _enqueue(context: AppContext, scene_id: str, job_id: int) -> None:
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
            responses=error_responses(401))
async def history(claims: TokenDep, context: ContextDep) -> SceneHistory:
    ids = await read_in_thread(context, partial(service.history, claims=claims))
    return SceneHistory(resources=ids)


@router.get("/name/{scene_id}", response_model=SceneName, summary="The scene's name", responses=_SCENE_ERRORS)
async def scene_name(scene_id: str, claims: TokenDep, context: ContextDep) -> SceneName:
    scene = await read_in_thread(context, partial(service.owned_scene, claims=claims, scene_id=scene_id))
    return SceneName(name=scene.name)


@router.get("/progress/{scene_id}", response_model=SceneProgress, summary="Processing progress",
            responses=_SCENE_ERRORS)
async def progress(scene_id: str, claims: TokenDep, context: ContextDep) -> SceneProgress:
    return await read_in_thread(context, partial(service.progress, claims=claims, scene_id=scene_id))


@router.get("/metadata/{scene_id}", response_model=SceneMetadata,
            summary="Which outputs exist, their sizes and 1 MiB chunk counts", responses=_SCENE_ERRORS)
async def metadata(scene_id: str, claims: TokenDep, context: ContextDep) -> SceneMetadata:
    return await read_in_thread(context, partial(service.metadata, storage=context.storage, claims=claims,
                                                 scene_id=scene_id))


@router.get("/metrics/{scene_id}", response_model=SceneMetrics,
            summary="Held-out PSNR/SSIM, gaussian count and training time per saved iteration",
            responses=_SCENE_ERRORS)
async def metrics(scene_id: str, claims: TokenDep, context: ContextDep) -> SceneMetrics:
    return await read_in_thread(context, partial(service.metrics, storage=context.storage, claims=claims,
                                                 scene_id=scene_id))


@router.get(
    "/thumbnail/{scene_id}",
    response_class=FileResponse,
    summary="JPEG thumbnail (404 until frames are extracted)",
    responses={200: {"content": {"image/jpeg": _BINARY}, "description": "The thumbnail"}, **_SCENE_ERRORS},
)
async def thumbnail(scene_id: str, claims: TokenDep, context: ContextDep) -> FileResponse:
    path, stat_result = await read_in_thread(context, partial(service.thumbnail, storage=context.storage,
                                                              claims=claims, scene_id=scene_id))
    return FileResponse(path, media_type="image/jpeg", stat_result=stat_result,
                        headers={"Cache-Control": "private, no-cache"})


def output_response(conn: Connection, context: AppContext, claims: TokenClaims, scene_id: str, output_type: str,
                    iteration: int | None) -> DownloadResponse:
    """The download of the latest (or the given) iteration of an output; raises the API error otherwise."""
    found = service.find_output(conn, context.storage, claims, scene_id, output_type, iteration)
    return DownloadResponse(found.path, media_type=found.media_type, stat_result=found.stat_result,
                            filename=safe_filename(found.filename_stem, found.extension))


IterationQuery = Annotated[int | None, Query(ge=1, le=catalogue.MAX_TOTAL_ITERATIONS,
                                             description="Default: the latest that exists")]
_ITERATION = TypeAdapter(IterationQuery)  # validates exactly as FastAPI does for the route: same annotation


async def output(
    output_type: Annotated[str, Path(json_schema_extra={"enum": list(catalogue.OUTPUT_TYPES)})],
    scene_id: str,
    claims: TokenDep,
    context: ContextDep,
    request: Request,
    iteration: IterationQuery = None,
) -> DownloadResponse:
    if output_type not in catalogue.OUTPUT_TYPES:
        raise BadRequestError(f"Invalid output_type: unknown output type {output_type!r}.")

    def read(conn: Connection) -> DownloadResponse:
        response = output_response(conn, context, claims, scene_id, output_type, iteration)
        if request.method == "GET":
            response.preload(request.headers)  # the web client's 1 MiB chunk: read in this same hop
        return response

    return await read_in_thread(context, read)


@router.patch("/name/{scene_id}", response_model=SceneName, summary="Rename the scene",
              responses=_SCENE_ERRORS, openapi_extra=request_body_openapi(SceneName))
def rename_scene(scene_id: str, user: CurrentUser, body: Annotated[SceneName, Depends(body_of(SceneName))],
                 context: ContextDep) -> SceneName:
    name = service.rename_scene(context.unit_of_work, user_id=user.id, scene_id=scene_id, name=body.name)
    return SceneName(name=name)


@router.post(
    "/retry/{scene_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SceneCreated,
    summary="Process the scene's video again with other settings (the upload's fields, without the file)",
    responses=error_responses(400, 401, 404, 409, 413),
    openapi_extra=retry_form_openapi(),
)
async def retry_scene(scene_id: str, request: Request, user: CurrentUser, context: ContextDep) -> SceneCreated:
    fields = await text_fields(request)
    job_id = await anyio.to_thread.run_sync(partial(
        service.retry_scene, context.unit_of_work, context.storage, user_id=user.id, scene_id=scene_id,
        fields=fields, default_preset=context.settings.default_preset))
    logger.info("scene retried", extra={"scene_id": scene_id, "job_id": job_id, "user_id": user.id})
    await _enqueue(context, scene_id, job_id)
    return SceneCreated(id=scene_id, message="Processing the scene again with the new settings.")


class OutputRoute(SessionReleasingRoute):
    """The output route, which resolves its own parameters for plain requests instead of FastAPI's solver.

    The web client downloads outputs in 1 MiB ``Range`` requests (a 1 GiB checkpoint is 1024 of them), and
    FastAPI's generic dependency solving is a sixth of such a request's CPU (bench/RESULTS.md, API). A
    request whose query is empty or one ``iteration`` is resolved here from the route's own pieces: the path
    parameters the router matched, ``iteration`` validated by the annotation the endpoint declares, the token
    by the dependencies ``TokenDep`` is made of; then the endpoint runs. What it raises is answered by the
    app's error handlers, and the app's middleware (CORS, security headers) wraps the answer, as for any
    route. Any other query goes through FastAPI, which answers a bad one with the documented 400, and so does
    every request while the app has dependency overrides. Neither the route nor its router has dependencies
    beyond the endpoint's parameters; one added there must be resolved in ``handle`` too.
    """

    direct = True  # False: every request through FastAPI (tests compare the two)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        plain, iteration = (self._plain_iteration(request) if self.direct and scope["method"] in (self.methods or ())
                            else (False, None))
        if not plain:
            await super().handle(scope, receive, send)
            return
        context = await get_context(request)
        claims = await get_token_claims(context, await bearer_scheme(request))
        response = await output(**scope["path_params"], claims=claims, context=context, request=request,
                                iteration=iteration)
        await response(scope, receive, send)

    @staticmethod
    def _plain_iteration(request: Request) -> tuple[bool, int | None]:
        """Whether the request is plain, and its ``iteration`` validated as FastAPI would (``None`` without
        one); not plain means FastAPI must decide, and answer."""
        items = request.query_params.multi_items()
        if len(items) > 1 or (items and items[0][0] != "iteration") or request.app.dependency_overrides:
            return False, None
        try:
            return True, _ITERATION.validate_python(items[0][1] if items else None)
        except ValidationError:
            return False, None


_OUTPUT_PATH = "/output/{output_type}/{scene_id}"
_OUTPUT_CONTENT = dict.fromkeys(_MEDIA_TYPES, _BINARY)
router.add_api_route(
    _OUTPUT_PATH, output, methods=["GET"], route_class_override=OutputRoute,
    response_class=DownloadResponse,
    summary="Download an output file (Range requests supported)",
    responses={
        200: {"content": _OUTPUT_CONTENT, "description": "The whole file"},
        206: {"content": {**_OUTPUT_CONTENT, "multipart/byteranges": _BINARY},
              "description": "The requested byte range(s)"},
        **error_responses(400, 401, 404, 416),
    },
)
# HEAD as an operation of its own: one route with both methods would give both the same operationId (FastAPI
# warns, and takes it from whichever method its set yields first, so even the GET one could change).
router.add_api_route(
    _OUTPUT_PATH, output, methods=["HEAD"], route_class_override=OutputRoute,
    response_class=DownloadResponse,
    summary="An output file's headers: size, type, validators, file name (no body; Range is ignored)",
    responses={
        200: {"content": _OUTPUT_CONTENT, "description": "The whole file's headers"},
        **error_responses(400, 401, 404),
    },
)


@router.delete("/delete/{scene_id}", response_model=MessageOut, summary="Delete the scene, stopping its job",
               responses=_SCENE_ERRORS)
def delete_scene(scene_id: str, user: CurrentUser, context: ContextDep) -> MessageOut:
    service.delete_scene(context.unit_of_work, context.storage, user_id=user.id, scene_id=scene_id)
    logger.info("scene deleted", extra={"scene_id": scene_id, "user_id": user.id})
    return MessageOut(message="Scene deleted")
