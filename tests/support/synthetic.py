"""Synthetic scenes with known ground-truth cameras, for tests and benchmarks (``videos`` encodes them).

A small textured room (floor, four walls, ceiling) with a few textured boxes on the floor is ray-cast with
numpy along a known camera path. Because every pixel comes from a non-repeating natural image (scikit-image's
bundled samples, or procedural noise when scikit-image is absent), SIFT finds plenty of
distinct matches, and repeated-texture ambiguities (docs/measured.md) do not arise by construction.

World frame of the ground truth: origin at the centre of the floor, world ``-y`` is up (the floor is the plane
``y = 0`` and everything above it has negative ``y``), units are arbitrary ("metres" of a 12 x 12 room).
Cameras follow ``vidscene.pipeline.cameras``: OpenCV axes, ``x_cam = R @ x_world + t``, pinhole intrinsics in
pixels for the *displayed* (upright) frames, principal point at the image centre in COLMAP's convention (pixel
centres at ``+0.5``). ``Camera.image_name`` is the frame index in the video, zero padded (``"00012"``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from vidscene.pipeline.cameras import Camera, SceneData

if TYPE_CHECKING:
    from vidscene.pipeline.poses import Similarity

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]

ROOM_HALF = 6.0
ROOM_HEIGHT = 4.0
LOOK_AT = np.array([0.0, -0.5, 0.0])


@dataclass(frozen=True)
class _Quad:
    """An axis-aligned textured rectangle: ``coord[axis] == pos``, the other two coordinates within bounds."""

    axis: int
    pos: float
    u_axis: int
    u_range: tuple[float, float]
    v_axis: int
    v_range: tuple[float, float]
    texture: int
    shade: float


class QuadScene:
    """Textured axis-aligned rectangles; ``render`` ray-casts one camera. Subclasses fill ``quads``/``textures``."""

    def __init__(self) -> None:
        self.textures: list[F32] = []
        self.quads: list[_Quad] = []

    def render(self, camera: Camera, supersample: int = 2) -> U8:
        """RGB image (height, width, 3) seen by ``camera``; ``supersample``^2 rays per pixel stop aliasing."""
        s = max(1, supersample)
        quad, u, v, _ = self._cast(camera, s)
        out = np.zeros((quad.size, 3), dtype=np.float32)
        for qi, q in enumerate(self.quads):
            sel = np.nonzero(quad == qi)[0]
            if sel.size:
                out[sel] = _bilinear(self.textures[q.texture], u[sel], v[sel]) * q.shade
        img = out.reshape(camera.height * s, camera.width * s, 3)
        if s > 1:
            img = img.reshape(camera.height, s, camera.width, s, 3).mean(axis=(1, 3))
        return np.asarray(np.clip(img * 255.0 + 0.5, 0, 255), dtype=np.uint8)

    def add_box(self, texture: Callable[[int], int], bx: float, bz: float, sx: float, sy: float, sz: float) -> None:
        """A box standing on ``y = 0`` (centre ``bx, bz``, half widths ``sx, sz``, height ``sy``; ``-y`` is up):
        its top, then its sides, each with a new 256-px texture from ``texture`` (the order fixes the textures a
        seed gives)."""
        self.quads.append(_Quad(1, -sy, 0, (bx - sx, bx + sx), 2, (bz - sz, bz + sz), texture(256), 1.0))
        for sign in (-1.0, 1.0):
            self.quads.append(_Quad(0, bx + sign * sx, 2, (bz - sz, bz + sz), 1, (-sy, 0.0), texture(256), 0.8))
            self.quads.append(_Quad(2, bz + sign * sz, 0, (bx - sx, bx + sx), 1, (-sy, 0.0), texture(256), 0.65))

    def depth(self, camera: Camera) -> F32:
        """Z-depth (along the optical axis) of the surface at each pixel centre, shape (height, width)."""
        _, _, _, t = self._cast(camera, 1)
        return t.reshape(camera.height, camera.width).astype(np.float32)

    def _cast(self, camera: Camera, s: int) -> tuple[NDArray[np.int64], F32, F32, F32]:
        """Nearest quad hit by each of the ``s`` x ``s`` rays per pixel: quad index, texture (u, v), z-depth.

        Rays are cast through a camera-space direction with unit z, so the ray parameter is the z-depth. Each
        quad is only tested against the rays inside the bounding box of its projection, which makes boxes
        (small on screen) almost free and skips whatever is behind the camera.
        """
        w, h = camera.width * s, camera.height * s
        us = (np.arange(w, dtype=np.float32) + 0.5) / s
        vs = (np.arange(h, dtype=np.float32) + 0.5) / s
        dx = ((us - camera.cx) / camera.fx)[None, :]
        dy = ((vs - camera.cy) / camera.fy)[:, None]
        rt = camera.R.T.astype(np.float32)  # camera -> world for directions
        dirs = [rt[k, 0] * dx + rt[k, 1] * dy + rt[k, 2] for k in range(3)]  # 3 x (h, w), world directions
        origin = camera.center
        best_t = np.full((h, w), np.inf, dtype=np.float32)
        best_q = np.full((h, w), -1, dtype=np.int64)
        best_u = np.zeros((h, w), dtype=np.float32)
        best_v = np.zeros((h, w), dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            for qi, q in enumerate(self.quads):
                window = _screen_window(q, camera, s, w, h)
                if window is None:
                    continue
                ys, xs = window
                d_axis = dirs[q.axis][ys, xs]
                t = (q.pos - origin[q.axis]) / d_axis
                u = (origin[q.u_axis] + t * dirs[q.u_axis][ys, xs] - q.u_range[0]) / (q.u_range[1] - q.u_range[0])
                v = (origin[q.v_axis] + t * dirs[q.v_axis][ys, xs] - q.v_range[0]) / (q.v_range[1] - q.v_range[0])
                bt = best_t[ys, xs]
                hit = (t > 1e-6) & (t < bt) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
                bt[hit] = t[hit]
                best_q[ys, xs][hit] = qi
                best_u[ys, xs][hit] = u[hit]
                best_v[ys, xs][hit] = v[hit]
        return best_q.ravel(), best_u.ravel(), best_v.ravel(), best_t.ravel()


class SyntheticScene(QuadScene):
    """The textured room and boxes. Deterministic for a given seed."""

    def __init__(self, seed: int = 0, texture_size: int = 512) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        sources = _texture_sources(rng)
        h, r = ROOM_HEIGHT, ROOM_HALF

        def texture(size: int) -> int:
            self.textures.append(_make_texture(sources, rng, size))
            return len(self.textures) - 1

        # Floor: a 2x2 mosaic of different images, so it is not one magnified picture.
        for ix in range(2):
            for iz in range(2):
                xr = (-r + ix * r, ix * r)
                zr = (-r + iz * r, iz * r)
                self.quads.append(_Quad(1, 0.0, 0, xr, 2, zr, texture(texture_size), 1.0))
        # Walls (two texture panels each) and ceiling.
        for axis, other in ((0, 2), (2, 0)):
            for sign in (-1.0, 1.0):
                shade = 0.85 if axis == 0 else 0.7
                for half in range(2):
                    orng = (-r + half * r, half * r)
                    tex = texture(texture_size)
                    self.quads.append(_Quad(axis, sign * r, other, orng, 1, (-h, 0.0), tex, shade))
        self.quads.append(_Quad(1, -h, 0, (-r, r), 2, (-r, r), texture(texture_size), 0.6))
        # Boxes standing on the floor around the centre (x, z, half width x, height, half depth z).
        boxes = [(-0.9, -0.6, 0.45, 1.1, 0.35), (0.8, -0.3, 0.35, 0.7, 0.5),
                 (0.1, 0.9, 0.5, 0.5, 0.4), (-0.2, 0.0, 0.25, 1.6, 0.25)]
        for bx, bz, sx, sy, sz in boxes:
            self.add_box(texture, bx, bz, sx, sy, sz)



class TabletopScene(QuadScene):
    """A table covered in posters (the plane ``y = 0``), a few boxes on it and a poster board standing behind.

    What a forward-facing capture films: everything a ``forward_cameras`` view sees is one of these surfaces,
    between about 1 and 7 units away. The table spans ``x`` in [-6, 6] and ``z`` in [-2.5, 3.5]; the board
    stands at ``z = 3.5``, 3 units tall. Deterministic for a given seed.
    """

    def __init__(self, seed: int = 0, texture_size: int = 512) -> None:
        super().__init__()
        rng = np.random.default_rng(seed + 7)
        sources = _texture_sources(rng)

        def texture(size: int) -> int:
            self.textures.append(_make_texture(sources, rng, size))
            return len(self.textures) - 1

        # Posters: an 8 x 4 mosaic of different images on the table, four panels on the board behind it.
        for ix in range(8):
            for iz in range(4):
                xr = (-6.0 + 1.5 * ix, -4.5 + 1.5 * ix)
                zr = (-2.5 + 1.5 * iz, -1.0 + 1.5 * iz)
                self.quads.append(_Quad(1, 0.0, 0, xr, 2, zr, texture(texture_size // 2), 1.0))
        for ix in range(4):
            self.quads.append(_Quad(2, 3.5, 0, (-6.0 + 3.0 * ix, -3.0 + 3.0 * ix), 1, (-3.0, 0.0),
                                    texture(texture_size), 0.8))
        # Boxes on the table (x, z, half width x, height, half depth z).
        for bx, bz, sx, sy, sz in ((-1.0, 1.0, 0.35, 0.8, 0.3), (0.9, 1.8, 0.45, 0.6, 0.35),
                                   (0.0, 0.3, 0.25, 0.35, 0.25)):
            self.add_box(texture, bx, bz, sx, sy, sz)


def _screen_window(q: _Quad, camera: Camera, s: int, w: int, h: int) -> tuple[slice, slice] | None:
    """Rows and columns (in the ``s``-times supersampled grid) that can see quad ``q``; None if none can."""
    corners = np.zeros((4, 3))
    corners[:, q.axis] = q.pos
    corners[:, q.u_axis] = [q.u_range[0], q.u_range[1], q.u_range[1], q.u_range[0]]
    corners[:, q.v_axis] = [q.v_range[0], q.v_range[0], q.v_range[1], q.v_range[1]]
    pc = corners @ camera.R.T + camera.t
    if np.all(pc[:, 2] <= 1e-6):
        return None  # entirely behind the camera
    if np.any(pc[:, 2] <= 1e-6):
        return slice(0, h), slice(0, w)  # straddles the camera plane: test everything
    px = (pc[:, 0] / pc[:, 2] * camera.fx + camera.cx) * s
    py = (pc[:, 1] / pc[:, 2] * camera.fy + camera.cy) * s
    x0, x1 = max(0, int(np.floor(px.min())) - 1), min(w, int(np.ceil(px.max())) + 1)
    y0, y1 = max(0, int(np.floor(py.min())) - 1), min(h, int(np.ceil(py.max())) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def orbit_cameras(n_frames: int, width: int, height: int, *, orbit_degrees: float = 120.0,
                  radius: float = 3.2, camera_height: float = 1.6, hfov_degrees: float = 60.0,
                  start_degrees: float = 0.0, bob: float = 0.15) -> list[Camera]:
    """Cameras moving along an arc around the room centre, each looking at ``LOOK_AT``.

    ``bob`` moves the camera up and down a little (as a hand-held phone would), which also keeps the problem
    away from the planar-motion degeneracy.
    """
    fx = (width / 2.0) / math.tan(math.radians(hfov_degrees) / 2.0)
    cams = []
    for i in range(n_frames):
        a = math.radians(start_degrees + orbit_degrees * (i / max(1, n_frames - 1)))
        y = -camera_height - bob * math.sin(2.0 * math.pi * i / max(1, n_frames - 1))
        centre = np.array([radius * math.sin(a), y, -radius * math.cos(a)])
        R = look_at_rotation(centre, LOOK_AT)
        cams.append(Camera(width=width, height=height, fx=fx, fy=fx, cx=width / 2.0, cy=height / 2.0, R=R,
                           t=-R @ centre, image_name=f"{i:05d}"))
    return cams


def look_at_rotation(centre: F64, target: F64) -> F64:
    """World -> camera rotation of a y-down camera at ``centre`` looking at ``target`` with world -y up."""
    z = target - centre
    z = z / np.linalg.norm(z)
    down = np.array([0.0, 1.0, 0.0])
    x = np.cross(down, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z]).astype(np.float64)



def forward_cameras(n_frames: int, width: int, height: int, *, turn_degrees: float = 36.0, slide: float = 1.2,
                    camera_height: float = 1.5, distance: float = 2.4, pitch_degrees: float = 30.0,
                    hfov_degrees: float = 60.0, seed: int = 0) -> list[Camera]:
    """A hand-held forward-facing capture of ``TabletopScene``: the camera slides ``slide`` units sideways
    (left to right) at ``distance`` in front of the table centre, looking down at it by ``pitch_degrees``,
    while it turns ``turn_degrees`` about the vertical (towards the table's middle, but not orbiting it: the
    viewing directions cross about 1.8 units ahead, the table stretches from 1 to 6 units ahead).

    A hand holding a phone wobbles: smooth random drift of a few centimetres and a few degrees of pitch and
    roll are added (deterministic for ``seed``).
    """
    fx = (width / 2.0) / math.tan(math.radians(hfov_degrees) / 2.0)
    rng = np.random.default_rng(seed + 11)
    phases = rng.uniform(0.0, 2.0 * math.pi, 6)
    cams = []
    for i in range(n_frames):
        s = i / max(1, n_frames - 1)
        wobble = [math.sin(2.0 * math.pi * (k + 1) * s + phases[k]) for k in range(6)]
        centre = np.array([-slide / 2.0 + slide * s + 0.03 * wobble[0], -camera_height + 0.06 * wobble[1],
                           -distance + 0.08 * wobble[2]])
        yaw = math.radians(turn_degrees / 2.0 - turn_degrees * s)
        pitch = math.radians(pitch_degrees + 2.0 * wobble[3])
        forward = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
        R = look_at_rotation(centre, centre + forward)
        roll = math.radians(1.5 * wobble[4])
        c, sn = math.cos(roll), math.sin(roll)
        R = np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]]) @ R
        cams.append(Camera(width=width, height=height, fx=fx, fy=fx, cx=width / 2.0, cy=height / 2.0, R=R,
                           t=-R @ centre, image_name=f"{i:05d}"))
    return cams


def posed_scene(directory: Path, cameras: Sequence[Camera], scene: QuadScene, *, image: U8 | None = None,
                frames: Callable[[int], U8] | None = None, points_per_frame: int = 60, seed: int = 0) -> SceneData:
    """What structure from motion would hand to training, without running it: ``scene`` rendered from the true
    ``cameras`` into ``directory`` (or ``image`` for every frame, or ``frames(i)`` for frame ``i``, asked in
    order: a capture with more in it than the static scene), and sparse points, the true surface of ``scene``
    under ``points_per_frame`` random pixels of each frame (grey), all in the world frame SfM promises
    (``posed_similarity``). Frames are saved as ``{image_name}.png``."""
    directory.mkdir(parents=True, exist_ok=True)
    named = []
    for i, cam in enumerate(cameras):
        name = f"{cam.image_name}.png"
        frame = image if image is not None else frames(i) if frames is not None else scene.render(cam)
        Image.fromarray(frame).save(directory / name)
        named.append(replace(cam, image_name=name))
    sim = posed_similarity(named)
    pts = sim.apply_points(surface_points(scene, cameras, points_per_frame, seed=seed)).astype(np.float32)
    return SceneData(cameras=[sim.apply_camera(c) for c in named], images_dir=directory, points=pts,
                     colors=np.full(pts.shape, 128, np.uint8))


def posed_similarity(cameras: Sequence[Camera]) -> Similarity:
    """The similarity ``posed_scene`` carries the true world frame by into the training frame (the one SfM's
    output is normalised by), to bring what a model learned back to the truth."""
    from vidscene.pipeline.poses import normalizing_similarity

    return normalizing_similarity(list(cameras))


def surface_points(scene: QuadScene, cameras: Sequence[Camera], per_frame: int, *, seed: int = 0) -> F64:
    """What SfM's sparse points are, without noise: the true surface under ``per_frame`` random pixels of each
    camera's view (world coordinates of ``cameras``; pixels that see nothing give no point)."""
    rng = np.random.default_rng(seed)
    points = []
    for cam in cameras:
        depth = scene.depth(cam)
        v = rng.integers(0, cam.height, per_frame)
        u = rng.integers(0, cam.width, per_frame)
        z = depth[v, u]
        x_cam = np.stack([(u + 0.5 - cam.cx) / cam.fx * z, (v + 0.5 - cam.cy) / cam.fy * z, z], axis=-1)
        points.append((x_cam[np.isfinite(z)] - cam.t) @ cam.R)
    return np.concatenate(points).astype(np.float64)


def _bilinear(tex: F32, u: F32, v: F32) -> F32:
    """Sample ``tex`` (h, w, 3) at normalised coordinates in [0, 1] with bilinear interpolation."""
    th, tw = tex.shape[:2]
    x = np.clip(u, 0.0, 1.0) * (tw - 1)
    y = np.clip(v, 0.0, 1.0) * (th - 1)
    x0 = np.minimum(x.astype(np.int64), tw - 2)
    y0 = np.minimum(y.astype(np.int64), th - 2)
    fx = (x - x0).astype(np.float32)[:, None]
    fy = (y - y0).astype(np.float32)[:, None]
    top = tex[y0, x0] * (1 - fx) + tex[y0, x0 + 1] * fx
    bottom = tex[y0 + 1, x0] * (1 - fx) + tex[y0 + 1, x0 + 1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy, dtype=np.float32)


def _texture_sources(rng: np.random.Generator) -> list[F32]:
    """Natural images in [0, 1] RGB: scikit-image's bundled samples, else procedural noise."""
    images: list[F32] = []
    try:
        import skimage.data as data

        names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat",
                 "brick", "grass", "gravel", "camera", "moon"]
        for name in names:
            try:
                a = np.asarray(getattr(data, name)())
            except Exception:  # a missing sample (offline, older version) is skipped
                log.debug("skimage sample unavailable", extra={"sample": name})
                continue
            if a.ndim == 2:  # grey textures get a random tint so that they differ from each other
                tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
                images.append((a[..., None].astype(np.float32) / 255.0) * tint)
            else:
                images.append(a[..., :3].astype(np.float32) / 255.0)
    except ImportError:
        log.info("scikit-image not installed; synthetic scenes use procedural textures")
    if len(images) < 4:
        images.extend(_noise_texture(rng, 512) for _ in range(8))
    return images


def _noise_texture(rng: np.random.Generator, size: int) -> F32:
    """Multi-octave coloured value noise plus random discs: blob-rich, never repeating."""
    img = np.zeros((size, size, 3), dtype=np.float32)
    for octave in range(1, 7):
        cells = 2**octave + 1
        grid = rng.uniform(0, 1, (cells, cells, 3)).astype(np.float32)
        small = Image.fromarray((grid * 255).astype(np.uint8))
        up = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC))
        img += up.astype(np.float32) / 255.0 / (1.5**octave)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(60):
        cx, cy, rad = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(3, size / 12)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < rad**2] = rng.uniform(0, 1, 3)
    img -= img.min()
    return np.asarray(img / max(float(img.max()), 1e-6), dtype=np.float32)


def _make_texture(sources: list[F32], rng: np.random.Generator, size: int) -> F32:
    """A random crop of a random source, flipped and tinted, resized to ``size`` squared."""
    src = sources[int(rng.integers(len(sources)))]
    h, w = src.shape[:2]
    side = int(min(h, w) * rng.uniform(0.55, 1.0))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = src[y0:y0 + side, x0:x0 + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    tint = rng.uniform(0.75, 1.15, 3).astype(np.float32)
    img8 = np.clip(crop * tint * 255.0 + 0.5, 0, 255).astype(np.uint8)
    resized = Image.fromarray(np.ascontiguousarray(img8)).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float32) / 255.0


@dataclass(frozen=True)
class CameraErrors:
    """How far reconstructed cameras are from the truth, after the best similarity alignment of centres."""

    matched: int  # cameras compared (those whose image_name matched a true camera)
    rotation_deg_mean: float
    rotation_deg_max: float
    position_rel_mean: float  # centre error as a fraction of the true trajectory's radius
    focal_rel: float  # |f_est / f_true - 1|, focal lengths compared at the same image width


def camera_errors(estimated: Sequence[Camera], truth: Sequence[Camera],
                  name_of: Callable[[Camera], str] = lambda c: c.image_name) -> CameraErrors:
    """Compare reconstructed cameras with true ones, paired by ``name_of(estimated) == truth.image_name``.

    SfM recovers a scene only up to a similarity, so centres are aligned first (Umeyama), then rotations are
    compared in the true frame.
    """
    from vidscene.pipeline.poses import rotation_angle_deg, umeyama

    by_name = {c.image_name: c for c in truth}
    pairs = [(e, by_name[name_of(e)]) for e in estimated if name_of(e) in by_name]
    if len(pairs) < 3:
        raise ValueError("need at least 3 matched cameras to align")
    est_c = np.array([e.center for e, _ in pairs])
    true_c = np.array([t.center for _, t in pairs])
    sim = umeyama(est_c, true_c)
    aligned = sim.apply_points(est_c)
    radius = float(np.max(np.linalg.norm(true_c - true_c.mean(axis=0), axis=1)))
    rot = [rotation_angle_deg(e.R @ sim.R.T, t.R) for e, t in pairs]
    focal = [e.fx * (t.width / e.width) / t.fx - 1.0 for e, t in pairs]
    return CameraErrors(matched=len(pairs), rotation_deg_mean=float(np.mean(rot)),
                        rotation_deg_max=float(np.max(rot)),
                        position_rel_mean=float(np.mean(np.linalg.norm(aligned - true_c, axis=1)) / radius),
                        focal_rel=float(abs(np.mean(focal))))
