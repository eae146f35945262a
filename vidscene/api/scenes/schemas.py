"""Bodies of the scene routes, so /openapi.json documents every success shape (and the upload form)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from vidscene import catalogue
from vidscene.api.upload import FILE_FIELD


class SceneCreated(BaseModel):
    id: str
    message: str


class SceneName(BaseModel):
    name: str


class SceneHistory(BaseModel):
    resources: list[str] = Field(description="Scene ids of the user, oldest first")


class SceneProgress(BaseModel):
    uuid: str = Field(description="The scene id")
    status: int = 200
    error: int = Field(description="0, or a non-zero code when processing failed")
    message: str
    processing: bool = Field(description="True while the scene is queued or being processed; false once it is "
                                         "done, failed or cancelled")
    overall_position: int = Field(description="0-based place among all unfinished scenes (0 once finished)")
    overall_size: int = Field(description="Number of unfinished scenes of all users")
    stage: Literal["sfm_list", "nerf_list"]
    current_position: int = Field(description="Step counter inside the stage (e.g. the training iteration)")
    current_size: int
    state: Literal["queued", "processing", "done", "failed", "cancelled"]
    step: str | None = Field(description="Pipeline step: frames, sfm, train or export")
    percent: float = Field(description="Overall completion estimate, 0-100")
    eta_seconds: int | None = Field(description=(
        "Estimated seconds of work left for the whole scene: the rest of the running step plus every step "
        "after it (while queued: all of its processing, not the wait). From this server's measured stage "
        "times, or the reference CPU's until it has some; null when unknown or once finished"))
    starts_in_seconds: int | None = Field(default=None, description=(
        "While queued: estimated seconds until a worker starts on it (the work left in every scene ahead of "
        "it, shared among the live workers); null when not queued or unknown (no worker seen, or a scene "
        "ahead whose cost was never measured)"))
    preset: str = Field(description="The quality preset the scene is processed with (GET /user/scene/options)")
    created_at: datetime = Field(description="When the video was uploaded")
    started_at: datetime | None = Field(description="When a worker first started on it (None while queued)")
    finished_at: datetime | None = Field(description="When it was done or failed")


class ResourceInfo(BaseModel):
    exists: bool
    size: int = Field(description="Bytes")
    chunks: int = Field(description=f"ceil(size / {catalogue.CHUNK_BYTES})")
    last_chunk_size: int


class InitialView(BaseModel):
    """The first capture camera, in the coordinates of the exported .splat/.ply/.spz (the pipeline's world:
    OpenCV axes, -y up). A three.js viewer sets ``camera.up`` to ``up``, puts the camera at ``position`` and
    looks at ``position + forward``, applying the same transform it gives the splats."""

    position: list[float] = Field(description="Camera centre [x, y, z]")
    forward: list[float] = Field(description="Unit viewing direction through the image centre")
    up: list[float] = Field(description="Unit direction of the image's top edge, orthogonal to forward")
    fov_y_degrees: float = Field(description="Full vertical field of view")
    aspect: float = Field(description="Image width / height")
    image_size: list[int] = Field(description="[width, height] of the frame the camera was solved at")
    image_name: str = Field(description="The capture frame this view is")
    frame: Literal["splat"] = Field(description="Coordinates are those of the exported splat files")


class SceneMetadata(BaseModel):
    uuid: str
    status: int = 200
    error: int = 0
    message: str
    resources: dict[str, dict[str, ResourceInfo]] = Field(
        description="output type -> iteration (as a string) -> file information")
    name: str = Field(description="The scene's name")
    training_mode: str = Field(description="gaussian or tensorf (file extensions follow it)")
    preset: str
    initial_view: InitialView | None = Field(default=None, description=(
        "Where the viewer opens: the first capture camera (null before export, and for older scenes)"))
    models_kept: list[int] = Field(default_factory=list, description=(
        "Saved iterations whose trained model is kept: there the owner's output route makes any output type "
        "of the scene's mode after the fact (empty through a share link, which cannot ask for one)"))


class IterationQuality(BaseModel):
    psnr: float = Field(description="dB, mean over the evaluation views, each after the gain and offset per "
                                    "channel that best match its frame's exposure, without what moved through it")
    ssim: float
    gaussians: int | None = Field(description="Gaussian count (gaussian mode)")
    seconds: float = Field(description="Training time up to this iteration")
    eval_views: int
    heldout: bool = Field(description="False when the capture was too short to hold frames out")
    resolution: list[int] = Field(description="[width, height] the views were rendered and compared at")
    masked: float = Field(default=0.0, description="Share of the evaluation views' pixels not counted because "
                                                    "something moved through them (people, cars)")


class SceneMetrics(BaseModel):
    uuid: str
    preset: str
    metrics: dict[str, IterationQuality] = Field(description="saved iteration (as a string) -> quality, filled "
                                                             "in as each saved iteration finishes")


class CaptureProblem(BaseModel):
    code: str = Field(description="static_camera, cuts, object_moved, moving_content, blur, dark, "
                                  "exposure_changes, partial_registration, little_coverage or few_points")
    severity: Literal["warning", "error"] = Field(description="error: no scene can be made (the job failed with "
                                                              "this message)")
    message: str
    frames: list[int] = Field(description="source frame indices (the video's own numbering) concerned")


class CaptureFrame(BaseModel):
    index: int = Field(description="source frame index in the video")
    time_s: float
    sharpness: float = Field(description="relative to the clip's median (1 typical, under 0.35 blurred)")
    brightness: float = Field(description="mean grey level, 0-255")
    registered: bool | None = Field(description="placed in 3D by structure from motion; null before it ran")
    moving_fraction: float = Field(description="share of the frame that moved in front of a still background")


class SceneCapture(BaseModel):
    uuid: str
    verdict: Literal["good", "usable", "refused"]
    stage: str = Field(description="the last stage that updated the report: frames or sfm")
    problems: list[CaptureProblem]
    frames: list[CaptureFrame] = Field(description="each frame kept for the scene, in time order")
    coverage: dict[str, Any] = Field(description="frames, duration_s, still_share; after SfM also registered, "
                                                 "models, points and arc_deg (views' spread around the subject)")


# ---- the catalogue (GET /user/scene/options) -----------------------------------------------------------


class ModeOption(BaseModel):
    name: str
    label: str
    description: str
    outputs: list[str] = Field(description="Output types this mode can produce")
    default_outputs: list[str]


class OutputOption(BaseModel):
    name: str
    label: str
    description: str
    media_type: str
    extensions: dict[str, str] = Field(description="training mode -> file extension (only modes that make it)")
    public: bool = Field(description="Whether a share link serves it")


class PresetEstimate(BaseModel):
    seconds_per_iteration: float | None = Field(description="Training seconds per iteration (exports and "
                                                            "evaluations at saved iterations included)")
    estimated_seconds: int | None = Field(description="Whole run at the preset's default total_iterations: "
                                                      "frames, camera poses, training and export")
    source: Literal["server", "reference"] | None = Field(description=(
        "server: the median of this server's latest finished scenes; reference: measured on the reference "
        "2-core CPU (bench/RESULTS.md) until this server has finished one; null: never measured"))
    scenes: int = Field(description="How many of this server's scenes the figure comes from (0: reference)")
    basis: str = Field(description="The same in words, for people")


class PresetOption(BaseModel):
    name: str
    label: str
    description: str
    iterations: dict[str, int] = Field(description="training mode -> default total_iterations")
    save_iterations: dict[str, list[int]] = Field(description="training mode -> default save_iterations")
    outputs: dict[str, list[str]] = Field(description="training mode -> output types ticked by default")
    estimates: dict[str, PresetEstimate] = Field(default_factory=dict,
                                                 description="training mode -> what its default run costs here")


class SceneOptions(BaseModel):
    training_modes: list[ModeOption]
    output_types: list[OutputOption]
    presets: list[PresetOption]
    default_preset: str
    limits: dict[str, int | str] = Field(description="max_total_iterations, max_scene_name, chunk_bytes, ...")


def _form_fields() -> dict[str, Any]:
    text = {"type": "string"}
    outputs = ", ".join(catalogue.OUTPUT_TYPES)
    return {
        "training_mode": {"type": "string", "enum": list(catalogue.TRAINING_MODES)},
        "output_types": {**text, "description": f"Comma-separated: {outputs}",
                         "example": ",".join(catalogue.TRAINING_MODES["gaussian"].default_outputs)},
        "save_iterations": {**text, "description": "Comma-separated iterations (1..total_iterations)",
                            "example": "1000,7000"},
        "total_iterations": {**text, "pattern": "^[0-9]+$",
                             "description": f"1..{catalogue.MAX_TOTAL_ITERATIONS}", "example": "7000"},
        "scene_name": {**text, "maxLength": catalogue.MAX_SCENE_NAME},
        "preset": {"type": "string", "enum": list(catalogue.PRESETS),
                   "description": "Quality preset (default: the server's); its schedule scales to "
                                  "total_iterations"},
    }


REQUIRED_FIELDS = ("training_mode", "output_types", "save_iterations", "total_iterations")  # of the upload form


def upload_form_openapi() -> dict[str, Any]:
    """``openapi_extra`` for ``POST /user/scene/new``: the multipart form the route parses itself."""
    file = {"type": "string", "format": "binary",
            "description": "The video (any container/codec FFmpeg decodes), decided by content"}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [FILE_FIELD, *REQUIRED_FIELDS],
        "properties": {FILE_FIELD: file, **_form_fields()}}}}}}


def retry_form_openapi() -> dict[str, Any]:
    """``openapi_extra`` for ``POST /user/scene/retry/{id}``: the upload's fields, in any form encoding."""
    schema = {"type": "object", "required": list(REQUIRED_FIELDS), "properties": _form_fields()}
    media = ("multipart/form-data", "application/x-www-form-urlencoded", "application/json")
    return {"requestBody": {"required": True, "content": {m: {"schema": schema} for m in media}}}
