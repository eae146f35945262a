"""The captures ``bench/capture.py`` runs the pipeline on: a walk-around of the synthetic textured room, filmed
once clean and once the way people really film (people walking through, auto-exposure, blur, noise), encoded
as H.264 MP4s; and clean ground-truth views off the capture path.

The walkers, the disturbances and the swept-volume measure live in ``tests.support.crowd`` (the default test
run trains on the same capture at a tiny size); this module adds the video files and the novel views.

- **Novel views**: ``NOVEL_VIEWS`` cameras 10-20 degrees off the path (seen from the boxes), some above it and
  looking down more, some below it, some nearer or farther, rendered clean with the true cameras.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tests.support.crowd import (
    BLUR_SHARE,
    CAMERA_HEIGHT,
    GAIN_SWING,
    NOISE_FLOOR,
    NOISE_SHOT,
    ORBIT_DEGREES,
    ORBIT_RADIUS,
    ORBIT_START,
    PERSON_HALF_DEPTH,
    PERSON_HALF_WIDTH,
    PERSON_HEIGHT,
    WALKERS,
    WB_SWING,
    Filming,
    capture_cameras,
)
from tests.support.synthetic import LOOK_AT, SyntheticScene, look_at_rotation
from tests.support.videos import encode_frames
from vidscene.pipeline.cameras import Camera

F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]

NOVEL_VIEWS = 8
# ``encode_frames``'s libx264 settings without the macroblock tree: with it, this x264 build wrote a different stream
# on each run for the same noisy frames (decoded frames 2-4 grey levels apart on average); without it, the same.
X264_OPTIONS = {"crf": "16", "preset": "veryfast", "x264-params": "mbtree=0"}


@dataclass(frozen=True)
class Capture:
    """One encoded capture and what is true about it."""

    name: str
    video: Path
    cameras: list[Camera]  # true camera of every video frame, ``image_name`` the zero-padded index
    occluded_share: list[float]  # per frame: share of pixels showing a person (0 for the clean capture)
    blurred: list[int]  # indices of the motion-blurred frames


def make_captures(root: Path, width: int, height: int, n_frames: int, fps: int, seed: int = 0) -> list[Capture]:
    """The clean and the disturbed capture as H.264 MP4s under ``root`` (kept and reused when present: the
    same files, byte for byte, as a new generation with the same arguments would write)."""
    cams = capture_cameras(n_frames, width, height)
    out = []
    for name in ("clean", "disturbed"):
        video = root / f"{name}_{width}x{height}_{n_frames}_{fps}_s{seed}_v2.mp4"
        meta = video.with_suffix(".json")
        filming = Filming(name, cams, fps, seed)
        if not (video.is_file() and meta.is_file()):
            encode_frames(video, filming.frame, len(cams), width, height, fps=fps, codec="libx264",
                          codec_options=X264_OPTIONS)
            meta.write_text(json.dumps({"occluded_share": filming.shares}))
        shares = json.loads(meta.read_text())["occluded_share"]
        out.append(Capture(name=name, video=video, cameras=cams, occluded_share=shares, blurred=filming.blurred))
    return out


@dataclass(frozen=True)
class NovelView:
    camera: Camera  # true camera at the capture's size; ``scaled`` to the size measured at
    off_path_deg: float  # angle, seen from the look-at point, to the nearest capture camera
    kind: str


def novel_views(path: list[Camera]) -> list[NovelView]:
    """``NOVEL_VIEWS`` cameras spread along the path, moved off it: above and looking down at the boxes, below
    and pitched like the path (so they see little the capture did not), nearer or farther."""
    ref = path[0]
    moves = [("above", 1.0, 0.0), ("below", -0.9, 0.0), ("above, farther", 1.5, 0.8), ("below, nearer", -0.8, -0.6)]
    out = []
    for k in range(NOVEL_VIEWS):
        kind, dh, dr = moves[k % len(moves)]
        a = math.radians(ORBIT_START + ORBIT_DEGREES * (k + 0.5) / NOVEL_VIEWS)
        r = ORBIT_RADIUS + dr
        centre = np.array([r * math.sin(a), -(CAMERA_HEIGHT + dh), -r * math.cos(a)])
        if dh > 0:
            target = LOOK_AT
        else:  # keep the path's pitch: a lower camera looking up would see walls the capture never did
            pitch = math.atan2(CAMERA_HEIGHT + LOOK_AT[1], ORBIT_RADIUS)
            target = np.array([0.0, -(CAMERA_HEIGHT + dh) + r * math.tan(pitch), 0.0])
        R = look_at_rotation(centre, target)
        cam = Camera(width=ref.width, height=ref.height, fx=ref.fx, fy=ref.fy, cx=ref.cx, cy=ref.cy, R=R,
                     t=-R @ centre, image_name=f"novel{k}")
        out.append(NovelView(camera=cam, off_path_deg=_off_path_deg(centre, path), kind=kind))
    return out


def _off_path_deg(centre: F64, path: list[Camera]) -> float:
    v = centre - LOOK_AT
    v = v / np.linalg.norm(v)
    best = 180.0
    for cam in path:
        w = cam.center - LOOK_AT
        best = min(best, math.degrees(math.acos(min(1.0, float(v @ w / np.linalg.norm(w))))))
    return best


def render_views(views: list[NovelView], width: int, height: int, seed: int = 0) -> list[U8]:
    room = SyntheticScene(seed)
    return [room.render(v.camera.scaled(width, height)) for v in views]


def describe() -> dict[str, object]:
    """The disturbance's settings, for the JSON report."""
    return {"walkers": [asdict(w) for w in WALKERS], "person_size": [2 * PERSON_HALF_WIDTH, PERSON_HEIGHT,
                                                                       2 * PERSON_HALF_DEPTH],
            "gain_swing": GAIN_SWING, "wb_swing": WB_SWING, "blur_share": BLUR_SHARE,
            "noise": [NOISE_FLOOR, NOISE_SHOT], "orbit_degrees": ORBIT_DEGREES}

