"""A capture filmed the way people really film: a walk-around of the synthetic textured room with people walking
through it, auto-exposure and white-balance drift, motion blur and sensor noise; and how much of the people a
trained model kept (the opacity left in the volume they walked through).

``bench/capture.py`` films it at benchmark size and runs the whole pipeline on it;
``tests/pipeline/test_disturbed_capture.py`` films it at a tiny size and trains on it at the true poses. Both
read the same walkers, the same disturbances and the same measure from here, so a figure in the test and one
in bench/RESULTS.md mean the same thing.

Everything is in the ground-truth world frame of ``tests.support.synthetic`` (floor ``y = 0``, ``-y`` up,
a 12 x 12 x 4 room; one unit is taken as a metre). Deterministic for a given seed.

- **Path**: ``orbit_cameras`` around the room centre (radius 3.2, camera 1.6 above the floor, looking at the
  boxes), ``ORBIT_DEGREES`` over the clip: a person walking half way round a table with a phone.
- **People** (``WALKERS``): textured boxes 1.7 tall, 0.44 wide and 0.26 deep, walking in straight lines on
  the floor over ``WALK_SECONDS``: one between the camera and the boxes, one behind the boxes (hidden by them
  at times), one crossing on the side. They are ray-cast together with the room, so each pixel shows whichever
  surface is nearest: they occlude the room and the room's boxes occlude them.
- **Camera**: auto-exposure gain drifting smoothly by up to +-25% and a slower white-balance drift (red and
  blue gains +-8% in opposite phase), a horizontal motion blur on 10% of the frames (seeded pick), and sensor
  noise (Gaussian, its variance growing with the signal, about 2 to 4 grey levels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tests.support.synthetic import QuadScene, SyntheticScene, orbit_cameras
from tests.support.videos import motion_blur
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.poses import Similarity

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]
CaptureName = Literal["clean", "disturbed"]

ORBIT_DEGREES = 120.0
ORBIT_START = -60.0  # degrees: the path runs from (-2.8, -1.6) to (2.8, -1.6) through (0, -3.2) in (x, z)
ORBIT_RADIUS = 3.2
CAMERA_HEIGHT = 1.6
HFOV_DEGREES = 60.0
WALK_SECONDS = 5.0  # the walkers' paths take the whole 5 s clip; a capture of other length scales its clock
PERSON_HEIGHT = 1.7
PERSON_HALF_WIDTH = 0.22
PERSON_HALF_DEPTH = 0.13
GAIN_SWING = 0.25  # auto exposure: gain 1 +- this
WB_SWING = 0.08  # white balance: red and blue gains 1 +- this, in opposite phase
BLUR_SHARE = 0.1
NOISE_FLOOR = 1.5  # grey levels; the variance grows by NOISE_SHOT per grey level of signal
NOISE_SHOT = 0.05
# The swept volume starts this far above the floor (metres): the clean model's floor splats behind the boxes
# (seen at grazing angles) reach 0.1-0.3 m up, and would otherwise dominate the clean figure.
FLOOR_MARGIN = 0.3


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
WALKERS = (Walker(start=(-3.5, -1.25), end=(1.0, -1.25), t0=0.0, t1=WALK_SECONDS),  # between camera and boxes
           Walker(start=(-3.0, 2.3), end=(3.0, 2.3), t0=0.0, t1=WALK_SECONDS),  # behind the boxes
           Walker(start=(-1.9, 3.5), end=(-1.9, -1.0), t0=0.0, t1=WALK_SECONDS))  # on the left, towards the camera


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


def blurred_frames(n_frames: int, seed: int) -> list[int]:
    """The seeded pick of frames the disturbed capture blurs (``BLUR_SHARE`` of them)."""
    pick = np.random.default_rng(seed + 5).choice(n_frames, round(BLUR_SHARE * n_frames), replace=False)
    return sorted(int(i) for i in pick)


@dataclass(frozen=True)
class PeopleInView:
    """The truth about frame ``index``: the pixels where a person is the nearest surface, the room alone and
    the room with the people (both 0..1, without the camera's disturbances)."""

    index: int
    mask: NDArray[np.bool_]
    room: F32
    people: F32

    def kept_share(self, render: NDArray[np.floating]) -> float:
        """Share of the people's pixels where ``render`` (a model drawn at this frame's pose, 0..1) is nearer the
        person than the room behind: how much of the people a model fitted to the frames shows as a ghost.
        Unaffected by where in depth the ghost sits (in the people's path, or smeared nearer the camera)."""
        to_room = np.abs(render - self.room).mean(axis=-1)
        to_people = np.abs(render - self.people).mean(axis=-1)
        return float(np.mean(to_people[self.mask] < to_room[self.mask])) if self.mask.any() else 0.0


class Filming:
    """One capture's frames, rendered in order (``frame(i)`` for i = 0, 1, ...: the sensor noise is drawn from
    one generator in frame order, so frames must be asked for in order to be the same every time).

    ``fps`` sets the capture's clock: the walkers cross in ``WALK_SECONDS`` and the exposure drifts over the
    clip's own length, so a 30-frame capture at 6 fps sees the same walk as the benchmark's 150 at 30 fps.
    ``texture_size`` is the room's (a tiny capture resolves little of the benchmark's 512-pixel textures).
    ``shares`` holds, per frame rendered so far, the share of pixels a person covers (0 for the clean one).
    """

    def __init__(self, name: CaptureName, cameras: list[Camera], fps: float, seed: int = 0,
                 texture_size: int = 512) -> None:
        self.name = name
        self.cameras = cameras
        self.fps = fps
        self.room = SyntheticScene(seed, texture_size=texture_size)
        self.crowd = Crowd(self.room, WALKERS, seed)
        self.blurred = blurred_frames(len(cameras), seed) if name == "disturbed" else []
        self.rng = np.random.default_rng(seed + 17)
        self.shares = [0.0] * len(cameras)

    def people_in_view(self, i: int) -> PeopleInView:
        """Where the people are in frame ``i`` and what the room and the people look like there, undisturbed."""
        camera, scene = self.cameras[i], self.crowd.at(i / self.fps)
        return PeopleInView(index=i, mask=scene.depth(camera) < self.room.depth(camera) - 1e-4,
                            room=self.room.render(camera).astype(np.float32) / 255.0,
                            people=scene.render(camera).astype(np.float32) / 255.0)

    def frame(self, i: int) -> U8:
        if self.name == "clean":
            return self.room.render(self.cameras[i])
        t = i / self.fps
        scene = self.crowd.at(t)
        self.shares[i] = occluded_share(scene, self.room, self.cameras[i])
        return disturb(scene.render(self.cameras[i]), t, len(self.cameras) / self.fps, i in self.blurred, self.rng)


def swept_boxes() -> list[tuple[F64, F64]]:
    """The volumes the walkers swept (true world frame), each as (low, high) corners."""
    return [w.swept_box() for w in WALKERS]


@dataclass(frozen=True)
class SweptOpacity:
    """What a model keeps where the people walked: summed activated opacity and count of the gaussians whose
    centres lie in the swept volume above ``FLOOR_MARGIN`` (a gaussian in two walkers' volumes counts once in
    ``opacity``), per walker too, and the model's total opacity to read it against."""

    opacity: float
    gaussians: int
    by_walker: list[float]
    total_opacity: float


def swept_opacity(means: NDArray[np.floating], opacities: NDArray[np.floating], to_model: Similarity) -> SweptOpacity:
    """``SweptOpacity`` of gaussians at ``means`` (model frame) with activated ``opacities``; ``to_model`` carries
    the true world frame into the model's (SfM's alignment, or the normalisation of true poses)."""
    x = (np.asarray(means, np.float64) - to_model.t) @ to_model.R / to_model.scale  # model -> true frame
    opacity = np.asarray(opacities, np.float64).reshape(-1)
    inside = np.zeros(len(x), dtype=bool)
    per_walker = []
    for lo, hi in swept_boxes():
        top = hi.copy()
        top[1] = -FLOOR_MARGIN
        mine = np.all((x >= lo) & (x <= top), axis=1)
        per_walker.append(round(float(opacity[mine].sum()), 2))
        inside |= mine
    return SweptOpacity(opacity=float(opacity[inside].sum()), gaussians=int(inside.sum()), by_walker=per_walker,
                        total_opacity=float(opacity.sum()))
