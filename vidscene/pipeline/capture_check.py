"""The capture check: what is wrong with how a video was filmed, in words and on a timeline.

It runs after the frames stage on the frames alone (``check_frames``: blur, darkness, exposure changes, a
still camera, a subject moved in front of one, cuts), after structure from motion on what SfM placed
(``check_placement``: frames lost, a model in pieces, few points, a narrow range of views), and after
training on what the robust loss left out of each frame (``check_training``: moving content). Each run
writes the whole report to ``capture.json`` in the scene's folder; the API serves it and the web app draws
its timeline.

A problem of severity ``error`` means the capture cannot make a scene: the stage raises ``CaptureError``
with that problem's message, so the job fails within seconds of the frames instead of after minutes of SfM.
Warnings let the job go on and tell the person what the result will suffer from, and whether training
longer could help (it never helps what the capture lacks).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vidscene.pipeline import frame_analysis
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.errors import PipelineError
from vidscene.pipeline.export import atomic_write_path

Severity = Literal["warning", "error"]
Verdict = Literal["good", "usable", "refused"]

BLUR_RELATIVE = 0.35  # sharpness under this share of the clip's median: a blurred frame
BLUR_SHARE = 0.1  # warn when at least this share of the frames is blurred
DARK_LEVEL = 35.0  # mean grey level (0-255) under which a frame is dark
DARK_SHARE = 0.2
EXPOSURE_RATIO = 1.4  # brightest / darkest part of the clip (5-frame medians) above this: exposure changed
EXPOSURE_FRAME_DEVIATION = 0.2  # frames this far from the clip's median brightness are listed
STILL_SHARE = 0.8  # share of frames matching the background that makes the camera still
PERSISTENT_MOTION = 0.01  # share of a still camera's view that keeps changing: the subject itself moved
MOVING_FRAME = 0.03  # share of a frame that differs from the background: something moved in it
MOVING_SHARE = 0.05  # warn when this share of the frames had something moving through
# ... as training found it: the share of a frame the robust loss left out. It also leaves out texture not yet
# learned where few views overlap: clean generated captures lost at most 6.5% of a frame to it (4-7 of 80
# frames past 3%), the captures people walked through 8-28% in 33-36 of 80 frames (bench/RESULTS.md, session 10).
# At standard a texture-rich clean clip still lost 8-15.5% of most frames: there the robust loss itself is wrong
# (texture it never learns, masked in every view), and this warning with it; see RESULTS, "Cost: session 10".
LEFT_OUT_FRAME = 0.08
LONGEST_SHOT_SHARE = 0.5  # with cuts, the longest shot must hold this share of the frames to be usable
PLACED_SHARE = 0.95  # fewer frames placed than this share: a warning naming the time ranges lost
MIN_POINTS_PER_FRAME = 3.0
MIN_POINTS = 300
MIN_ARC_DEG = 15.0  # views spanning less than this around the subject: little coverage

NO_TRAINING_FIX = "Training longer cannot fix this; filming again can."


class CaptureError(PipelineError):
    """The capture check found a problem that no scene can be made with; the message says which and where."""

    code = 6


@dataclass(frozen=True)
class Problem:
    code: str
    severity: Severity
    message: str
    frames: list[int] = field(default_factory=list)  # source frame indices (the video's own numbering)


@dataclass(frozen=True)
class FrameEntry:
    index: int  # source frame index in the video
    time_s: float
    sharpness: float  # relative to the clip's median sharpness (1 = typical, under 0.35 = blurred)
    brightness: float  # mean grey level, 0-255
    registered: bool | None  # placed by SfM; None before SfM ran
    moving_fraction: float  # share of the frame that moved against a still background (0 when the camera moved)


@dataclass(frozen=True)
class CaptureReport:
    stage: str  # the last stage that updated it: "frames" or "sfm"
    problems: list[Problem]
    frames: list[FrameEntry]
    coverage: dict[str, Any]

    @property
    def verdict(self) -> Verdict:
        if any(p.severity == "error" for p in self.problems):
            return "refused"
        return "usable" if self.problems else "good"

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "stage": self.stage, "problems": [asdict(p) for p in self.problems],
                "frames": [asdict(f) for f in self.frames], "coverage": self.coverage}

    def write(self, path: Path) -> None:
        with atomic_write_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json()))

    @classmethod
    def read(cls, path: Path) -> CaptureReport | None:
        """The report written at ``path``, or None when there is none yet."""
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(stage=raw["stage"], problems=[Problem(**p) for p in raw["problems"]],
                   frames=[FrameEntry(**f) for f in raw["frames"]], coverage=dict(raw["coverage"]))

    def raise_if_refused(self) -> None:
        """``CaptureError`` with the first error's message, when there is one."""
        errors = self.errors()
        if errors:
            raise CaptureError(errors[0].message)


# ---- after the frames stage --------------------------------------------------------------------------------


def check_frames(paths: Sequence[Path], source_indices: Sequence[int], times_s: Sequence[float], *,
                 unit: str = "s") -> CaptureReport:
    """The report from the kept frames alone (``paths`` in time order, with their source indices and times).

    ``unit`` names what ``times_s`` counts: seconds of a video, or ``"photo"`` (a photo archive's order)."""
    readings, signatures = frame_analysis.read_frames(paths)
    sharp = np.array([r.sharpness for r in readings], dtype=np.float64)
    relative = sharp / max(float(np.median(sharp)), 1e-9) if len(sharp) else sharp
    brightness = np.array([r.brightness for r in readings], dtype=np.float64)
    still = frame_analysis.still_camera(signatures)
    still_camera = still.still_share() >= STILL_SHARE
    moving = still.moving_fraction if still_camera else [0.0] * len(readings)
    frames = [FrameEntry(index=int(i), time_s=round(float(t), 3), sharpness=round(float(s), 3),
                         brightness=round(float(b), 1), registered=None, moving_fraction=round(float(m), 4))
              for i, t, s, b, m in zip(source_indices, times_s, relative, brightness, moving, strict=True)]
    problems = [p for p in (_still_camera(frames, still), _cuts(frames, signatures, unit), _blur(frames, unit),
                            _dark(frames, unit), _exposure(frames, unit)) if p is not None]
    coverage = {"frames": len(frames), "duration_s": round(float(times_s[-1] - times_s[0]), 3) if frames else 0.0,
                "still_share": round(still.still_share(), 3), "time_unit": unit}
    return CaptureReport(stage="frames", problems=problems, frames=frames, coverage=coverage)


def _times(frames: Sequence[FrameEntry], unit: str = "s") -> str:
    """Where in the capture the frames are, e.g. "0.0-1.2 s and 4.5 s" (or "photos 3-7 and 12")."""
    if not frames:
        return ""
    spans: list[tuple[float, float]] = []
    step = _typical_step(frames)
    for f in frames:
        if spans and f.time_s - spans[-1][1] <= 1.5 * step:
            spans[-1] = (spans[-1][0], f.time_s)
        else:
            spans.append((f.time_s, f.time_s))
    parts = [_span(a, b, unit) for a, b in spans[:4]]
    more = f" and {len(spans) - 4} more" if len(spans) > 4 else ""
    joined = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return ("photos " if unit == "photo" else "") + joined + more


def _span(a: float, b: float, unit: str) -> str:
    if unit == "photo":  # photo order, counted from 1
        return f"{a + 1:.0f}" if b - a < 0.5 else f"{a + 1:.0f}-{b + 1:.0f}"
    return f"{a:.1f} s" if b - a < 0.05 else f"{a:.1f}-{b:.1f} s"


def _unit(report: CaptureReport) -> str:
    return str(report.coverage.get("time_unit", "s"))


def _typical_step(frames: Sequence[FrameEntry]) -> float:
    times = [f.time_s for f in frames]
    steps = np.diff(times) if len(times) > 1 else np.array([0.1])
    return float(np.median(steps)) if len(steps) else 0.1


def _still_camera(frames: list[FrameEntry], still: frame_analysis.StillCamera) -> Problem | None:
    if still.still_share() < STILL_SHARE:
        return None
    moved = [f for f in frames if f.moving_fraction >= MOVING_FRAME]
    if still.persistent_motion >= PERSISTENT_MOTION:
        return Problem("object_moved", "error",
                       "The camera stood still while the subject moved in front of it, so the subject and the "
                       "room behind it cannot both stay in place in 3D. Put the subject down and walk slowly "
                       "around it while filming. " + NO_TRAINING_FIX, [f.index for f in moved])
    return Problem("static_camera", "error",
                   "The camera never moved (a tripod, a fixed or surveillance camera): a 3D scene needs views "
                   "from many positions. Walk slowly around the subject while filming. " + NO_TRAINING_FIX,
                   [f.index for f in frames])


def _cuts(frames: list[FrameEntry], signatures: frame_analysis.F32, unit: str) -> Problem | None:
    cut_at = frame_analysis.cuts(signatures)
    if not cut_at:
        return None
    ranges = frame_analysis.shots(len(frames), cut_at)
    longest = max(ranges, key=len)
    at = ", ".join(_times([frames[i]], unit) for i in cut_at[:6]) + (" ..." if len(cut_at) > 6 else "")
    usable = len(longest) >= LONGEST_SHOT_SHARE * len(frames)
    tail = (f"Only the longest shot ({_span(frames[longest[0]].time_s, frames[longest[-1]].time_s, unit)}) can be "
            "used." if usable else "No shot is long enough for a scene. " + NO_TRAINING_FIX)
    return Problem("cuts", "warning" if usable else "error",
                   f"The video is edited: it cuts to another shot {len(cut_at)} time{'s' if len(cut_at) > 1 else ''}"
                   f" (at {at}), and shots that do not connect cannot be placed in one scene. Upload one "
                   f"continuous take. {tail}", [frames[i].index for i in cut_at])


def _blur(frames: list[FrameEntry], unit: str) -> Problem | None:
    blurred = [f for f in frames if f.sharpness < BLUR_RELATIVE]
    if len(blurred) < max(1, BLUR_SHARE * len(frames)):
        return None
    return Problem("blur", "warning",
                   f"{len(blurred)} of {len(frames)} frames are blurred (at {_times(blurred, unit)}): move more slowly "
                   "or hold the phone steadier there. Blurred views make the scene soft; training longer cannot "
                   "sharpen them.", [f.index for f in blurred])


def _dark(frames: list[FrameEntry], unit: str) -> Problem | None:
    dark = [f for f in frames if f.brightness < DARK_LEVEL]
    if len(dark) < max(1, DARK_SHARE * len(frames)):
        return None
    return Problem("dark", "warning",
                   f"{len(dark)} of {len(frames)} frames are dark (at {_times(dark, unit)}): dark frames have few "
                   "details to place and show noise. Film in even, brighter light.", [f.index for f in dark])


def _exposure(frames: list[FrameEntry], unit: str) -> Problem | None:
    if len(frames) < 5:
        return None
    levels = np.array([f.brightness for f in frames])
    smooth = np.array([np.median(levels[max(0, i - 2):i + 3]) for i in range(len(levels))])
    if smooth.min() <= 0 or smooth.max() / max(smooth.min(), 1.0) < EXPOSURE_RATIO:
        return None
    median = float(np.median(levels))
    off = [f for f, level in zip(frames, smooth, strict=True)
           if abs(level - median) > EXPOSURE_FRAME_DEVIATION * median]
    return Problem("exposure_changes", "warning",
                   f"The exposure changes during the video (brightness {smooth.min():.0f} to {smooth.max():.0f} of "
                   f"255, at {_times(off, unit)}): the phone re-exposed, for example when turning towards a window. "
                   "Colours may differ between views. Lock the exposure (press and hold on the subject) and "
                   "keep the light even.", [f.index for f in off])


def explain_failure(message: str, report: CaptureReport | None) -> str:
    """SfM's failure ``message`` followed by what the frames already showed could have caused it."""
    causes = [p for p in (report.problems if report else []) if p.code in _SFM_CAUSES]
    if not causes:
        return message
    return f"{message} The capture check found why: {causes[0].message}"


_SFM_CAUSES = ("cuts", "blur", "dark", "exposure_changes")


def placement_failed(report: CaptureReport, message: str) -> CaptureReport:
    """``report`` once SfM refused the frames with ``message``: the capture is refused for that reason."""
    problems = [p for p in report.problems if p.code not in _PLACEMENT_CODES]
    problems.append(Problem("partial_registration", "error", f"{message} {NO_TRAINING_FIX}"))
    return CaptureReport(stage="sfm", problems=problems, frames=report.frames, coverage=report.coverage)


# ---- after structure from motion ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """What SfM made of the frames: enough for the report even when it failed."""

    placed: frozenset[str]  # frame names in the model that was kept
    models: int  # how many separate models SfM made
    points: int
    arc_deg: float | None  # views' spread around the subject; None when nothing was placed


def placement_of(scene: SceneData) -> Placement:
    """The placement of a finished SfM stage."""
    return Placement(placed=frozenset(c.image_name for c in scene.cameras), models=int(scene.extras.get("models", 1)),
                     points=len(scene.points), arc_deg=viewing_arc_deg(scene))


def viewing_arc_deg(scene: SceneData) -> float | None:
    """The widest angle between two camera positions seen from the subject (the points' median)."""
    if not scene.cameras or len(scene.points) == 0:
        return None
    centre = np.median(np.asarray(scene.points, dtype=np.float64), axis=0)
    dirs = np.array([np.asarray(c.center, dtype=np.float64) - centre for c in scene.cameras])
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    cos = np.clip(dirs @ dirs.T, -1.0, 1.0)
    return float(math.degrees(math.acos(float(cos.min()))))


def check_placement(report: CaptureReport, names: Sequence[str], placement: Placement) -> CaptureReport:
    """``report`` (from ``check_frames``; ``names`` are the frames' file names in the same order) with what
    SfM placed: the frames' ``registered`` flags and the placement problems."""
    frames = [replace(f, registered=name in placement.placed) for f, name in zip(report.frames, names, strict=True)]
    problems = [p for p in report.problems if p.code not in _PLACEMENT_CODES]
    problems += [p for p in (_partial(frames, placement, _unit(report)), _few_points(placement), _coverage(placement))
                 if p is not None]
    coverage = {**report.coverage, "registered": len(placement.placed), "models": placement.models,
                "points": placement.points,
                "arc_deg": None if placement.arc_deg is None else round(placement.arc_deg, 1)}
    return CaptureReport(stage="sfm", problems=problems, frames=frames, coverage=coverage)


_PLACEMENT_CODES = ("partial_registration", "few_points", "little_coverage")


# ---- after training ----------------------------------------------------------------------------------------


def check_training(report: CaptureReport, names: Sequence[str], left_out: Mapping[str, float]) -> CaptureReport:
    """``report`` with what training left out of each frame as moving content (``names`` as in
    ``check_placement``; ``left_out``: image name -> share of the frame)."""
    frames = [replace(f, moving_fraction=round(max(f.moving_fraction, float(left_out.get(name, 0.0))), 4))
              for f, name in zip(report.frames, names, strict=True)]
    problems = [p for p in report.problems if p.code != "moving_content"]
    moving = [f for f, name in zip(frames, names, strict=True) if left_out.get(name, 0.0) >= LEFT_OUT_FRAME]
    if len(moving) >= max(1, MOVING_SHARE * len(frames)):
        problems.append(Problem(
            "moving_content", "warning",
            f"Something moved through the shot in {len(moving)} of {len(frames)} frames "
            f"(at {_times(moving, _unit(report))}): "
            "it was left out of the scene, which shows what the other views saw behind it. A spot that was "
            "always covered may stay blurred. Keep people and pets out of the shot while filming.",
            [f.index for f in moving]))
    return CaptureReport(stage="train", problems=problems, frames=frames, coverage=report.coverage)


def _partial(frames: list[FrameEntry], placement: Placement, unit: str) -> Problem | None:
    lost = [f for f in frames if not f.registered]
    if len(frames) - len(lost) >= PLACED_SHARE * len(frames) and placement.models <= 1:
        return None
    pieces = (f" SfM made {placement.models} separate pieces of the scene and kept the largest."
              if placement.models > 1 else "")
    return Problem("partial_registration", "warning",
                   f"Only {len(frames) - len(lost)} of {len(frames)} frames could be placed in 3D; the views at "
                   f"{_times(lost, unit)} are missing from the scene.{pieces} Parts seen only there will be missing or "
                   "smeared: move slowly and keep the subject in view. " + NO_TRAINING_FIX,
                   [f.index for f in lost])


def _few_points(placement: Placement) -> Problem | None:
    if placement.points >= max(MIN_POINTS, MIN_POINTS_PER_FRAME * len(placement.placed)):
        return None
    return Problem("few_points", "warning",
                   f"Only {placement.points} 3D points were found: the scene has little texture or light, so its "
                   "shape is poorly known and views away from the capture path may show haze. " + NO_TRAINING_FIX)


def _coverage(placement: Placement) -> Problem | None:
    if placement.arc_deg is None or placement.arc_deg >= MIN_ARC_DEG:
        return None
    return Problem("little_coverage", "warning",
                   f"The subject was seen from a narrow range of directions ({placement.arc_deg:.0f} degrees): it "
                   "will look right near the capture path and smeared from elsewhere. Walk further around it. "
                   + NO_TRAINING_FIX)
