"""Benchmark: structure from motion on a synthetic orbit video with known cameras.

Renders a 120-frame 480x360 orbit (about 10 s at 12 fps of kept frames), runs the frames stage at the working
resolution, then each SfM variant, and prints seconds per sub-step, registered frames, and the rotation,
position and focal errors after aligning the reconstructed camera centres to the truth (Umeyama). The load
average is printed too: the development machines are shared and figures without it mean little.

    python bench/sfm.py                                   # seq+incremental, exhaustive, global at 480 px
    python bench/sfm.py --variants baseline,seq           # against pycolmap's defaults, same load
    python bench/sfm.py --variants seq --max-long-side 320
    python bench/sfm.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support

if TYPE_CHECKING:  # imported for real in main (after argument parsing, so that --help is quick)
    from vidscene.pipeline.cameras import Camera, SceneData
    from vidscene.pipeline.frames import FramesResult

# "baseline" is not a configuration of ours: pycolmap's defaults end to end (its undistorter included), run in
# the same process and under the same load, as the reference the stage's own choices are measured against.
VARIANTS: dict[str, dict[str, str]] = {
    "baseline": {},
    "seq": {"matcher": "sequential", "mapper": "incremental"},
    "exhaustive": {"matcher": "exhaustive", "mapper": "incremental"},
    "global": {"matcher": "sequential", "mapper": "global"},
}


def main() -> None:
    args = _parse_args()

    from tests.support.videos import make_orbit_video
    from vidscene.pipeline.config import FramesConfig, SfmConfig
    from vidscene.pipeline.errors import ReconstructionError
    from vidscene.pipeline.frames import extract_frames
    from vidscene.pipeline.sfm import reconstruct

    with tempfile.TemporaryDirectory(prefix="vidscene-bench-sfm-") as tmp:
        root = args.work_dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        video = make_orbit_video(root / "orbit.mp4", n_frames=args.frames, width=args.width, height=args.height,
                                 fps=12, orbit_degrees=args.orbit_degrees)
        render_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        frames = extract_frames(video.path, root / "frames", root / "thumb.jpg",
                                FramesConfig(target_count=args.frames, max_long_side=args.max_long_side))
        frames_s = time.perf_counter() - t0
        truth = [replace(video.cameras[i], image_name=name)
                 for i, name in zip(frames.source_frame_indices, frames.frame_names, strict=True)]
        report: dict[str, Any] = {
            "video": f"{args.frames} frames {args.width}x{args.height}", "frames_size": [frames.width,
                                                                                      frames.height],
            "render_s": round(render_s, 2), "frames_s": round(frames_s, 2), "load_before": os.getloadavg(),
            "runs": {},
        }
        print(f"video {report['video']}: rendered in {render_s:.1f} s, frames stage {frames_s:.1f} s "
              f"({frames.width}x{frames.height}); load {_load()}")
        for name in args.variants.split(","):
            if name == "baseline":
                report["runs"][name] = _baseline_run(frames, truth, root / "sfm-baseline")
                continue
            config = SfmConfig(max_num_features=args.features, num_threads=args.threads, **VARIANTS[name])  # type: ignore[arg-type]  # literals checked by VARIANTS
            t0 = time.perf_counter()
            try:
                scene = reconstruct(frames, root / f"sfm-{name}", config)
            except ReconstructionError as exc:
                report["runs"][name] = _failed_run(name, exc, t0)
                continue
            report["runs"][name] = _variant_run(name, scene, time.perf_counter() - t0, truth,
                                                len(frames.frame_names))
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="frames rendered (all are kept)")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--max-long-side", type=int, default=480, help="frames stage working resolution")
    parser.add_argument("--variants", default="seq,exhaustive,global", help=f"comma list of {sorted(VARIANTS)}")
    parser.add_argument("--features", type=int, default=4096, help="SfmConfig.max_num_features")
    parser.add_argument("--threads", type=int, default=-1)
    parser.add_argument("--orbit-degrees", type=float, default=120.0)
    parser.add_argument("--work-dir", type=Path, help="keep files here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    return parser.parse_args()


def _baseline_run(frames: FramesResult, truth: list[Camera], work: Path) -> dict[str, Any]:
    """pycolmap's defaults end to end, timed and compared with the true cameras; prints its line."""
    from tests.support.synthetic import camera_errors

    t0 = time.perf_counter()
    timings, cameras = _pycolmap_defaults(frames.frames_dir, frames.frame_names, work)
    total = time.perf_counter() - t0
    err = camera_errors(cameras, truth)
    run = {"seconds": round(total, 2), **timings, "registered": err.matched,
           "rotation_deg_mean": round(err.rotation_deg_mean, 3),
           "rotation_deg_max": round(err.rotation_deg_max, 3),
           "focal_rel": round(err.focal_rel, 5), "load": os.getloadavg()}
    print(f"{'baseline':>10}: {total:5.1f} s (extract {timings['extract_s']:.1f}, match "
          f"{timings['match_s']:.1f}, map {timings['map_s']:.1f}, undistort {timings['undistort_s']:.1f})"
          f"; registered {err.matched}/{len(frames.frame_names)}; rotation error mean "
          f"{err.rotation_deg_mean:.3f} deg max {err.rotation_deg_max:.3f}; focal error "
          f"{100 * err.focal_rel:.2f}%; load {_load()}")
    return run


def _failed_run(name: str, exc: Exception, t0: float) -> dict[str, Any]:
    """A variant whose reconstruction was refused: the reason and the time it took; prints its line."""
    run = {"error": str(exc), "seconds": round(time.perf_counter() - t0, 2), "load": os.getloadavg()}
    print(f"{name:>10}: FAILED after {run['seconds']} s: {exc}")
    return run


def _variant_run(name: str, scene: SceneData, total: float, truth: list[Camera], n_frames: int) -> dict[str, Any]:
    """A variant's timings, errors against the true cameras and SfM statistics; prints its line."""
    from tests.support.synthetic import camera_errors

    err = camera_errors(scene.cameras, truth)
    run = {"seconds": round(total, 2), **scene.extras["timings_s"], "registered": err.matched,
           "rotation_deg_mean": round(err.rotation_deg_mean, 3),
           "rotation_deg_max": round(err.rotation_deg_max, 3),
           "position_rel_mean": round(err.position_rel_mean, 5), "focal_rel": round(err.focal_rel, 5),
           "points": scene.extras["points_kept"], "min_num_inliers": scene.extras["min_num_inliers"],
           "sift_first_octave": scene.extras["sift_first_octave"],
           "median_keypoints": scene.extras["median_keypoints"], "load": os.getloadavg()}
    print(f"{name:>10}: {total:5.1f} s (extract {run['extract_s']:.1f}, match {run['match_s']:.1f}, "
          f"map {run['map_s']:.1f}, undistort {run['undistort_s']:.1f}); registered "
          f"{err.matched}/{n_frames}; rotation error mean {err.rotation_deg_mean:.3f} deg "
          f"max {err.rotation_deg_max:.3f}; focal error {100 * err.focal_rel:.2f}%; "
          f"{run['points']} points; load {_load()}")
    return run


def _pycolmap_defaults(frames_dir: Path, names: list[str], work: Path) -> tuple[dict[str, float], list[Any]]:
    import zlib  # noqa: F401 - before pycolmap, see vidscene.pipeline.colmap

    import numpy as np
    import pycolmap

    from vidscene.pipeline.cameras import Camera

    work.mkdir(parents=True, exist_ok=True)
    db = work / "database.db"
    db.unlink(missing_ok=True)
    pycolmap.logging.minloglevel = 2
    timings = {}
    t0 = time.perf_counter()
    pycolmap.extract_features(db, frames_dir, image_names=names, camera_mode=pycolmap.CameraMode.SINGLE,
                              device=pycolmap.Device.cpu)
    timings["extract_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pycolmap.match_sequential(db, device=pycolmap.Device.cpu)
    timings["match_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    (work / "sparse").mkdir(exist_ok=True)
    models = pycolmap.incremental_mapping(db, frames_dir, work / "sparse")
    best = max(models.values(), key=lambda r: r.num_reg_images())
    timings["map_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    (work / "model").mkdir(exist_ok=True)
    best.write(work / "model")
    pycolmap.undistort_images(work / "undistorted", work / "model", frames_dir)
    undistorted = pycolmap.Reconstruction(work / "undistorted" / "sparse")
    timings["undistort_s"] = time.perf_counter() - t0
    cameras = []
    for image in undistorted.images.values():
        cam = undistorted.cameras[image.camera_id]
        fx, fy, cx, cy = (float(v) for v in cam.params)
        pose = image.cam_from_world()
        cameras.append(Camera(width=int(cam.width), height=int(cam.height), fx=fx, fy=fy, cx=cx, cy=cy,
                              R=np.asarray(pose.rotation.matrix()), t=np.asarray(pose.translation),
                              image_name=image.name))
    return {k: round(v, 2) for k, v in timings.items()}, cameras


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
