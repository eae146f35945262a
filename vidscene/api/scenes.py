"""``/user/scene/*``: upload a video as a new scene, follow its progress, list and download its outputs.

Every lookup is by (scene id, owner): a scene of another user answers exactly like an unknown id, so ids
cannot be probed. Nothing here imports the pipeline or the job engine; the job is handed over through the
``enqueue`` callable given to ``create_app``, only after the transaction that created it has committed.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse
from sqlalchemy import Connection, Row, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import aliased

from vidscene.api.deps import (
    AppContext,
    ContextDep,
    CurrentUser,
    SessionDep,
    SessionReleasingRoute,
    TokenDep,
    begin_write,
    read_in_thread,
    revoked_token_error,
)
from vidscene.api.downloads import DownloadResponse, safe_filename
from vidscene.api.errors import BadRequestError, NotFoundError, SceneNotFoundError, UnsupportedMediaError
from vidscene.api.schemas import (
    OUTPUT_TYPES,
    MessageOut,
    OutputType,
    ResourceInfo,
    SceneCreated,
    SceneHistory,
    SceneMetadata,
    SceneName,
    SceneProgress,
    error_responses,
)
from vidscene.api.security import TokenClaims
from vidscene.api.upload import FILE_FIELD, ReceivedUpload, receive_upload
from vidscene.db.models import Job, JobState, Output, Scene, Stage, User, utcnow
from vidscene.probe import NotAVideoError, VideoInfo, probe_video
from vidscene.storage import OUTPUT_EXTENSIONS, SceneFiles
from vidscene.storage.local import publish

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/scene", tags=["scene"], route_class=SessionReleasingRoute)

CHUNK_BYTES = 1024 * 1024  # the web client downloads in 1 MiB Range requests driven by /metadata
MAX_TOTAL_ITERATIONS = 30_000
MAX_SCENE_NAME = 200
DEFAULT_SCENE_NAME = "Untitled Scene"
TRAINING_MODES = ("gaussian", "tensorf")
OUTPUTS_BY_MODE: dict[str, tuple[str, ...]] = {
    "gaussian": ("splat_cloud", "point_cloud", "video", "model"),
    "tensorf": ("video", "model", "point_cloud"),
}
MEDIA_TYPES = {"video": "video/mp4"}
SFM_STAGES = (Stage.frames.value, Stage.sfm.value)
# Share of the whole job each stage represents in ``percent``: rough CPU-preset timings, training dominates.
STAGE_SPANS: dict[str, tuple[float, float]] = {
    Stage.frames.value: (0.0, 10.0),
    Stage.sfm.value: (10.0, 30.0),
    Stage.train.value: (30.0, 95.0),
    Stage.export.value: (95.0, 100.0),
}
UNFINISHED = (JobState.queued.value, JobState.processing.value)
_DIGITS = re.compile(r"^[0-9]+$")
_CONTAINER_SUFFIXES = {"mov": ".mp4", "mp4": ".mp4", "matroska": ".mkv", "webm": ".webm", "avi": ".avi"}

# ---- creating a scene -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneRequest:
    training_mode: str
    output_types: list[str]
    save_iterations: list[int]  # sorted, unique, always includes total_iterations
    total_iterations: int
    name: str


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise BadRequestError(f"Missing field: {name}.")
    return value.strip()


def _iteration(text: str, field: str, upper: int) -> int:
    if not _DIGITS.fullmatch(text):
        raise BadRequestError(f"Invalid {field}: {text!r} is not a whole number.")
    value = int(text)
    if not 1 <= value <= upper:
        raise BadRequestError(f"Invalid {field}: {value} is outside 1..{upper}.")
    return value


def parse_scene_request(fields: dict[str, str]) -> SceneRequest:
    """Validate the text fields of ``POST /user/scene/new``; ``BadRequestError`` names the field and value."""
    mode = _required(fields, "training_mode")
    if mode not in TRAINING_MODES:
        raise BadRequestError(f"Invalid training_mode: {mode!r}; use 'gaussian' or 'tensorf'.")

    output_types: list[str] = []
    for raw in _required(fields, "output_types").split(","):
        item = raw.strip()
        if not item or item in output_types:
            continue
        if item not in OUTPUT_TYPES:
            raise BadRequestError(f"Invalid output_types: unknown output type {item!r}.")
        if item not in OUTPUTS_BY_MODE[mode]:
            raise BadRequestError(f"Invalid output_types: {item!r} needs training_mode=gaussian.")
        output_types.append(item)
    if not output_types:
        raise BadRequestError("Invalid output_types: name at least one output type.")

    total = _iteration(_required(fields, "total_iterations"), "total_iterations", MAX_TOTAL_ITERATIONS)
    saves = {total}
    for raw in _required(fields, "save_iterations").split(","):
        item = raw.strip()
        if item:
            saves.add(_iteration(item, "save_iterations", total))

    name = (fields.get("scene_name") or "").strip() or DEFAULT_SCENE_NAME
    if len(name) > MAX_SCENE_NAME:
        raise BadRequestError(f"Invalid scene_name: at most {MAX_SCENE_NAME} characters.")
    return SceneRequest(training_mode=mode, output_types=output_types, save_iterations=sorted(saves),
                        total_iterations=total, name=name)


def _video_filename(info: VideoInfo) -> str:
    """Name the stored upload after what probing found, never after the client's file name."""
    for part in info.container.split(","):
        if part in _CONTAINER_SUFFIXES:
            return "video" + _CONTAINER_SUFFIXES[part]
    return "video.bin"


def _create_scene_rows(context: AppContext, user_id: int, req: SceneRequest, upload_path: Path,
                       info: VideoInfo) -> tuple[str, int]:
    """Move the upload into the new scene's folder, then insert scene + job in one transaction.

    Runs in a worker thread. Any failure removes the scene's folder, so no file outlives a missing row.
    """
    scene_id = secrets.token_urlsafe(16)
    files = context.storage.scene(scene_id)
    filename = _video_filename(info)
    files.root.parent.mkdir(parents=True, exist_ok=True)
    # exist_ok=False: an id collision (128 random bits: never in practice) must not clean up someone's scene.
    files.root.mkdir()
    try:
        publish(upload_path, files.upload_dir / filename)
        with context.sessions() as session:
            begin_write(session)
            now = utcnow()
            session.add(Scene(id=scene_id, user_id=user_id, name=req.name, training_mode=req.training_mode,
                              output_types=req.output_types, save_iterations=req.save_iterations,
                              total_iterations=req.total_iterations, preset=context.settings.default_preset,
                              video_filename=filename, video_info=info.to_json(), created_at=now))
            job = Job(scene_id=scene_id, state=JobState.queued.value, created_at=now, updated_at=now)
            session.add(job)
            session.commit()
            return scene_id, job.id
    except BaseException:
        files.remove()
        raise


def _probe(path: Path) -> VideoInfo:
    try:
        return probe_video(path)
    except NotAVideoError as exc:
        raise UnsupportedMediaError(str(exc)) from exc


def _multipart_openapi() -> dict[str, Any]:
    text = {"type": "string"}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "required": [FILE_FIELD, "training_mode", "output_types", "save_iterations", "total_iterations"],
        "properties": {
            FILE_FIELD: {"type": "string", "format": "binary",
                         "description": "The video (any container/codec FFmpeg decodes), decided by content"},
            "training_mode": {"type": "string", "enum": list(TRAINING_MODES)},
            "output_types": {**text, "description": "Comma-separated: splat_cloud, point_cloud, video, model",
                             "example": "splat_cloud,video"},
            "save_iterations": {**text, "description": "Comma-separated iterations (1..total_iterations)",
                                "example": "1000,7000"},
            "total_iterations": {**text, "pattern": "^[0-9]+$", "description": "1..30000", "example": "7000"},
            "scene_name": {**text, "maxLength": MAX_SCENE_NAME},
        },
    }}}}}


@router.post(
    "/new",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SceneCreated,
    summary="Upload a video and start processing it into a scene",
    responses=error_responses(400, 401, 413, 415, 507),
    openapi_extra=_multipart_openapi(),
)
async def create_scene(request: Request, user: CurrentUser, context: ContextDep) -> SceneCreated:
    settings = context.settings
    free = await anyio.to_thread.run_sync(context.storage.free_bytes)
    upload: ReceivedUpload = await receive_upload(request, tmp_dir=context.storage.tmp_dir,
                                                  max_file_bytes=settings.max_upload_bytes, free_bytes=free)
    try:
        if upload.file_path is None:
            raise BadRequestError(f"Missing field: {FILE_FIELD}.")
        req = parse_scene_request(upload.fields)
        info = await anyio.to_thread.run_sync(_probe, upload.file_path)
        scene_id, job_id = await anyio.to_thread.run_sync(
            _create_scene_rows, context, user.id, req, upload.file_path, info)
    finally:
        upload.discard()  # already moved into place on success; removes the temporary file otherwise
    logger.info("scene created", extra={"scene_id": scene_id, "job_id": job_id, "user_id": user.id,
                                        "bytes": upload.file_size, "training_mode": req.training_mode})
    if context.enqueue is not None:
        try:
            await anyio.to_thread.run_sync(context.enqueue, job_id)
        except Exception:
            # The job row is committed as queued; the engine's recovery of queued jobs delivers it later,
            # so the upload is not failed (and the user not asked to send gigabytes again).
            logger.exception("enqueue failed; job stays queued", extra={"scene_id": scene_id, "job_id": job_id})
    return SceneCreated(id=scene_id,
                        message="Video received and processing scene. Check back later for updates.")


# ---- reading scenes -------------------------------------------------------------------------------------


# The read routes run these statements on every poll and every 1 MiB chunk, so they are built once (building
# a statement with joins and aliases costs more than running it on SQLite) and run on a plain connection
# that selects columns, not ORM objects (half the cost of a session). Bind them with ``owner_params``.
OWNED_SCENE = (
    select(Scene.id, Scene.name, Scene.output_types, Scene.save_iterations, Scene.total_iterations)
    .join(User, User.id == Scene.user_id)
    .where(Scene.id == bindparam("scene_id"), User.id == bindparam("user_id"),
           User.token_version == bindparam("token_version"))
)
"""The scene if the token's user owns it and the token is not revoked: ownership, revocation and the lookup
in one query, so a polled route costs one round trip."""


def owner_params(claims: TokenClaims, scene_id: str, **extra: object) -> dict[str, object]:
    return {"scene_id": scene_id, "user_id": claims.user_id, "token_version": claims.token_version, **extra}


def token_revoked(conn: Connection, claims: TokenClaims) -> bool:
    """Whether the token's user is gone or changed the password since (``token_version``)."""
    version = conn.scalar(select(User.token_version).where(User.id == claims.user_id))
    return version is None or version != claims.token_version


def scene_missing(conn: Connection, claims: TokenClaims) -> Exception:
    """Why ``OWNED_SCENE`` found nothing: a revoked token (401) or an unknown or foreign scene (404), which
    must look the same to the caller."""
    return revoked_token_error() if token_revoked(conn, claims) else SceneNotFoundError()


def _output_file(files: SceneFiles, relpath: str) -> tuple[Path, os.stat_result] | None:
    """The output's file and its status, if it is a regular file inside the scene folder.

    Relative paths are written by the pipeline; one that is absolute or climbs out with ``..`` is refused
    anyway. The check is lexical (no ``resolve()``: the scene folder holds no symbolic links), because it
    runs on every chunk request.
    """
    parts = PurePosixPath(relpath).parts
    if not parts or parts[0] == "/" or ".." in parts:
        return None
    path = files.root.joinpath(*parts)
    try:
        status = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (path, status) if stat.S_ISREG(status.st_mode) else None


def resource_info(size: int | None) -> ResourceInfo:
    if size is None:
        return ResourceInfo(exists=False, size=0, chunks=0, last_chunk_size=0)
    chunks = math.ceil(size / CHUNK_BYTES)
    return ResourceInfo(exists=True, size=size, chunks=chunks,
                        last_chunk_size=size - (chunks - 1) * CHUNK_BYTES if chunks else 0)


def _percent(state: str, stage: str | None, position: int, size: int) -> float:
    if state == JobState.done.value:
        return 100.0
    span = STAGE_SPANS.get(stage or "")
    if span is None:
        return 0.0
    fraction = min(1.0, position / size) if size > 0 else 0.0
    return round(span[0] + (span[1] - span[0]) * fraction, 1)


def _progress_statement() -> Select[Any]:
    """The scene, its job, and the queue: all unfinished (queued or processing) jobs of every user, and
    those of them ahead of this job (older, the id breaking ties)."""
    everyone, earlier = aliased(Job), aliased(Job)
    queue_size = select(func.count()).select_from(everyone).where(everyone.state.in_(UNFINISHED))
    ahead = select(func.count()).select_from(earlier).where(
        earlier.state.in_(UNFINISHED),
        or_(earlier.created_at < Job.created_at, and_(earlier.created_at == Job.created_at, earlier.id < Job.id)),
    )
    return (OWNED_SCENE.join(Job, Job.scene_id == Scene.id)
            .add_columns(Job.state, Job.stage, Job.current_position, Job.current_size, Job.eta_seconds,
                         Job.message, Job.error_code,
                         queue_size.correlate(None).scalar_subquery().label("queue_size"),
                         ahead.correlate(Job).scalar_subquery().label("ahead")))


PROGRESS = _progress_statement()
METADATA = (OWNED_SCENE.outerjoin(Output, Output.scene_id == Scene.id)
            .add_columns(Output.output_type, Output.iteration, Output.relpath))
_OUTPUT_OF_TYPE = and_(Output.scene_id == Scene.id, Output.output_type == bindparam("output_type"))
OUTPUTS = (OWNED_SCENE.outerjoin(Output, _OUTPUT_OF_TYPE)
           .add_columns(Output.iteration, Output.relpath).order_by(Output.iteration.desc()))
OUTPUT_AT = (OWNED_SCENE.outerjoin(Output, and_(_OUTPUT_OF_TYPE, Output.iteration == bindparam("iteration")))
             .add_columns(Output.iteration, Output.relpath))


def scene_progress(row: Row[Any]) -> SceneProgress:
    """The seed's progress fields plus ``state/step/percent/eta_seconds``, from a ``PROGRESS`` row.

    ``overall_position`` is the 0-based place of this job among all unfinished jobs, ``overall_size`` their
    count. A finished job is in no queue: it reports position 0 and the current size, so a client's "n of m"
    display stays within bounds.
    """
    state: str = row.state
    error = 0
    message = "Scene progress retrieved successfully"
    if state == JobState.failed.value:
        error = row.error_code or 1
        message = row.message or "Processing failed."
    elif state == JobState.cancelled.value:
        message = row.message or "Processing was cancelled."
    return SceneProgress(
        uuid=row.id,
        status=200,
        error=error,
        message=message,
        processing=state == JobState.processing.value,
        overall_position=(row.ahead or 0) if state in UNFINISHED else 0,
        overall_size=row.queue_size or 0,
        stage="sfm_list" if (row.stage is None or row.stage in SFM_STAGES) else "nerf_list",
        current_position=row.current_position,
        current_size=row.current_size,
        state=JobState(state).value,
        step=row.stage,
        percent=_percent(state, row.stage, row.current_position, row.current_size),
        eta_seconds=row.eta_seconds if state in UNFINISHED else None,
    )


_SCENE_ERRORS = error_responses(400, 401, 404)

# The read routes below are async and do their database and file-system work in one worker-thread hop
# (``read_in_thread``): clients poll progress and metadata every few seconds and fetch outputs in 1 MiB
# chunks, so per-request overhead is what limits how many of them one process serves.


@router.get("/history", response_model=SceneHistory, summary="Ids of the user's scenes, oldest first",
            responses=error_responses(401))
async def history(claims: TokenDep, context: ContextDep) -> SceneHistory:
    def read(conn: Connection) -> SceneHistory:
        if token_revoked(conn, claims):
            raise revoked_token_error()
        ids = conn.scalars(select(Scene.id).where(Scene.user_id == claims.user_id)
                           .order_by(Scene.created_at, Scene.id))
        return SceneHistory(resources=list(ids))

    return await read_in_thread(context, read)


@router.get("/name/{scene_id}", response_model=SceneName, summary="The scene's name", responses=_SCENE_ERRORS)
async def scene_name(scene_id: str, claims: TokenDep, context: ContextDep) -> SceneName:
    def read(conn: Connection) -> SceneName:
        scene = conn.execute(OWNED_SCENE, owner_params(claims, scene_id)).one_or_none()
        if scene is None:
            raise scene_missing(conn, claims)
        return SceneName(name=scene.name)

    return await read_in_thread(context, read)


@router.get("/progress/{scene_id}", response_model=SceneProgress, summary="Processing progress",
            responses=_SCENE_ERRORS)
async def progress(scene_id: str, claims: TokenDep, context: ContextDep) -> SceneProgress:
    def read(conn: Connection) -> SceneProgress:
        row = conn.execute(PROGRESS, owner_params(claims, scene_id)).one_or_none()
        if row is None:  # also between a delete's commit and this read, when the job is already gone
            raise scene_missing(conn, claims)
        return scene_progress(row)

    return await read_in_thread(context, read)


@router.get("/metadata/{scene_id}", response_model=SceneMetadata,
            summary="Which outputs exist, their sizes and 1 MiB chunk counts", responses=_SCENE_ERRORS)
async def metadata(scene_id: str, claims: TokenDep, context: ContextDep) -> SceneMetadata:
    def read(conn: Connection) -> SceneMetadata:
        rows = conn.execute(METADATA, owner_params(claims, scene_id)).all()
        if not rows:
            raise scene_missing(conn, claims)
        scene = rows[0]
        relpaths = {(row.output_type, row.iteration): row.relpath for row in rows if row.relpath is not None}
        files = context.storage.scene(scene.id)
        iterations = sorted(set(scene.save_iterations) | {scene.total_iterations})
        resources: dict[str, dict[str, ResourceInfo]] = {}
        for output_type in scene.output_types:
            entries: dict[str, ResourceInfo] = {}
            for iteration in iterations:
                relpath = relpaths.get((output_type, iteration))
                found = _output_file(files, relpath) if relpath is not None else None
                entries[str(iteration)] = resource_info(found[1].st_size if found is not None else None)
            resources[output_type] = entries
        return SceneMetadata(uuid=scene.id, status=200, error=0, message="Scene metadata retrieved successfully",
                             resources=resources)

    return await read_in_thread(context, read)


@router.get(
    "/thumbnail/{scene_id}",
    response_class=FileResponse,
    summary="JPEG thumbnail (404 until frames are extracted)",
    responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "The thumbnail"}, **_SCENE_ERRORS},
)
async def thumbnail(scene_id: str, claims: TokenDep, context: ContextDep) -> FileResponse:
    def read(conn: Connection) -> FileResponse:
        scene = conn.execute(OWNED_SCENE, owner_params(claims, scene_id)).one_or_none()
        if scene is None:
            raise scene_missing(conn, claims)
        path = context.storage.scene(scene.id).thumbnail
        try:
            stat_result = path.stat()
        except FileNotFoundError:
            raise NotFoundError("The thumbnail is not ready yet.") from None
        return FileResponse(path, media_type="image/jpeg", stat_result=stat_result,
                            headers={"Cache-Control": "private, no-cache"})

    return await read_in_thread(context, read)


def find_output(conn: Connection, context: AppContext, claims: TokenClaims, scene_id: str, output_type: str,
                iteration: int | None) -> DownloadResponse:
    """The response for the latest (or the given) iteration of an output; raises the API error otherwise.

    Shared by the output route and ``chunks.ChunkFastPath``, so both find exactly the same file.
    """
    if iteration is None:
        rows = conn.execute(OUTPUTS, owner_params(claims, scene_id, output_type=output_type)).all()
    else:
        rows = conn.execute(OUTPUT_AT, owner_params(claims, scene_id, output_type=output_type,
                                                    iteration=iteration)).all()
    if not rows:
        raise scene_missing(conn, claims)
    scene = rows[0]
    if output_type not in scene.output_types:
        raise NotFoundError(f"This scene does not produce {output_type}.")
    files = context.storage.scene(scene.id)
    for row in rows:
        found = _output_file(files, row.relpath) if row.relpath is not None else None
        if found is None:
            continue
        path, stat_result = found
        extension = path.suffix or OUTPUT_EXTENSIONS[output_type]
        return DownloadResponse(
            path,
            media_type=MEDIA_TYPES.get(output_type, "application/octet-stream"),
            filename=safe_filename(f"{scene.name}-{output_type}-{row.iteration}", extension),
            stat_result=stat_result,
        )
    if iteration is not None:
        raise NotFoundError(f"No {output_type} output for iteration {iteration} yet.")
    raise NotFoundError(f"No {output_type} output yet.")


@router.get(
    "/output/{output_type}/{scene_id}",
    response_class=DownloadResponse,
    summary="Download an output file (Range requests supported)",
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                          "video/mp4": {"schema": {"type": "string", "format": "binary"}}},
              "description": "The whole file"},
        206: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                          "video/mp4": {"schema": {"type": "string", "format": "binary"}},
                          "multipart/byteranges": {"schema": {"type": "string", "format": "binary"}}},
              "description": "The requested byte range(s)"},
        **error_responses(400, 401, 404, 416),
    },
)
async def output(
    output_type: OutputType,
    scene_id: str,
    claims: TokenDep,
    context: ContextDep,
    request: Request,
    iteration: Annotated[int | None, Query(ge=1, le=MAX_TOTAL_ITERATIONS,
                                           description="Default: the latest that exists")] = None,
) -> DownloadResponse:
    def read(conn: Connection) -> DownloadResponse:
        response = find_output(conn, context, claims, scene_id, output_type, iteration)
        if request.method == "GET":
            response.preload(request.headers)  # the web client's 1 MiB chunk: read in this same hop
        return response

    return await read_in_thread(context, read)


@router.delete("/delete/{scene_id}", response_model=MessageOut, summary="Delete the scene, stopping its job",
               responses=_SCENE_ERRORS)
def delete_scene(scene_id: str, user: CurrentUser, session: SessionDep, context: ContextDep) -> MessageOut:
    begin_write(session)
    scene = session.scalar(select(Scene).where(Scene.id == scene_id, Scene.user_id == user.id)
                           .with_for_update())
    if scene is None:
        raise SceneNotFoundError()
    # The worker sees the job cancelled, or gone once the cascade commits, at its next progress report.
    session.execute(update(Job).where(Job.scene_id == scene.id)
                    .values(state=JobState.cancelled.value, finished_at=utcnow()))
    session.execute(delete(Scene).where(Scene.id == scene.id))
    session.commit()
    context.storage.scene(scene.id).remove()
    logger.info("scene deleted", extra={"scene_id": scene.id, "user_id": user.id})
    return MessageOut(message="Scene deleted")
