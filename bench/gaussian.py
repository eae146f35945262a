"""Benchmark: Gaussian splatting on a synthetic orbit video, end to end (frames -> SfM -> train -> export).

Prints seconds per stage, s/iteration, held-out PSNR/SSIM, gaussian count, peak RSS and the load average
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
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support

from vidscene.work_env import reexec_with_work_env


def main() -> None:
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
    args = parser.parse_args()
    reexec_with_work_env(sys.argv)

    from tests.support.videos import make_orbit_video
    from vidscene.pipeline.cameras import Camera, SceneData
    from vidscene.pipeline.config import PipelineConfig
    from vidscene.pipeline.frames import extract_frames
    from vidscene.pipeline.gaussian.outputs import export_outputs
    from vidscene.pipeline.gaussian.train import train_gaussians

    config = PipelineConfig.for_preset(args.preset, device=args.device)
    g = config.gaussian
    if args.iterations:
        g = replace(g, iterations=args.iterations, densify_stop=min(g.densify_stop, int(args.iterations * 0.75)))
    if args.max_long_side:
        g = replace(g, max_long_side=args.max_long_side)
    if args.max_gaussians:
        g = replace(g, max_gaussians=args.max_gaussians)

    tmp = tempfile.TemporaryDirectory(prefix="bench-gaussian-") if args.work_dir is None else None
    root = args.work_dir or Path(tmp.name if tmp else ".")
    root.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {"preset": args.preset, "poses": args.poses, "config": g.__dict__}
    last = [time.monotonic()]

    def progress(position: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] > 15 or position == total:
            print(f"  {position}/{total} {message}", flush=True)
            last[0] = now

    n_frames = round(args.seconds * args.fps)
    t0 = time.monotonic()
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
    figures["make_video_s"] = round(time.monotonic() - t0, 1)
    print(f"synthetic video: {n_frames} frames {args.width}x{args.height} in {figures['make_video_s']} s")

    started = time.monotonic()
    frames = extract_frames(video_path, root / "frames", root / "thumb.jpg", config.frames)
    figures["frames_s"] = round(time.monotonic() - started, 1)
    print(f"frames: {len(frames.frame_names)} at {frames.width}x{frames.height} in {figures['frames_s']} s")

    t = time.monotonic()
    if args.poses == "sfm":
        from vidscene.pipeline.sfm import reconstruct

        scene = reconstruct(frames, root / "sfm", config.sfm)
    else:
        import numpy as np

        cams = [replace(true_cameras[i].scaled(frames.width, frames.height), image_name=name)
                for i, name in zip(frames.source_frame_indices, frames.frame_names, strict=True)]
        scene = SceneData(cameras=cams, images_dir=frames.frames_dir, points=np.zeros((0, 3), np.float32),
                          colors=np.zeros((0, 3), np.uint8))
    figures["sfm_s"] = round(time.monotonic() - t, 1)
    figures["sfm_points"] = int(scene.points.shape[0])
    print(f"poses ({args.poses}): {len(scene.cameras)} cameras, {scene.points.shape[0]} points "
          f"in {figures['sfm_s']} s")

    import shutil

    shutil.rmtree(root / "train", ignore_errors=True)  # a benchmark trains from scratch, never resumes
    t = time.monotonic()
    result = train_gaussians(scene, g, root / "train", save_iterations=[], device=args.device, progress=progress)
    figures["train_s"] = round(time.monotonic() - t, 1)
    figures["metrics"] = result.metrics
    m = result.metrics
    print(f"train: {g.iterations} it at long side {g.max_long_side} in {figures['train_s']} s "
          f"({m['s_per_it']:.3f} s/it), {int(m['n_gaussians'])} gaussians, "
          f"held-out PSNR {m['psnr']:.2f} dB SSIM {m['ssim']:.3f} ({int(m['eval_views'])} views)")

    t = time.monotonic()
    requests = {"splat_cloud": root / "out" / "scene.splat", "point_cloud": root / "out" / "scene.ply",
                "model": root / "out" / "scene.ckpt"}
    if not args.no_video:
        requests["video"] = root / "out" / "scene.mp4"
    export_outputs(result.checkpoint, scene, requests, config.export, device=args.device)
    figures["export_s"] = round(time.monotonic() - t, 1)
    figures["total_s"] = round(time.monotonic() - started, 1)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    figures["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(f"export: {figures['export_s']} s; end to end (frames..export): {figures['total_s']} s; "
          f"peak RSS {figures['peak_rss_mb']} MB; load average {figures['loadavg']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
