"""Benchmark: Gaussian splatting on a synthetic orbit video, end to end (frames -> SfM -> train -> export).

Prints seconds per stage, s/iteration, held-out PSNR/SSIM at working size, gaussian count, peak RSS and the load average
(the development machines are shared: figures without the load are meaningless).

    python bench/gaussian.py                       # preview preset, 10 s 480x360 video, SfM poses
    python bench/gaussian.py --poses truth         # skip SfM: ground-truth cameras, random initial points
    python bench/gaussian.py --iterations 600 --max-long-side 160

Run with the allocator and OpenMP settings the worker uses (vidscene.work_env.WORK_ENV); the script re-executes
itself with them when they are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support

from measured_quality import measured_quality
from progress_print import progress_printer

from vidscene.work_env import reexec_with_work_env

if TYPE_CHECKING:  # imported for real after reexec_with_work_env, in the functions that need them
    from vidscene.pipeline.cameras import Camera, SceneData
    from vidscene.pipeline.config import ExportConfig, SfmConfig
    from vidscene.pipeline.frames import FramesResult
    from vidscene.pipeline.gaussian.config import GaussianConfig


def main() -> None:
    args = _parse_args()
    reexec_with_work_env(sys.argv)

    # The trainer and exporter are loaded here, before any clock starts: importing torch takes seconds that
    # no figure should include.
    from vidscene.pipeline.frames import extract_frames
    from vidscene.pipeline.gaussian import outputs, train  # noqa: F401  (see above; used in _train, _export)
    from vidscene.pipeline.presets import preset_config

    config = preset_config(args.preset, device=args.device)
    g = _gaussian_config(config.gaussian, args)

    tmp = tempfile.TemporaryDirectory(prefix="bench-gaussian-") if args.work_dir is None else None
    root = args.work_dir or Path(tmp.name if tmp else ".")
    root.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {"preset": args.preset, "poses": args.poses, "config": g.__dict__}
    progress = progress_printer()

    n_frames = round(args.seconds * args.fps)
    t0 = time.monotonic()
    video_path, true_cameras = _orbit_video(root, args, n_frames)
    figures["make_video_s"] = round(time.monotonic() - t0, 1)
    print(f"synthetic video: {n_frames} frames {args.width}x{args.height} in {figures['make_video_s']} s")

    started = time.monotonic()
    frames = extract_frames(video_path, root / "frames", root / "thumb.jpg", config.frames)
    figures["frames_s"] = round(time.monotonic() - started, 1)
    print(f"frames: {len(frames.frame_names)} at {frames.width}x{frames.height} in {figures['frames_s']} s")

    t = time.monotonic()
    scene = _posed_scene(args.poses, frames, true_cameras, root, config.sfm)
    figures["sfm_s"] = round(time.monotonic() - t, 1)
    figures["sfm_points"] = int(scene.points.shape[0])
    print(f"poses ({args.poses}): {len(scene.cameras)} cameras, {scene.points.shape[0]} points "
          f"in {figures['sfm_s']} s")

    checkpoint = _train(scene, g, root, args.device, progress, figures)
    measured_quality("gaussian", checkpoint, scene, replace(config, gaussian=g), figures)
    _export(checkpoint, scene, config.export, root, args, figures)
    figures["total_s"] = round(time.monotonic() - started, 1)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    figures["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(f"export: {figures['export_s']} s; end to end (frames..export): {figures['total_s']} s; "
          f"peak RSS {figures['peak_rss_mb']} MB; load average {figures['loadavg']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    if tmp is not None:
        tmp.cleanup()


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="preview", choices=["preview", "standard", "quality"])
    parser.add_argument("--poses", default="sfm", choices=["sfm", "truth"])
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--seconds", type=float, default=10.0, help="video length")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--iterations", type=int, help="override the preset's iteration count")
    parser.add_argument("--max-long-side", type=int, help="override the training resolution")
    parser.add_argument("--max-gaussians", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work-dir", type=Path, help="keep files here (default: a temporary directory)")
    parser.add_argument("--no-video", action="store_true", help="skip rendering the output video")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    return parser.parse_args()


def _gaussian_config(g: GaussianConfig, args: argparse.Namespace) -> GaussianConfig:
    """The preset's training configuration with the command line's overrides."""
    if args.iterations:
        g = replace(g, iterations=args.iterations, densify_stop=min(g.densify_stop, int(args.iterations * 0.75)))
    if args.max_long_side:
        g = replace(g, max_long_side=args.max_long_side)
    if args.max_gaussians:
        g = replace(g, max_gaussians=args.max_gaussians)
    return g


def _orbit_video(root: Path, args: argparse.Namespace, n_frames: int) -> tuple[Path, list[Camera]]:
    """The synthetic orbit video and its true cameras, made once per size and kept in ``root``."""
    from tests.support.videos import make_orbit_video
    from vidscene.pipeline.cameras import Camera

    # Ray-casting the video takes minutes on a busy machine: keep it (and its true cameras) in the work dir.
    stem = f"orbit_{args.width}x{args.height}_{n_frames}_{args.fps}"
    video_path, cams_path = root / f"{stem}.mp4", root / f"{stem}.cameras.json"
    if video_path.is_file() and cams_path.is_file():
        true_cameras = [Camera.from_json(c) for c in json.loads(cams_path.read_text())]
    else:
        video = make_orbit_video(video_path, width=args.width, height=args.height, n_frames=n_frames,
                                 fps=args.fps)
        true_cameras = video.cameras
        cams_path.write_text(json.dumps([c.to_json() for c in true_cameras]))
    return video_path, true_cameras


def _posed_scene(poses: str, frames: FramesResult, true_cameras: list[Camera], root: Path,
                 sfm_config: SfmConfig) -> SceneData:
    """The frames posed by SfM, or (``truth``) by the video's true cameras with no initial points."""
    if poses == "sfm":
        from vidscene.pipeline.sfm import reconstruct

        return reconstruct(frames, root / "sfm", sfm_config)
    import numpy as np

    from vidscene.pipeline.cameras import SceneData

    cams = [replace(true_cameras[i].scaled(frames.width, frames.height), image_name=name)
            for i, name in zip(frames.source_frame_indices, frames.frame_names, strict=True)]
    return SceneData(cameras=cams, images_dir=frames.frames_dir, points=np.zeros((0, 3), np.float32),
                     colors=np.zeros((0, 3), np.uint8))


def _train(scene: SceneData, g: GaussianConfig, root: Path, device: str, progress: Callable[..., None],
           figures: dict[str, object]) -> Path:
    """Train from scratch in ``root/train``; records and prints the figures; returns the final checkpoint."""
    from vidscene.pipeline.gaussian.train import train_gaussians

    shutil.rmtree(root / "train", ignore_errors=True)  # a benchmark trains from scratch, never resumes
    t = time.monotonic()
    result = train_gaussians(scene, g, root / "train", save_iterations=[], device=device, progress=progress)
    figures["train_s"] = round(time.monotonic() - t, 1)
    figures["metrics"] = result.metrics
    m = result.metrics
    print(f"train: {g.iterations} it at long side {g.max_long_side} in {figures['train_s']} s "
          f"({m['s_per_it']:.3f} s/it), {int(m['n_gaussians'])} gaussians")
    return result.checkpoint



def _export(checkpoint: Path, scene: SceneData, export_config: ExportConfig, root: Path, args: argparse.Namespace,
            figures: dict[str, object]) -> None:
    """Every output a gaussian scene offers (the video unless ``--no-video``) into ``root/out``, timed."""
    from vidscene.pipeline.gaussian.outputs import export_outputs

    t = time.monotonic()
    requests = {"splat_cloud": root / "out" / "scene.splat", "point_cloud": root / "out" / "scene.ply",
                "model": root / "out" / "scene.ckpt"}
    if not args.no_video:
        requests["video"] = root / "out" / "scene.mp4"
    export_outputs(checkpoint, scene, requests, export_config, device=args.device)
    figures["export_s"] = round(time.monotonic() - t, 1)


if __name__ == "__main__":
    main()
