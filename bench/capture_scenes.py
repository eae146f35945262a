"""The captures ``bench/capture.py`` runs the pipeline on: a walk-around of the synthetic textured room, filmed
once clean and once the way people really film (people walking through, auto-exposure, blur, noise), and
clean ground-truth views off the capture path.

Everything is in the ground-truth world frame of ``tests.support.synthetic`` (floor ``y = 0``, ``-y`` up,
a 12 x 12 x 4 room; one unit is taken as a metre). Deterministic for a given seed.

- **Path**: ``orbit_cameras`` around the room centre (radius 3.2, camera 1.6 above the floor, looking at the
  boxes), ``ORBIT_DEGREES`` over the clip: a person walking half way round a table with a phone.
- **People** (``WALKERS``): textured boxes 1.7 tall, 0.5 wide and 0.3 deep, walking in straight lines on the
  floor at about 1.3 m/s: one between the camera and the boxes, one behind the boxes (hidden by them at
  times), one crossing on the side. They are ray-cast together with the room, so each pixel shows whichever
  surface is nearest: they occlude the room and the room's boxes occlude them.
- **Camera**: auto-exposure gain drifting smoothly by up to +-25% and a slower white-balance drift (red and
  blue gains +-8% in opposite phase), a horizontal motion blur on 10% of the frames (seeded pick), and sensor
  noise (Gaussian, its variance growing with the signal, about 2 to 4 grey levels).
- **Novel views**: ``NOVEL_VIEWS`` cameras 10-20 degrees off the path (seen from the boxes), some above it and
  looking down more, some below it, some nearer or farther, rendered clean with the true cameras.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tests.support.synthetic import LOOK_AT, QuadScene, SyntheticScene, look_at_rotation, orbit_cameras
from tests.support.videos import encode_frames, motion_blur
from vidscene.pipeline.cameras import Camera

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]

ORBIT_DEGREES = 120.0
ORBIT_START = -60.0  # degrees: the path runs from (-2.8, -1.6) to (2.8, -1.6) through (0, -3.2) in (x, z)
ORBIT_RADIUS = 3.2
CAMERA_HEIGHT = 1.6
HFOV_DEGREES = 60.0
PERSON_HEIGHT = 1.7
PERSON_HALF_WIDTH = 0.22
PERSON_HALF_DEPTH = 0.13
GAIN_SWING = 0.25  # auto exposure: gain 1 +- this
WB_SWING = 0.08  # white balance: red and blue gains 1 +- this, in opposite phase
BLUR_SHARE = 0.1
NOISE_FLOOR = 1.5  # grey levels; the variance grows by NOISE_SHOT per grey level of signal
NOISE_SHOT = 0.05
NOVEL_VIEWS = 8
# ``encode_frames``'s libx264 settings without the macroblock tree: with it, this x264 build wrote a different stream
# on each run for the same noisy frames (decoded frames 2-4 grey levels apart on average); without it, the same.
X264_OPTIONS = {"crf": "16", "preset": "veryfast", "x264-params": "mbtree=0"}


@dataclass(frozen=True)
class Walker:
    """A person walking in a straight line along the x or z axis between ``t0`` and ``t1`` (seconds), standing
    at the ends before and after."""

    start: tuple[float, float]  # (x, z) on the floor
    end: tuple[float, float]
    t0: float
    t1: float

    def position(self, t: float) -> tuple[float, float]:
        s = min(1.0, max(0.0, (t - self.t0) / (self.t1 - self.t0)))
        return (self.start[0] + s * (self.end[0] - self.start[0]), self.start[1] + s * (self.end[1] - self.start[1]))

    def swept_box(self) -> tuple[F64, F64]:
        """(low, high) corners of the volume the walker's box swept: exact, since the path is axis-aligned."""
        lo = np.array([min(self.start[0], self.end[0]) - PERSON_HALF_WIDTH, -PERSON_HEIGHT,
                       min(self.start[1], self.end[1]) - PERSON_HALF_DEPTH])
        hi = np.array([max(self.start[0], self.end[0]) + PERSON_HALF_WIDTH, 0.0,
                       max(self.start[1], self.end[1]) + PERSON_HALF_DEPTH])
        return lo, hi


# Clear of the room's boxes (which span x -1.35..1.15, z -0.95..1.3) and of the camera path (radius 3.2).
WALKERS = (Walker(start=(-3.5, -1.25), end=(1.0, -1.25), t0=0.0, t1=5.0),  # between the camera and the boxes
           Walker(start=(-3.0, 2.3), end=(3.0, 2.3), t0=0.0, t1=5.0),  # behind the boxes
           Walker(start=(-1.9, 3.5), end=(-1.9, -1.0), t0=0.0, t1=5.0))  # on the left, towards the camera


@dataclass(frozen=True)
class Capture:
    """One encoded capture and what is true about it."""

    name: str
    video: Path
    cameras: list[Camera]  # true camera of every video frame, ``image_name`` the zero-padded index
    occluded_share: list[float]  # per frame: share of pixels showing a person (0 for the clean capture)
    blurred: list[int]  # indices of the motion-blurred frames


class Crowd:
    """The room with the walkers where they are at time ``t``; ``at(t)`` is a ``QuadScene`` to render."""

    def __init__(self, room: QuadScene, walkers: tuple[Walker, ...], seed: int) -> None:
        self.room = room
        self.walkers = walkers
        rng = np.random.default_rng(seed + 101)
        first = len(room.textures)
        room.textures.extend(_clothes_texture(rng) for _ in range(2 * len(walkers)))
        # Each walker: one texture for the top and front/back, another for the sides (``add_box``'s order).
        self.texture_ids = [[first + 2 * i, first + 2 * i + 1, first + 2 * i + 1, first + 2 * i, first + 2 * i]
                            for i in range(len(walkers))]

    def at(self, t: float) -> QuadScene:
        scene = QuadScene()
        scene.textures = self.room.textures
        scene.quads = list(self.room.quads)
        for walker, ids in zip(self.walkers, self.texture_ids, strict=True):
            x, z = walker.position(t)
            scene.add_box(_handing_out(ids), x, z, PERSON_HALF_WIDTH, PERSON_HEIGHT, PERSON_HALF_DEPTH)
        return scene


def _handing_out(ids: list[int]) -> Callable[[int], int]:
    """``QuadScene.add_box``'s texture maker, giving out the walker's texture ids in turn (it asks five times)."""
    pending = iter(ids)
    return lambda _size: next(pending)


def _clothes_texture(rng: np.random.Generator, size: int = 64) -> F32:
    """A plain colour with soft blotches and a few stripes: clothes have some texture, less than the room."""
    base = rng.uniform(0.15, 0.85, 3)
    blotches = np.asarray(Image.fromarray((rng.uniform(0, 255, (6, 6, 3))).astype(np.uint8))
                          .resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255.0
    stripes = (np.sin(np.linspace(0, rng.uniform(6, 20), size))[:, None, None] > 0.6) * rng.uniform(-0.2, 0.2, 3)
    img = base[None, None, :] * (0.75 + 0.5 * blotches) + stripes
    return np.asarray(np.clip(img, 0.0, 1.0), dtype=np.float32)


def capture_cameras(n_frames: int, width: int, height: int) -> list[Camera]:
    return orbit_cameras(n_frames, width, height, orbit_degrees=ORBIT_DEGREES, radius=ORBIT_RADIUS,
                         camera_height=CAMERA_HEIGHT, hfov_degrees=HFOV_DEGREES, start_degrees=ORBIT_START)


def exposure(t: float, duration: float) -> F32:
    """Per-channel gain at time ``t``: auto exposure (+-``GAIN_SWING``, a little over one cycle per clip) times a
    slower white-balance drift."""
    s = t / max(duration, 1e-6)
    gain = 1.0 + GAIN_SWING * math.sin(2.0 * math.pi * 1.2 * s + 0.4)
    wb = WB_SWING * math.sin(2.0 * math.pi * 0.6 * s + 1.3)
    return np.array([gain * (1.0 + wb), gain, gain * (1.0 - wb)], dtype=np.float32)


def disturb(img: U8, t: float, duration: float, blurred: bool, rng: np.random.Generator) -> U8:
    """What the phone's camera does to a frame: blur (if ``blurred``), exposure and white balance, noise."""
    width = img.shape[1]
    if blurred:
        img = motion_blur(img, max(3, round(width / 40)))
    f = img.astype(np.float32) * exposure(t, duration)[None, None, :]
    f = np.clip(f, 0.0, 255.0)
    sigma = np.sqrt(NOISE_FLOOR**2 + NOISE_SHOT * f)
    f += rng.normal(0.0, 1.0, f.shape).astype(np.float32) * sigma
    return np.asarray(np.clip(f + 0.5, 0, 255), dtype=np.uint8)


def occluded_share(crowd_scene: QuadScene, room: QuadScene, camera: Camera) -> float:
    """Share of pixels where a walker is the nearest surface (depths compared at half resolution)."""
    small = camera.scaled(max(1, camera.width // 2), max(1, camera.height // 2))
    with_people, without = crowd_scene.depth(small), room.depth(small)
    return float(np.mean(with_people < without - 1e-4))


def make_captures(root: Path, width: int, height: int, n_frames: int, fps: int, seed: int = 0) -> list[Capture]:
    """The clean and the disturbed capture as H.264 MP4s under ``root`` (kept and reused when present: the
    same files, byte for byte, as a new generation with the same arguments would write)."""
    cams = capture_cameras(n_frames, width, height)
    out = []
    room = SyntheticScene(seed)
    crowd = Crowd(room, WALKERS, seed)
    blurred = sorted(np.random.default_rng(seed + 5).choice(n_frames, round(BLUR_SHARE * n_frames),
                                                            replace=False).tolist())
    for name in ("clean", "disturbed"):
        video = root / f"{name}_{width}x{height}_{n_frames}_{fps}_s{seed}_v2.mp4"
        meta = video.with_suffix(".json")
        if not (video.is_file() and meta.is_file()):
            shares = _encode_capture(video, name, room, crowd, cams, blurred, fps, seed)
            meta.write_text(json.dumps({"occluded_share": shares}))
        shares = json.loads(meta.read_text())["occluded_share"]
        out.append(Capture(name=name, video=video, cameras=cams, occluded_share=shares,
                           blurred=blurred if name == "disturbed" else []))
    return out


def _encode_capture(video: Path, name: str, room: QuadScene, crowd: Crowd, cams: list[Camera], blurred: list[int],
                    fps: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed + 17)
    duration = len(cams) / fps
    shares = [0.0] * len(cams)
    blur_set = set(blurred)

    def frame(i: int) -> U8:
        if name == "clean":
            return room.render(cams[i])
        t = i / fps
        scene = crowd.at(t)
        shares[i] = occluded_share(scene, room, cams[i])
        return disturb(scene.render(cams[i]), t, duration, i in blur_set, rng)

    encode_frames(video, frame, len(cams), cams[0].width, cams[0].height, fps=fps, codec="libx264",
            codec_options=X264_OPTIONS)
    return shares


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


def swept_boxes() -> list[tuple[F64, F64]]:
    """The volumes the walkers swept (true world frame), each as (low, high) corners."""
    return [w.swept_box() for w in WALKERS]


def describe() -> dict[str, object]:
    """The disturbance's settings, for the JSON report."""
    return {"walkers": [asdict(w) for w in WALKERS], "person_size": [2 * PERSON_HALF_WIDTH, PERSON_HEIGHT,
                                                                       2 * PERSON_HALF_DEPTH],
            "gain_swing": GAIN_SWING, "wb_swing": WB_SWING, "blur_share": BLUR_SHARE,
            "noise": [NOISE_FLOOR, NOISE_SHOT], "orbit_degrees": ORBIT_DEGREES}

