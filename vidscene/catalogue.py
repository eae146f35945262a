"""The service's vocabulary: training modes, output types, presets and limits, each named once.

Every layer imports these names from here (the API to validate uploads and document them, the pipeline to
pick file extensions and writers, storage to lay out files, the CLI for its options), and the API serves the
whole catalogue at ``GET /user/scene/options`` so that the web app builds its form, its checks and its
download table from the server's own answer. A new output type or preset is one entry here plus the code
that produces it; anything asked for that is not here is refused at the edge, before a job exists.

This module imports nothing from the rest of vidscene, so any module may depend on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# ---- limits ---------------------------------------------------------------------------------------------

MAX_TOTAL_ITERATIONS = 30_000
MAX_SCENE_NAME = 200
DEFAULT_SCENE_NAME = "Untitled Scene"
CHUNK_BYTES = 1024 * 1024  # metadata's chunk counts; the web client downloads in 1 MiB Range requests
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
USERNAME_MIN = 3
USERNAME_MAX = 64
PASSWORD_MIN = 8
PASSWORD_MAX = 1024


# ---- automation: personal API tokens and webhooks -------------------------------------------------------

SCENES_READ = "scenes:read"
SCENES_WRITE = "scenes:write"
# What a personal API token may be allowed; a token never manages tokens, webhooks or the account.
API_SCOPES: Mapping[str, str] = MappingProxyType({
    SCENES_READ: "read scenes: history, progress, metadata, metrics, capture check, thumbnail, outputs, "
                 "share links",
    SCENES_WRITE: "change scenes: upload (multipart and resumable), rename, retry, delete, create and "
                  "revoke share links",
})
API_TOKEN_NAME_MAX = 100
MAX_TOKEN_DAYS = 3650
# What a webhook can be told: a scene done, failed or cancelled (deleted while unfinished), or one of its
# stages (frames, sfm, train, export) finished.
WEBHOOK_EVENTS = ("scene.done", "scene.failed", "scene.cancelled", "scene.stage")


# ---- output types ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputType:
    """A kind of file a scene can produce.

    ``extensions`` maps each training mode that makes this output to the file extension it has in that mode
    (TensoRF checkpoints are ``.th`` as in its reference code, gaussian ones ``.ckpt``); a mode missing from it
    cannot produce the output.
    """

    name: str
    label: str
    description: str
    media_type: str
    extensions: Mapping[str, str]
    public: bool = True  # may be served through a share link (a checkpoint never is)

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.extensions)

    def extension(self, mode: str) -> str:
        return self.extensions[mode]


_OUTPUT_TYPES = (
    OutputType("spz", "SPZ",
               "Niantic .spz (version 3, about 10x smaller than the .ply): the compact file for web viewers",
               "application/octet-stream", MappingProxyType({"gaussian": ".spz"})),
    OutputType("sog", "SOG",
               "PlayCanvas SOG (WebP images in a zip, about 15x smaller than the .ply): the smallest splat file; "
               "opens in SuperSplat, PlayCanvas and Spark",
               "application/octet-stream", MappingProxyType({"gaussian": ".sog"})),
    OutputType("gltf", "glTF (splats)",
               "binary glTF with KHR_gaussian_splatting, +y up: for glTF tools and engines (Cesium, Babylon, "
               "Blender importers); other viewers show it as a coloured point cloud",
               "model/gltf-binary", MappingProxyType({"gaussian": ".glb"})),
    OutputType("mesh", "Mesh",
               "triangle mesh with vertex colours (.glb, +y up) fused from the model's depth at the capture cameras: "
               "for Blender, game engines and 3D printing",
               "model/gltf-binary", MappingProxyType({"gaussian": ".glb"})),
    OutputType("splat_cloud", "Splat cloud",
               "antimatter15 .splat (32 bytes a gaussian): loads in most web viewers",
               "application/octet-stream", MappingProxyType({"gaussian": ".splat"})),
    OutputType("point_cloud", "Point cloud",
               "binary PLY: the standard 3DGS file (gaussian), or the density points with colour (TensoRF)",
               "application/octet-stream", MappingProxyType({"gaussian": ".ply", "tensorf": ".ply"})),
    # SuperSplat trusts a *.compressed.ply to be in Morton order already (and skips its own sort): the name says so.
    OutputType("compressed_ply", "Compressed PLY",
               "PlayCanvas compressed PLY (about 4x smaller than the .ply): opens in SuperSplat and PlayCanvas",
               "application/octet-stream", MappingProxyType({"gaussian": ".compressed.ply"})),
    OutputType("video", "Rendered video", "H.264 MP4 along the capture path", "video/mp4",
               MappingProxyType({"gaussian": ".mp4", "tensorf": ".mp4"})),
    OutputType("model", "Checkpoint", "the trained model; training can resume from it",
               "application/octet-stream", MappingProxyType({"gaussian": ".ckpt", "tensorf": ".th"}), public=False),
)
OUTPUT_TYPES: Mapping[str, OutputType] = MappingProxyType({o.name: o for o in _OUTPUT_TYPES})


# ---- training modes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingMode:
    name: str
    label: str
    description: str
    default_outputs: tuple[str, ...]

    @property
    def outputs(self) -> tuple[str, ...]:
        """The output types this mode can produce, in catalogue order."""
        return tuple(o.name for o in _OUTPUT_TYPES if self.name in o.extensions)


_TRAINING_MODES = (
    TrainingMode("gaussian", "Gaussian splatting", "3D Gaussian Splatting: sharp, fast to view in a browser",
                 default_outputs=("spz", "splat_cloud", "video")),
    TrainingMode("tensorf", "TensoRF", "a radiance field (TensoRF, VM decomposition): a video and density points",
                 default_outputs=("video", "point_cloud")),
)
TRAINING_MODES: Mapping[str, TrainingMode] = MappingProxyType({m.name: m for m in _TRAINING_MODES})


# ---- presets --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceCost:
    """What one preset cost one training mode on the reference 2-core CPU (bench/RESULTS.md), per unit of work,
    so that an estimate is a function of the preset and the video: decoding reads every frame of the video,
    structure from motion works on the frames kept (at most the preset's ``frames``), training is iterations x
    the cost of a step along the preset's gaussian budget and at its resolution (the count at every iteration is
    bounded by the budget's ramp, not by what the video shows: ``pipeline/gaussian/budget.py``), and the export
    is the preset's outputs."""

    seconds_per_source_frame: float
    seconds_per_kept_frame: float
    seconds_per_iteration: float
    export_seconds: float


@dataclass(frozen=True)
class Preset:
    """A named quality level: how many frames at what size, and the training budget of each mode.

    ``iterations`` is the default ``total_iterations`` per training mode (the pipeline's schedules are tuned to
    it); ``save_fractions`` places the extra saved iterations as fractions of the total, so a person sees an
    early result; ``outputs`` are the output types a form ticks for it (those the chosen mode makes).
    ``frames`` is how many frames it keeps from a longer video (``FramesConfig.target_count``), ``costs`` the
    reference CPU's cost per mode (``jobs.estimates``; a mode missing from it was never measured there).
    """

    name: str
    label: str
    description: str
    iterations: Mapping[str, int]
    save_fractions: tuple[float, ...] = field(default=())
    outputs: tuple[str, ...] = field(default=())
    frames: int = 0
    costs: Mapping[str, ReferenceCost] = field(default_factory=lambda: MappingProxyType({}))

    def outputs_for(self, mode: str) -> tuple[str, ...]:
        return tuple(o for o in self.outputs if mode in OUTPUT_TYPES[o].extensions)

    def save_iterations(self, mode: str, total: int | None = None) -> tuple[int, ...]:
        total = total or self.iterations[mode]
        return tuple(sorted({max(1, round(total * f)) for f in self.save_fractions} | {total}))


# The reference CPU's figures (bench/RESULTS.md, quiet 2-core VM), per unit of work:
# - preview, "Gaussian splatting end to end", row "preview, quiet machine" (10 s 480x360 orbit, 240 source
#   frames, 80 kept): frames 1.5 s, SfM 11.2 s, training 30.8 s for 1500 iterations, export 0.6 s; TensoRF,
#   row "video at the training resolution on CPU, quiet machine": 188.1 s for 2000 iterations, export and the
#   rest 72.2 s.
# - standard, "Session 5: standard within reach of a CPU", the ``vidscene run`` row (10 s 1080x1920 portrait,
#   240 source frames, 150 kept): frames 4.4 s, SfM 22.9 s, training 612 s for 7000 iterations, 15.3 s of
#   evaluation and outputs.
# - preview's gaussian figures are the mean of two clips measured on a quiet 2-core VM with today's pipeline (robust
#   loss, budget ramp, quality figure): `bench/cost.py --clip orbit --clip portrait10 --preset preview`, the 10 s
#   480x360 orbit (frames 1.7 s, SfM 22.5 s, training 75.1 s, export 3.3 s) and the 10 s 1080x1920 portrait
#   (3.5, 18.9, 55.4, 2.4 s), both 240 source frames and 80 kept (bench/RESULTS.md, "Cost: session 8"). The older
#   figures above (30.8 s of training) promised 41.5 s where both clips took 80-103 s. Frames and SfM are the
#   same work in TensoRF mode, so its figures use these too.
_PREVIEW_GAUSSIAN = ReferenceCost((1.7 + 3.5) / 2 / 240, (22.5 + 18.9) / 2 / 80, (75.1 + 55.4) / 2 / 1500,
                                  (3.3 + 2.4) / 2)
_PREVIEW_TENSORF = ReferenceCost(_PREVIEW_GAUSSIAN.seconds_per_source_frame, _PREVIEW_GAUSSIAN.seconds_per_kept_frame,
                                 188.1 / 2000, 72.2)  # frames and SfM are the same work in either mode
# - standard is the mean of two clips measured on a quiet 2-core VM in session 9 with standard's 100k budget
#   (`bench/cost.py --clip portrait10 --clip orbit --preset standard`, bench/RESULTS.md "Cost: session 9"): the
#   generated texture-rich 10 s 1080x1920 portrait (frames 4.8 s, SfM 33.5 s, training 565.5 s, export 9.6 s)
#   and the 10 s 480x360 orbit (3.7, 29.9, 740.0, 8.0 s; its 4:3 frames have a third more pixels), both 240
#   source frames and 150 kept: 613 and 782 s end to end, within 13% of the 697 s promised. The 300k budget
#   before it took 1541 s on the portrait. Kept after session 10's pixel budget (``gaussian/pixel_budget.py``),
#   which made the orbit's step cheaper: on a faster VM the portrait took 582 s and the orbit 664 s (737.8 s
#   without the budget), within 17% of the promise ("Cost: session 10").
_STANDARD_GAUSSIAN = ReferenceCost((4.8 + 3.7) / 2 / 240, (33.5 + 29.9) / 2 / 150, (565.5 + 740.0) / 2 / 7000,
                                   (9.6 + 8.0) / 2)

_PRESETS = (
    Preset("preview", "Quick preview", "small frames and a short schedule: minutes on a CPU",
           MappingProxyType({"gaussian": 1500, "tensorf": 2000}), save_fractions=(0.5,),
           outputs=("spz", "splat_cloud", "video"), frames=80,
           costs=MappingProxyType({"gaussian": _PREVIEW_GAUSSIAN, "tensorf": _PREVIEW_TENSORF})),
    Preset("standard", "Standard",
           "more frames at a higher resolution: minutes on a CPU for gaussian splatting, a GPU for TensoRF",
           MappingProxyType({"gaussian": 7000, "tensorf": 15000}), save_fractions=(2 / 7,),
           outputs=("spz", "splat_cloud", "point_cloud", "video"), frames=150,
           costs=MappingProxyType({"gaussian": _STANDARD_GAUSSIAN})),
    Preset("quality", "High quality", "the papers' full schedules at up to 1280 px; needs a GPU",
           MappingProxyType({"gaussian": 30000, "tensorf": 30000}), save_fractions=(7 / 30, 0.5),
           outputs=("spz", "splat_cloud", "point_cloud", "video", "model"), frames=250),
)
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _PRESETS})
DEFAULT_PRESET = "preview"


def describe(*, default_preset: str = DEFAULT_PRESET, max_upload_bytes: int | None = None,
             upload_chunk_bytes: int | None = None) -> dict[str, Any]:
    """The whole catalogue as JSON-ready data (the body of ``GET /user/scene/options``)."""
    limits: dict[str, Any] = {
        "max_total_iterations": MAX_TOTAL_ITERATIONS,
        "max_scene_name": MAX_SCENE_NAME,
        "default_scene_name": DEFAULT_SCENE_NAME,
        "chunk_bytes": CHUNK_BYTES,
        "username_pattern": USERNAME_PATTERN,
        "username_min": USERNAME_MIN,
        "username_max": USERNAME_MAX,
        "password_min": PASSWORD_MIN,
        "password_max": PASSWORD_MAX,
    }
    if max_upload_bytes is not None:
        limits["max_upload_bytes"] = max_upload_bytes
    if upload_chunk_bytes is not None:
        limits["upload_chunk_bytes"] = upload_chunk_bytes  # the size of each PATCH of a resumable upload
    return {
        "training_modes": [
            {"name": m.name, "label": m.label, "description": m.description, "outputs": list(m.outputs),
             "default_outputs": list(m.default_outputs)}
            for m in _TRAINING_MODES
        ],
        "output_types": [
            {"name": o.name, "label": o.label, "description": o.description, "media_type": o.media_type,
             "extensions": dict(o.extensions), "public": o.public}
            for o in _OUTPUT_TYPES
        ],
        "presets": [
            {"name": p.name, "label": p.label, "description": p.description, "iterations": dict(p.iterations),
             "save_iterations": {mode: list(p.save_iterations(mode)) for mode in p.iterations},
             "outputs": {mode: list(p.outputs_for(mode)) for mode in p.iterations}}
            for p in _PRESETS
        ],
        "default_preset": default_preset,
        "limits": limits,
    }
