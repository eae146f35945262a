"""The rules of the scene routes: what an upload must say, what progress and metadata report, which file an
output download is, and what a delete cancels. No HTTP here, and no commit: the routes hold the unit of
work (``db.session.write_session``) that commits, and hand this module a session or a connection.

Every lookup is by (scene id, owner): a scene of another user answers exactly like an unknown id, so ids
cannot be probed.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session

from vidscene import catalogue, photos
from vidscene.api.deps import UnitOfWork, revoked_token_error
from vidscene.api.errors import (
    BadRequestError,
    ConflictError,
    NotAuthenticatedError,
    NotFoundError,
    SceneNotFoundError,
    UnsupportedMediaError,
)
from vidscene.api.scenes import repository
from vidscene.api.scenes.fields import SceneRequest, check_scene_name
from vidscene.api.scenes.fields import check_early_fields as check_early_fields
from vidscene.api.scenes.fields import parse_scene_request as parse_scene_request
from vidscene.api.scenes.schemas import (
    InitialView,
    IterationQuality,
    ResourceInfo,
    SceneCapture,
    SceneMetadata,
    SceneMetrics,
    SceneProgress,
)
from vidscene.api.security import TokenClaims
from vidscene.api.user_limits import UPLOAD_BYTES_KEY
from vidscene.config import Settings
from vidscene.db.models import Stage
from vidscene.jobs import estimates, state
from vidscene.jobs.progress import progress_fields
from vidscene.probe import Media, NotAVideoError, VideoInfo, judge_head, probe_video
from vidscene.storage import Readable, Storage

# Scene files the API reads, relative to the scene (the layout of ``storage.local.SceneFiles``).
THUMBNAIL = "thumbnail.jpg"
CAPTURE_REPORT = "capture.json"
INITIAL_VIEW = "outputs/initial_view.json"

_CONTAINER_SUFFIXES = {"mov": ".mp4", "mp4": ".mp4", "matroska": ".mkv", "webm": ".webm", "avi": ".avi",
                       "mpeg": ".mpg", "mpegts": ".ts", "flv": ".flv", "asf": ".wmv", "ogg": ".ogv", "mxf": ".mxf",
                       "dv": ".dv", "mpegvideo": ".m2v", "h264": ".h264", "hevc": ".hevc", "m4v": ".m4v",
                       "zip": ".zip"}


# ---- creating a scene -----------------------------------------------------------------------------------


def probe(path: Media) -> VideoInfo:
    """What the upload is: a video, or a zip of photos (``vidscene.photos``); 415 for anything else."""
    try:
        return photos.probe_archive(path) if photos.is_archive(path) else probe_video(path)
    except NotAVideoError as exc:
        raise UnsupportedMediaError(str(exc)) from exc


def check_video_head(head: bytes, path: Path) -> None:
    """415 for an upload whose first bytes (being written to ``path``) show FFmpeg will not open it as a
    video, before the rest arrives. Blocking (a worker thread): FFmpeg's probes read up to a MiB."""
    message = head_refusal(head, path)
    if message is not None:
        raise UnsupportedMediaError(message)


def head_refusal(head: bytes, path: Path) -> str | None:
    """Why an upload's first bytes already rule it out, or None: FFmpeg's own verdict (``judge_head``) for a
    video; a photo archive is judged once whole (its directory is at its end)."""
    return None if photos.looks_like_archive(head) else judge_head(head, path, whole_file=False)


def _video_filename(info: VideoInfo) -> str:
    """Name the stored upload after what probing found, never after the client's file name."""
    for part in info.container.split(","):
        if part in _CONTAINER_SUFFIXES:
            return ("photos" if part == "zip" else "video") + _CONTAINER_SUFFIXES[part]
    return "video.bin"


def create_scene(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, request: SceneRequest,
                 upload_path: Path | str, info: VideoInfo,
                 in_transaction: Callable[[Session, str], None] | None = None) -> tuple[str, int]:
    """Move the upload into a new scene's folder and add the scene with its queued job; (scene id, job id).

    Blocking (run it in a worker thread). Any failure removes the scene's folder, so no file outlives a
    missing row. The caller enqueues the job only after this returns: the rows are committed by then.
    ``in_transaction(session, scene_id)`` runs inside the same unit of work after the insert (a resumable
    upload records the scene it became there, so the scene and that record commit together or not at all);
    whatever it raises rolls the scene back.
    """
    scene_id = secrets.token_urlsafe(16)
    files = storage.scene(scene_id)
    filename = _video_filename(info)
    size = _upload_size(storage, upload_path)  # counted against the user's quota (``api.user_limits``)
    storage.ensure()
    if storage.objects is None:  # a bucket has no folders to make
        # exist_ok=False: an id collision (128 random bits: never in practice) must not clean up someone's scene.
        files.root.mkdir(mode=0o700)
    try:
        keep_upload(storage, scene_id, filename, upload_path)
        with unit_of_work() as session:
            if not repository.lock_user(session, user_id):
                raise NotAuthenticatedError("The account was deleted while the video was uploading.")
            job_id = repository.insert_scene(
                session, scene_id=scene_id, user_id=user_id, name=request.name,
                training_mode=request.training_mode, output_types=request.output_types,
                save_iterations=request.save_iterations, total_iterations=request.total_iterations,
                preset=request.preset, video_filename=filename,
                video_info={**info.to_json(), UPLOAD_BYTES_KEY: size})
            if in_transaction is not None:
                in_transaction(session, scene_id)
        return scene_id, job_id
    except BaseException:
        storage.remove_scenes([scene_id])
        raise


def _upload_size(storage: Storage, upload: Path | str) -> int:
    """The received upload's size: a local file, or an object in the store (``upload`` its key)."""
    if isinstance(upload, Path):
        return upload.stat().st_size
    found = storage.objects.stat(upload) if storage.objects is not None else None
    if found is None:
        raise FileNotFoundError(f"the upload {upload} is not in the store")
    return found.size


def keep_upload(storage: Storage, scene_id: str, filename: str, upload: Path | str) -> None:
    """The received upload as the scene's video: a file in the data dir (moved), or an object already in
    the store (``upload`` is its key) or a local file sent there."""
    if isinstance(upload, str):
        storage.keep_stored_upload(scene_id, filename, upload)
    else:
        storage.keep_upload(scene_id, filename, upload)


# ---- changing a scene -----------------------------------------------------------------------------------


def rename_scene(unit_of_work: UnitOfWork, *, user_id: int, scene_id: str, name: str) -> str:
    """The new name (trimmed), stored; 400 for an empty or too long one, 404 for a scene not the user's."""
    cleaned = check_scene_name(name.strip(), "name")
    if not cleaned:
        raise BadRequestError("Invalid name: give the scene a name.")
    with unit_of_work() as session:
        scene = repository.lock_owned_scene_row(session, user_id, scene_id)
        if scene is None:
            raise SceneNotFoundError()
        scene.name = cleaned
    return cleaned


def retry_scene(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, scene_id: str,
                fields: dict[str, str], default_preset: str) -> int:
    """Process a finished or failed scene's upload again with new settings; returns the job id to enqueue.

    The same fields as an upload, without the file (``scene_name`` keeps the old name when absent). When the
    preset is unchanged and the camera poses were found, the frames and poses are kept and the job starts at
    training: retrying with more iterations or other outputs costs no second SfM. A scene still queued or
    processing is refused (409): its job belongs to a worker.
    """
    with unit_of_work() as session:
        scene = repository.lock_owned_scene_row(session, user_id, scene_id)
        if scene is None:
            raise SceneNotFoundError()
        request = parse_scene_request({"scene_name": scene.name, **fields}, default_preset=default_preset)
        job = scene.job
        if job.state in repository.UNFINISHED:
            raise ConflictError("The scene is still being processed; wait for it to finish, or delete it.")
        poses_done = job.stage_done in (Stage.sfm.value, Stage.train.value, Stage.export.value)
        keep_poses = poses_done and request.preset == scene.preset
        # Files first, inside the transaction: if the commit then fails, the rows still describe a finished
        # scene whose outputs read "exists: false", which is honest; the other order could let a worker
        # start on files about to be removed.
        storage.remove_results(scene.id, keep_poses=keep_poses)
        state.restart(session, job, keep_through=Stage.sfm if keep_poses else None)
        scene.name = request.name
        scene.training_mode = request.training_mode
        scene.output_types = request.output_types
        scene.save_iterations = request.save_iterations
        scene.total_iterations = request.total_iterations
        scene.preset = request.preset
        return job.id


# ---- deleting -------------------------------------------------------------------------------------------


def delete_scene(unit_of_work: UnitOfWork, storage: Storage, *, user_id: int, scene_id: str) -> None:
    """Cancel the user's scene and delete its rows, then (after the commit) its files."""
    with unit_of_work() as session:
        found = repository.lock_owned_scene(session, user_id, scene_id)
        if found is None:
            raise SceneNotFoundError()
        state.delete_scenes(session, [found])
    storage.remove_scenes([found])


# ---- reading --------------------------------------------------------------------------------------------


def options(conn: Connection, settings: Settings) -> dict[str, Any]:
    """The catalogue, each preset with what its default run costs here (``jobs.estimates``, cached)."""
    body = catalogue.describe(default_preset=settings.default_preset, max_upload_bytes=settings.max_upload_bytes,
                              upload_chunk_bytes=settings.upload_chunk_bytes)
    costs = estimates.preset_estimates(conn)
    for preset in body["presets"]:
        preset["estimates"] = costs.get(preset["name"], {})
    return body


def scene_missing(conn: Connection, claims: TokenClaims) -> Exception:
    """Why an owned-scene query found nothing: a revoked token (401) or an unknown or foreign scene (404),
    which must look the same to the caller."""
    return revoked_token_error() if repository.token_revoked(conn, claims) else SceneNotFoundError()


def history(conn: Connection, claims: TokenClaims) -> list[str]:
    if repository.token_revoked(conn, claims):
        raise revoked_token_error()
    return repository.scene_ids_of(conn, claims.user_id)


def owned_scene(conn: Connection, claims: TokenClaims, scene_id: str) -> Row[Any]:
    scene = repository.owned_scene(conn, claims, scene_id)
    if scene is None:
        raise scene_missing(conn, claims)
    return scene


def resource_info(size: int | None) -> ResourceInfo:
    if size is None:
        return ResourceInfo(exists=False, size=0, chunks=0, last_chunk_size=0)
    chunks = math.ceil(size / catalogue.CHUNK_BYTES)
    return ResourceInfo(exists=True, size=size, chunks=chunks,
                        last_chunk_size=size - (chunks - 1) * catalogue.CHUNK_BYTES if chunks else 0)


def progress(conn: Connection, claims: TokenClaims, scene_id: str) -> SceneProgress:
    """The seed's progress fields plus ``state/step/percent/eta_seconds/starts_in_seconds``
    (``jobs.progress``, which webhooks' payloads are made by too)."""
    row = repository.progress_row(conn, claims, scene_id)
    if row is None:  # also between a delete's commit and this read, when the job is already gone
        raise scene_missing(conn, claims)
    return SceneProgress(**progress_fields(conn, row))


def metadata(conn: Connection, storage: Storage, claims: TokenClaims, scene_id: str) -> SceneMetadata:
    """One entry per requested output and saved iteration; files not there (yet) read ``exists: false``."""
    rows = repository.metadata_rows(conn, claims, scene_id)
    if not rows:
        raise scene_missing(conn, claims)
    return metadata_of(rows, storage, uuid=rows[0].id)


def metadata_of(rows: Sequence[Row[Any]], storage: Storage, *, uuid: str, public_only: bool = False) -> SceneMetadata:
    """The metadata answer from a scene's ``METADATA``-shaped rows (one per output, or one with none)."""
    scene = rows[0]
    relpaths = {(row.output_type, row.iteration): row.relpath for row in rows if row.relpath is not None}
    iterations = sorted(set(scene.save_iterations) | {scene.total_iterations})
    resources: dict[str, dict[str, ResourceInfo]] = {}
    sizes = storage.file_sizes(scene.id, list(relpaths.values()))
    made_after = [t for t in catalogue.OUTPUT_TYPES if t not in scene.output_types and any(k[0] == t for k in relpaths)]
    for output_type in [*scene.output_types, *made_after]:  # and the types made after the fact, once made
        if public_only and not catalogue.OUTPUT_TYPES[output_type].public:
            continue
        entries: dict[str, ResourceInfo] = {}
        for iteration in iterations:
            relpath = relpaths.get((output_type, iteration))
            entries[str(iteration)] = resource_info(sizes.get(relpath) if relpath is not None else None)
        resources[output_type] = entries
    view = storage.read_json(scene.id, INITIAL_VIEW)
    kept = [] if public_only else storage.kept_models(scene.id, iterations, scene.training_mode)
    return SceneMetadata(uuid=uuid, status=200, error=0, message="Scene metadata retrieved successfully",
                         resources=resources, name=scene.name, training_mode=scene.training_mode,
                         preset=scene.preset, models_kept=kept,
                         initial_view=InitialView.model_validate(view) if view is not None else None)


def metrics(conn: Connection, storage: Storage, claims: TokenClaims, scene_id: str) -> SceneMetrics:
    scene = owned_scene(conn, claims, scene_id)
    found = storage.read_metrics(scene.id)
    return SceneMetrics(uuid=scene.id, preset=scene.preset,
                        metrics={str(it): IterationQuality.model_validate(values) for it, values in found.items()})


def capture(conn: Connection, storage: Storage, claims: TokenClaims, scene_id: str) -> SceneCapture:
    scene = owned_scene(conn, claims, scene_id)
    found = storage.read_json(scene.id, CAPTURE_REPORT)
    if found is None:
        raise NotFoundError("The capture check is not ready yet: it runs once the frames are extracted.")
    return SceneCapture.model_validate({**found, "uuid": scene.id})


def thumbnail(conn: Connection, storage: Storage, claims: TokenClaims, scene_id: str) -> Readable:
    scene = owned_scene(conn, claims, scene_id)
    found = storage.open_file(scene.id, THUMBNAIL)
    if found is None:
        raise NotFoundError("The thumbnail is not ready yet.")
    return found


@dataclass(frozen=True)
class OutputFile:
    """An output to send: where it is, what it is, and the file name the client should save it under."""

    file: Readable
    media_type: str
    filename_stem: str
    extension: str


def find_output(conn: Connection, storage: Storage, claims: TokenClaims, scene_id: str, output_type: str,
                iteration: int | None, *, first: tuple[int, int] | None = None) -> OutputFile:
    """The latest (or the given) iteration of an output; raises the API error otherwise. ``first``: the span
    the request reads (``downloads.first_read``)."""
    rows = repository.output_rows(conn, claims, scene_id, output_type, iteration)
    if not rows:
        raise scene_missing(conn, claims)
    return output_of(rows, storage, output_type, iteration, first=first)


class NotMadeYetError(NotFoundError):
    """An output type the scene's mode makes but its upload did not ask for, not made yet: the owner's
    download asks for it (``api.edits.service.prepare_output``); anyone else gets this 404."""

    def __init__(self, scene_id: str, output_type: str) -> None:
        super().__init__(f"This scene does not produce {output_type}.")
        self.scene_id = scene_id
        self.output_type = output_type


def output_of(rows: Sequence[Row[Any]], storage: Storage, output_type: str, iteration: int | None, *,
              first: tuple[int, int] | None = None) -> OutputFile:
    """The file to send from a scene's ``OUTPUTS``/``OUTPUT_AT``-shaped rows (newest first)."""
    scene = rows[0]
    made_after = output_type not in scene.output_types
    if made_after and scene.training_mode not in catalogue.OUTPUT_TYPES[output_type].extensions:
        raise NotFoundError(f"This scene does not produce {output_type}.")
    kind = catalogue.OUTPUT_TYPES[output_type]
    for row in rows:
        found = storage.open_file(scene.id, row.relpath, first=first) if row.relpath is not None else None
        if found is None:
            continue
        return OutputFile(file=found, media_type=kind.media_type,
                          filename_stem=f"{scene.name}-{output_type}-{row.iteration}",
                          extension=kind.extension(scene.training_mode))  # .compressed.ply, not .ply
    if made_after:
        raise NotMadeYetError(scene.id, output_type)
    if iteration is not None:
        raise NotFoundError(f"No {output_type} output for iteration {iteration} yet.")
    raise NotFoundError(f"No {output_type} output yet.")
