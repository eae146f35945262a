"""Structure from motion stage: posed, undistorted frames and a sparse point cloud, with pycolmap.

Sub-steps: SIFT extraction (one shared camera, CPU), matching (sequential with overlap for videos,
exhaustive for short clips), mapping (incremental by default, GLOMAP's global mapper on request), keeping the
largest model, undistortion to pure pinhole cameras of the same size as the frames, then normalisation of
the world frame (see ``poses.normalizing_similarity``: centred on the mean camera position, world ``-y`` up
(the supporting plane under the subject, ``upright.find_up``; without one the level plane of the camera path
when there is one, else the average camera up), cameras within radius 1).

A model is refused with a ``ReconstructionError`` the user can act on when too few frames are placed, when the
camera hardly moved, or when consecutive frames' rotations jump (the signature of a broken model that counts
alone do not reveal, see docs/measured.md).

Files in ``work_dir``: ``images/`` (undistorted frames, names as given), ``cameras.json`` and ``points.npz``
(``SceneData``), and ``colmap/`` (database and models, kept for inspection and re-runs).
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.colmap import pycolmap  # zlib first, SIGTERM kept: see colmap.py
from vidscene.pipeline.config import SfmConfig
from vidscene.pipeline.errors import ReconstructionError
from vidscene.pipeline.frames import FramesResult
from vidscene.pipeline.poses import normalizing_similarity, rotation_jumps_deg
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.undistort import undistort_frames
from vidscene.pipeline.upright import find_up

log = logging.getLogger(__name__)

T = TypeVar("T")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_FRAMES = 3
# Share of the total progress each sub-step accounts for (roughly their share of the time on a CPU).
_STEPS = {"extract": (0, 300), "match": (300, 550), "map": (550, 950), "undistort": (950, 1000)}
_TOTAL = 1000
_POLL_S = 0.25
MAX_POINT_ERROR_PX = 2.0
MIN_MEDIAN_KEYPOINTS = 40  # fewer SIFT features per frame than this cannot give a usable model
BRIGHT_LEVEL = 200.0  # 99th percentile grey level of a normally exposed frame, for SIFT's threshold
MIN_BASELINE_RATIO = 0.01  # camera spread / scene depth below this: the camera did not really move


def reconstruct(frames: FramesResult | Path, work_dir: Path, config: SfmConfig,
                progress: ProgressFn = no_progress) -> SceneData:
    """Pose the frames and build the sparse point cloud; writes ``work_dir`` as described in the module doc.

    ``frames`` is the frames stage's result or a directory of images whose names sort in time order. The
    returned ``SceneData`` holds the registered cameras in time order (pinhole, undistorted, normalised world
    frame), the filtered points (float32) with their colours (uint8), and statistics in ``extras``.

    Raises ``ReconstructionError`` (message for the user) when the frames cannot be reconstructed well
    enough. Exceptions raised by ``progress`` (``Cancelled``) stop pycolmap at its next check and propagate.
    """
    started = time.perf_counter()
    frames_dir, names = _frame_list(frames)
    ctx = {"stage": "sfm", "work_dir": str(work_dir)}
    if len(names) < MIN_FRAMES:
        raise ReconstructionError(f"Only {len(names)} frames are available; at least {MIN_FRAMES} are needed to "
                                  "reconstruct a scene.")
    colmap_dir = work_dir / "colmap"
    sparse = _sparse_model(frames_dir, names, colmap_dir, config, progress, ctx)
    model = sparse.model

    # Undistortion to pinhole cameras.
    t0 = time.perf_counter()
    staged_images = colmap_dir / "undistorted"
    start, end = _STEPS["undistort"]
    cameras = undistort_frames(model, frames_dir, staged_images, config.num_threads, lambda n, total: progress(
        start + (end - start) * n // total, _TOTAL, "Undistorting frames"))
    timings = {**sparse.timings, "undistort_s": time.perf_counter() - t0}

    check_rotation_continuity(cameras, names, config.max_rotation_jump_deg)
    points, colors, point_stats = _filtered_points(model)
    _check_baseline(cameras, points)
    cameras, points32, normalization = _normalised(cameras, points)

    images_dir = work_dir / "images"
    shutil.rmtree(images_dir, ignore_errors=True)
    staged_images.replace(images_dir)
    jumps = rotation_jumps_deg(cameras)
    extras: dict[str, Any] = {
        "frames": len(names), "registered": sparse.registered, "models": sparse.n_models, **sparse.stats,
        "mean_reprojection_error_px": round(float(model.compute_mean_reprojection_error()), 4),
        "max_rotation_step_deg": round(max(jumps), 3) if jumps else 0.0,
        "points_raw": point_stats["raw"], "points_kept": len(points32),
        "camera_model": "SIMPLE_RADIAL", "radial_k": round(float(model.cameras[1].params[-1]), 6)
        if 1 in model.cameras else None,
        "normalization": normalization,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
    scene = SceneData(cameras=cameras, images_dir=images_dir, points=points32, colors=colors, extras=extras)
    scene.save(work_dir)
    progress(_TOTAL, _TOTAL, f"Placed {sparse.registered} of {len(names)} frames")
    log.info("structure from motion done", extra={**ctx, **{k: v for k, v in extras.items()
                                                             if k != "normalization"}})
    return scene


@dataclass(frozen=True)
class _SparseModel:
    """pycolmap's largest model with what the steps that built it report for the scene's ``extras``."""

    model: pycolmap.Reconstruction
    registered: int  # frames placed in ``model``
    n_models: int  # models pycolmap returned (more than one when the frames split into unconnected groups)
    stats: dict[str, Any]  # matcher, mapper and SIFT settings and counts, in the order ``extras`` lists them
    timings: dict[str, float]  # seconds per step: extract_s, match_s, map_s


def _sparse_model(frames_dir: Path, names: list[str], colmap_dir: Path, config: SfmConfig,
                  progress: ProgressFn, ctx: dict[str, str]) -> _SparseModel:
    """Extract, match and map with pycolmap in a fresh ``colmap_dir``; keeps the largest model in ``model/``.

    Raises ``ReconstructionError`` when the frames have too few features or too few of them are placed.
    """
    shutil.rmtree(colmap_dir, ignore_errors=True)  # a re-run starts clean: stale matches would be reused
    colmap_dir.mkdir(parents=True)
    database = colmap_dir / "database.db"
    timings: dict[str, float] = {}
    steps = _CancellableColmapSteps(progress)

    with _quiet_pycolmap():
        t0 = time.perf_counter()
        sift = _extract_features(steps, config, database, frames_dir, names)
        timings["extract_s"] = time.perf_counter() - t0
        median_kp = _median_keypoints(database)

        t0 = time.perf_counter()
        matcher, min_inliers = _match_features(steps, config, database, len(names), median_kp, ctx)
        timings["match_s"] = time.perf_counter() - t0
        verified_pairs = _verified_pairs(database)

        t0 = time.perf_counter()
        sparse_dir = colmap_dir / "sparse"
        sparse_dir.mkdir()
        models = _map(steps, config, database, frames_dir, sparse_dir, len(names))
        timings["map_s"] = time.perf_counter() - t0
        model, registered = _largest_model(models, len(names), config.min_registered_fraction)

        model_dir = colmap_dir / "model"
        model_dir.mkdir()
        model.write(model_dir)

    stats = {"matcher": matcher, "mapper": config.mapper, "min_num_inliers": min_inliers,
             "median_keypoints": median_kp, "sift_first_octave": sift.first_octave,
             "sift_peak_threshold": round(sift.peak_threshold, 6), "brightness_p99": round(sift.brightness, 1),
             "verified_pairs": verified_pairs}
    return _SparseModel(model, registered, len(models), stats, timings)


@dataclass(frozen=True)
class _SiftSettings:
    """The SIFT settings extraction chose for these frames, and the brightness they were chosen from."""

    first_octave: int
    peak_threshold: float
    brightness: float  # 99th percentile grey level, 0-255


def _extract_features(steps: _CancellableColmapSteps, config: SfmConfig, database: Path, frames_dir: Path,
                      names: list[str]) -> _SiftSettings:
    """SIFT features of every frame into ``database``, all frames sharing one camera."""
    # SIFT's first octave upsamples the image: it finds the fine features small frames need, but quadruples
    # the cost on frames that already have plenty of pixels.
    first_octave = -1 if max(_image_size(frames_dir / names[0])) < 400 else 0
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = config.num_threads
    extraction.sift.max_num_features = config.max_num_features
    extraction.sift.first_octave = first_octave
    # SIFT's peak threshold is absolute, so a dark video yields almost no features. Lowering it in
    # proportion to the frames' brightness is the same as stretching their contrast first (the descriptor
    # and edge tests are contrast invariant), without writing brightened copies.
    brightness = _bright_level(frames_dir, names)
    extraction.sift.peak_threshold *= min(1.0, max(brightness, 8.0) / BRIGHT_LEVEL)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    steps.run("extract", f"Finding features in {len(names)} frames", lambda token: pycolmap.extract_features(
        database, frames_dir, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
        cancellation_token=token))
    return _SiftSettings(first_octave, extraction.sift.peak_threshold, brightness)


def _median_keypoints(database: Path) -> float:
    """Median number of features per frame; refuses frames too blurred, dark or plain to reconstruct."""
    keypoints = _keypoint_counts(database)
    median_kp = float(np.median(keypoints)) if keypoints else 0.0
    if median_kp < MIN_MEDIAN_KEYPOINTS:
        raise ReconstructionError(
            f"Too few distinct details were found in the frames (typically {median_kp:.0f} per frame): the "
            "video is too blurred, too dark, or shows plain surfaces. Film a textured, well-lit scene.")
    return median_kp


def _match_features(steps: _CancellableColmapSteps, config: SfmConfig, database: Path, n_frames: int,
                    median_kp: float, ctx: dict[str, str]) -> tuple[str, int]:
    """Match and verify frame pairs into ``database``; returns the matcher used and its inlier bar."""
    matcher = config.matcher
    if matcher == "auto":
        matcher = "exhaustive" if n_frames < config.exhaustive_below else "sequential"
    verification = pycolmap.TwoViewGeometryOptions()
    # 60 inliers stop (docs/measured.md) repeated textures from creating false pairs. Small frames have few
    # features in total, so there the bar is a share of what an image can possibly match.
    min_inliers = max(15, min(config.min_num_inliers, int(0.15 * median_kp)))
    verification.min_num_inliers = min_inliers
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = config.num_threads
    if matcher == "exhaustive":
        steps.run("match", "Matching every pair of frames", lambda token: pycolmap.match_exhaustive(
            database, matching_options=matching, verification_options=verification,
            device=pycolmap.Device.cpu, cancellation_token=token))
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = config.sequential_overlap
        pairing.num_threads = config.num_threads
        if config.loop_detection:
            log.warning("loop detection needs a vocabulary tree, which is not configured; skipped", extra=ctx)
        steps.run("match", "Matching neighbouring frames", lambda token: pycolmap.match_sequential(
            database, matching_options=matching, pairing_options=pairing, verification_options=verification,
            device=pycolmap.Device.cpu, cancellation_token=token))
    return matcher, min_inliers


def _largest_model(models: list[pycolmap.Reconstruction], n_frames: int,
                   min_registered_fraction: float) -> tuple[pycolmap.Reconstruction, int]:
    """The model with the most frames placed and that count; refuses too few placed frames."""
    model = max(models, key=lambda r: r.num_reg_images()) if models else None
    registered = model.num_reg_images() if model is not None else 0
    if model is None or registered < max(MIN_FRAMES, math.ceil(min_registered_fraction * n_frames)):
        raise ReconstructionError(
            f"Only {registered} of {n_frames} frames could be placed in 3D: the camera must move around "
            "the subject (not just turn on the spot), with steady, well-lit, textured views. Try filming "
            "again, walking slowly around the subject.")
    return model, registered


def _normalised(cameras: list[Camera], points: NDArray[np.float64]) -> tuple[list[Camera], NDArray[np.float32],
                                                                             dict[str, Any]]:
    """Cameras and points in the normalised world frame (module doc), and the similarity used, as JSON."""
    up = find_up(cameras, points)
    similarity = normalizing_similarity(cameras, up.direction)
    normalised = [similarity.apply_camera(c) for c in cameras]
    points32 = similarity.apply_points(points).astype(np.float32)
    return normalised, points32, {**similarity.to_json(), **up.to_json()}


def _frame_list(frames: FramesResult | Path) -> tuple[Path, list[str]]:
    if isinstance(frames, FramesResult):
        return frames.frames_dir, list(frames.frame_names)
    names = sorted(p.name for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return frames, names


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def _bright_level(frames_dir: Path, names: list[str], samples: int = 8) -> float:
    """Median over a few frames of their 99th percentile grey level (0-255): how bright the highlights are."""
    from PIL import Image

    levels = []
    for name in names[:: max(1, len(names) // samples)][:samples]:
        with Image.open(frames_dir / name) as im:
            levels.append(float(np.percentile(np.asarray(im.convert("L")), 99)))
    return float(np.median(levels))


class _CancellableColmapSteps:
    """The pycolmap steps of one reconstruction, each run in a thread while this thread keeps reporting progress.

    pycolmap releases the GIL, so the caller's progress callback (which may raise ``Cancelled``) runs every
    ``_POLL_S`` seconds; when it raises, the pycolmap call is cancelled through its token and the exception
    propagates once pycolmap has returned.
    """

    def __init__(self, progress: ProgressFn) -> None:
        self.progress = progress
        self.fraction = 0.0  # progress inside the current step, updated by callbacks (mapping)

    def run(self, step: str, message: str, call: Callable[[pycolmap.CancellationToken], T]) -> T:
        start, end = _STEPS[step]
        self.fraction = 0.0
        token = pycolmap.CancellationToken()
        result: list[T] = []
        error: list[BaseException] = []

        def target() -> None:
            try:
                result.append(call(token))
            except BaseException as exc:  # handed over to the calling thread
                error.append(exc)

        thread = threading.Thread(target=target, name=f"pycolmap-{step}", daemon=True)
        self.progress(start, _TOTAL, message)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(_POLL_S)
                self.progress(start + int((end - start) * min(1.0, self.fraction)), _TOTAL, message)
        except BaseException:
            token.cancel()
            thread.join()  # pycolmap must not keep writing into work_dir after we return
            raise
        if error:
            raise error[0]
        if token.is_cancelled:
            raise ReconstructionError("Structure from motion was interrupted.")
        return result[0]


def _map(steps: _CancellableColmapSteps, config: SfmConfig, database: Path, frames_dir: Path,
         sparse_dir: Path, n_frames: int) -> list[pycolmap.Reconstruction]:
    """Place the cameras from the verified matches; returns every model pycolmap built (in ``sparse_dir``)."""
    if config.mapper == "global":
        global_options = pycolmap.GlobalPipelineOptions()
        global_options.num_threads = config.num_threads
        global_options.random_seed = 0
        # GLOMAP takes no cancellation token: a cancel is noticed when it returns.
        result = steps.run("map", "Placing the cameras (global)", lambda _token: pycolmap.global_mapping(
            database, frames_dir, sparse_dir, options=global_options))
    else:
        options = pycolmap.IncrementalPipelineOptions()
        options.num_threads = config.num_threads
        options.random_seed = 0
        # Video frames arrive densely and in order, so global bundle adjustment after every 10% of growth
        # (COLMAP's default, tuned for unordered photo collections) is more than needed: every 30% and fewer
        # refinement rounds map 120 frames about 25% faster with the same accuracy (bench/sfm.py). The final
        # global adjustment still runs in full.
        options.ba_global_frames_ratio = 1.3
        options.ba_global_points_ratio = 1.3
        options.ba_global_max_refinements = 2
        options.ba_local_max_refinements = 1
        placed = [0]

        def next_image() -> None:
            placed[0] += 1
            steps.fraction = placed[0] / n_frames

        result = steps.run("map", "Placing the cameras", lambda token: pycolmap.incremental_mapping(
            database, frames_dir, sparse_dir, options=options, next_image_callback=next_image,
            cancellation_token=token))
    return list(result.values())


def _keypoint_counts(database: Path) -> list[int]:
    db = pycolmap.Database.open(database)
    try:
        return [int(db.num_keypoints_for_image(image.image_id)) for image in db.read_all_images()]
    finally:
        db.close()


def _verified_pairs(database: Path) -> int:
    db = pycolmap.Database.open(database)
    try:
        return int(db.num_verified_image_pairs())
    finally:
        db.close()


def check_rotation_continuity(cameras: list[Camera], names: list[str], max_jump_deg: float) -> None:
    """Refuse a model whose consecutive frames turn implausibly far (a model split into inconsistent parts).

    The allowance grows with the number of frames between two registered ones, since unregistered frames in
    between leave a longer real interval.
    """
    position = {name: i for i, name in enumerate(names)}
    for a, b, jump in zip(cameras, cameras[1:], rotation_jumps_deg(cameras), strict=False):
        gap = max(1, position.get(b.image_name, 0) - position.get(a.image_name, 0))
        if jump > max_jump_deg * gap:
            raise ReconstructionError(
                f"The 3D reconstruction is inconsistent: the camera appears to turn {jump:.0f} degrees between "
                f"{a.image_name} and {b.image_name}. This happens with repetitive patterns, reflections or very "
                "fast motion; please film again more slowly, with varied, textured surfaces in view.")


def _filtered_points(model: pycolmap.Reconstruction) -> tuple[NDArray[np.float64], NDArray[np.uint8],
                                                              dict[str, int]]:
    """Points seen from at least 3 frames (2 when that leaves too few) with a small reprojection error."""
    n = model.num_points3D()
    xyz = np.empty((n, 3), dtype=np.float64)
    rgb = np.empty((n, 3), dtype=np.uint8)
    err = np.empty(n, dtype=np.float64)
    track = np.empty(n, dtype=np.int64)
    for i, p in enumerate(model.points3D.values()):
        xyz[i] = p.xyz
        rgb[i] = p.color
        err[i] = p.error
        track[i] = p.track.length()
    good = err <= MAX_POINT_ERROR_PX
    keep = good & (track >= 3)
    if keep.sum() < 100:
        keep = good & (track >= 2)
    if keep.any():
        # Gross outliers (points triangulated from nearly parallel rays) would stretch the scene bounds.
        centre = np.median(xyz[keep], axis=0)
        dist = np.linalg.norm(xyz - centre, axis=1)
        keep &= dist <= 5.0 * np.percentile(dist[keep], 95)
    return xyz[keep], rgb[keep], {"raw": n}


def _check_baseline(cameras: list[Camera], points: NDArray[np.float64]) -> None:
    """Refuse a tripod shot: cameras all in one spot give no depth even when pycolmap returns a model."""
    if len(points) == 0:
        raise ReconstructionError("No 3D points could be reconstructed: the scene needs visible texture and the "
                                  "camera must move around it.")
    centres = np.array([c.center for c in cameras])
    spread = float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=1)))
    depth = float(np.median(np.linalg.norm(points - centres.mean(axis=0), axis=1)))
    if depth <= 0 or spread / depth < MIN_BASELINE_RATIO:
        raise ReconstructionError("The camera barely moved, so the scene's depth cannot be measured: walk around "
                                  "the subject while filming instead of standing still or only turning.")


@contextmanager
def _quiet_pycolmap() -> Iterator[None]:
    """pycolmap logs through glog straight to stderr, between ``vidscene run``'s progress bars and into worker
    logs unstructured. Its errors ("Failed to create any sparse model") become a ``ReconstructionError`` the
    person reads, so only fatal lines pass unless we are debugging."""
    previous = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 0 if log.isEnabledFor(logging.DEBUG) else 3
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous

