"""Benchmark: TensoRF on a synthetic video, end to end (frames -> SfM -> train -> export), for both capture
shapes: an orbit round a room (world-space box) and a hand-held forward-facing clip over a table (NDC).

Prints seconds per stage, s/iteration, held-out PSNR/SSIM at working size, grid size, the
point cloud's size and how textured the video is, peak RSS and the load average (the development machines
are shared: figures without the load are meaningless).

    python bench/tensorf.py                          # preview preset, 10 s 480x360 orbit video, SfM poses
    python bench/tensorf.py --shape forward          # 3 s 384x288 hand-held forward-facing clip (79 frames)
    python bench/tensorf.py --poses truth            # skip SfM: true cameras, points from true depth
    python bench/tensorf.py --device cuda --preset quality   # the paper's budget on a GPU

The script re-executes itself with the allocator settings the worker uses (docs/measured.md) and with
``OMP_WAIT_POLICY=PASSIVE``: on a CPU shared with other work, spinning OpenMP threads made small PyTorch
kernels 30x slower here. ``--work-dir`` keeps the video, frames and SfM result for the next run.
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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support

from measured_quality import measured_quality
from progress_print import progress_printer

from vidscene.work_env import reexec_with_work_env

if TYPE_CHECKING:  # imported for real after reexec_with_work_env, in the functions that need them
    from vidscene.pipeline.cameras import Camera, SceneData
    from vidscene.pipeline.config import ExportConfig
    from vidscene.pipeline.frames import FramesResult
    from vidscene.pipeline.tensorf.config import TensorfConfig

# Video size, frame count and rate of each capture shape (``--width`` etc. override them).
SHAPES: dict[str, dict[str, int]] = {
    "orbit": {"width": 480, "height": 360, "frames": 120, "fps": 12},
    # As the real clip of the issue: 3 s at 384x288, 79 frames, all registered by SfM.
    "forward": {"width": 384, "height": 288, "frames": 79, "fps": 26},
}


def main() -> None:
    args = _parse_args()
    reexec_with_work_env(sys.argv)

    import torch

    from vidscene.pipeline.cameras import SceneData
    from vidscene.pipeline.presets import preset_config
    from vidscene.pipeline.tensorf.train import train_tensorf

    if args.threads:
        torch.set_num_threads(args.threads)
    config = preset_config(args.preset, device=args.device)
    cfg = _tensorf_config(config.tensorf, args)

    tmp = tempfile.TemporaryDirectory(prefix="bench-tensorf-") if args.work_dir is None else None
    root = args.work_dir or Path(tmp.name if tmp else ".")
    root.mkdir(parents=True, exist_ok=True)
    figures: dict[str, object] = {"shape": args.shape, "preset": args.preset, "poses": args.poses,
                                  "config": cfg.__dict__,
                                  "threads": torch.get_num_threads()}
    progress = progress_printer()

    started = time.monotonic()
    scene = SceneData.load(args.scene) if args.scene is not None else _prepare_scene(args, root, config, figures)
    figures["sfm_points"] = int(scene.points.shape[0])

    t = time.monotonic()
    # A kept work dir keeps the video, frames and SfM result, never a trained model: every run trains afresh.
    shutil.rmtree(root / "train", ignore_errors=True)
    result = train_tensorf(scene, cfg, root / "train", save_iterations=[], device=args.device, progress=progress)
    figures["train_s"] = round(time.monotonic() - t, 1)
    figures["metrics"] = result.metrics
    _print_training(cfg, figures["train_s"], result.metrics)
    measured_quality("tensorf", result.checkpoint, scene, replace(config, tensorf=cfg), figures)

    if not args.no_export:
        _export(result.checkpoint, scene, config.export, root, args, figures)
    figures["total_s"] = round(time.monotonic() - started, 1)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if torch.cuda.is_available():
        figures["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    figures["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(f"export: {figures.get('export_s')} s; end to end (frames..export): {figures['total_s']} s; "
          f"peak RSS {figures['peak_rss_mb']} MB; peak CUDA {figures.get('peak_cuda_mb')} MB; "
          f"load average {figures['loadavg']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    if tmp is not None:
        tmp.cleanup()


def _parse_args() -> argparse.Namespace:
    """The command line, with the video size, frame count and rate the shape gives where none was given."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="preview", choices=["preview", "standard", "quality"])
    parser.add_argument("--poses", default="sfm", choices=["sfm", "truth"])
    parser.add_argument("--shape", default="orbit", choices=list(SHAPES),
                        help="orbit: a 120-degree arc round a room; forward: a 36-degree hand-held sweep over a table")
    parser.add_argument("--width", type=int, help="video width (default: the shape's)")
    parser.add_argument("--height", type=int, help="video height (default: the shape's)")
    parser.add_argument("--frames", type=int, help="video frames (default: the shape's)")
    parser.add_argument("--fps", type=int, help="video frame rate (default: the shape's)")
    parser.add_argument("--iterations", type=int, help="override the preset's iteration count")
    parser.add_argument("--max-long-side", type=int, help="override the training resolution")
    parser.add_argument("--grid-final", type=int, help="override the final grid (voxels per axis)")
    parser.add_argument("--batch-rays", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="set a TensorfConfig field, e.g. --set step_ratio=1.0 --set 'alpha_mask_fractions=[0.1]'")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: PyTorch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work-dir", type=Path, help="keep files here (default: a temporary directory)")
    parser.add_argument("--scene", type=Path, help="train on a saved SceneData directory (skips video, frames, SfM)")
    parser.add_argument("--no-video", action="store_true", help="skip rendering the output video")
    parser.add_argument("--no-export", action="store_true", help="stop after training")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    for key, value in SHAPES[args.shape].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def _tensorf_config(cfg: TensorfConfig, args: argparse.Namespace) -> TensorfConfig:
    """The preset's training configuration with the command line's overrides (``--set`` last)."""
    if args.iterations:
        cfg = replace(cfg, iterations=args.iterations)
    if args.max_long_side:
        cfg = replace(cfg, max_long_side=args.max_long_side)
    if args.grid_final:
        cfg = replace(cfg, grid_final=args.grid_final)
    if args.batch_rays:
        cfg = replace(cfg, batch_rays=args.batch_rays)
    for item in args.set:
        key, _, value = item.partition("=")
        parsed = json.loads(value)
        cfg = replace(cfg, **{key: tuple(parsed) if isinstance(parsed, list) else parsed})  # type: ignore[arg-type]  # values are checked by use
    return cfg



def _print_training(cfg: TensorfConfig, train_s: object, m: dict[str, float]) -> None:
    print(f"train: {cfg.iterations} it at long side {cfg.max_long_side} in {train_s} s "
          f"({m['s_per_it']:.3f} s/it), grid {int(m['grid_voxels'])} voxels, NDC {bool(m.get('ndc'))}", flush=True)


def _export(checkpoint: Path, scene: SceneData, export_config: ExportConfig, root: Path, args: argparse.Namespace,
            figures: dict[str, object]) -> None:
    """The point cloud, checkpoint and (unless ``--no-video``) video into ``root/out``; records and prints their
    figures."""
    from vidscene.pipeline.tensorf.outputs import export_outputs

    t = time.monotonic()
    requests = {"point_cloud": root / "out" / "scene.ply", "model": root / "out" / "scene.th"}
    if not args.no_video:
        requests["video"] = root / "out" / "scene.mp4"
    export_outputs(checkpoint, scene, requests, export_config, device=args.device)
    figures["export_s"] = round(time.monotonic() - t, 1)
    figures.update(_output_figures(requests))
    print(f"outputs: {figures['points']} points in the point cloud; video frames' spatial std "
          f"{figures.get('video_std', 'n/a')} grey levels (0: a flat video)", flush=True)


def _output_figures(requests: dict[str, Path]) -> dict[str, object]:
    """Point count of the exported cloud and the mean spatial std of the video frames (what 'grey' means)."""
    import av
    from plyfile import PlyData

    out: dict[str, object] = {"points": int(PlyData.read(str(requests["point_cloud"]))["vertex"].count)}
    if "video" in requests:
        with av.open(str(requests["video"])) as container:
            stds = [float(f.to_ndarray(format="rgb24").reshape(-1, 3).std(axis=0).mean())
                    for f in container.decode(video=0)]
        out["video_std"] = round(sum(stds) / len(stds), 1)
        out["video_frames"] = len(stds)
    return out


def _prepare_scene(args: argparse.Namespace, root: Path, config: Any, figures: dict[str, object]) -> Any:
    """Synthetic video -> frames -> SfM (or true poses), cached in ``root`` for the next run."""
    from tests.support.videos import make_forward_video, make_orbit_video
    from vidscene.pipeline.cameras import Camera, SceneData
    from vidscene.pipeline.frames import extract_frames

    n_frames = args.frames
    t0 = time.monotonic()
    stem = f"{args.shape}_{args.width}x{args.height}_{n_frames}_{args.fps}"
    video_path, cams_path = root / f"{stem}.mp4", root / f"{stem}.cameras.json"
    make_video = make_orbit_video if args.shape == "orbit" else make_forward_video
    if video_path.is_file() and cams_path.is_file():
        true_cameras = [Camera.from_json(c) for c in json.loads(cams_path.read_text())]
    else:
        video = make_video(video_path, width=args.width, height=args.height, n_frames=n_frames, fps=args.fps)
        true_cameras = video.cameras
        cams_path.write_text(json.dumps([c.to_json() for c in true_cameras]))
    figures["make_video_s"] = round(time.monotonic() - t0, 1)
    print(f"synthetic video: {n_frames} frames {args.width}x{args.height} in {figures['make_video_s']} s", flush=True)

    t = time.monotonic()
    frames = extract_frames(video_path, root / f"frames_{stem}", root / "thumb.jpg", config.frames)
    figures["frames_s"] = round(time.monotonic() - t, 1)
    print(f"frames: {len(frames.frame_names)} at {frames.width}x{frames.height} in {figures['frames_s']} s")

    t = time.monotonic()
    sfm_dir = root / f"sfm_{stem}_{args.poses}"
    if SceneData.exists(sfm_dir):
        scene = SceneData.load(sfm_dir)
    elif args.poses == "sfm":
        from vidscene.pipeline.sfm import reconstruct

        scene = reconstruct(frames, sfm_dir, config.sfm)
    else:
        scene = _true_pose_scene(args.shape, frames, true_cameras)
    figures["sfm_s"] = round(time.monotonic() - t, 1)
    figures["sfm_points"] = int(scene.points.shape[0])
    print(f"poses ({args.poses}): {len(scene.cameras)} cameras, {scene.points.shape[0]} points "
          f"in {figures['sfm_s']} s", flush=True)
    return scene


def _true_pose_scene(shape: str, frames: FramesResult, true_cameras: list[Camera]) -> SceneData:
    """The frames with the video's true cameras, and true surface points standing in for SfM's."""
    import numpy as np

    from tests.support.synthetic import SyntheticScene, TabletopScene
    from vidscene.pipeline.cameras import SceneData

    cams = [replace(true_cameras[i].scaled(frames.width, frames.height), image_name=name)
            for i, name in zip(frames.source_frame_indices, frames.frame_names, strict=True)]
    # Stand-in for SfM's sparse points: true surface points under random pixels of every 4th frame.
    synthetic = SyntheticScene(0) if shape == "orbit" else TabletopScene(0)
    rng, pts = np.random.default_rng(0), []
    for cam in cams[::4]:
        small = cam.scaled(cam.width // 4, cam.height // 4)
        depth = synthetic.depth(small)
        v, u = rng.integers(0, small.height, 200), rng.integers(0, small.width, 200)
        z = depth[v, u]
        x_cam = np.stack([(u + 0.5 - small.cx) / small.fx * z, (v + 0.5 - small.cy) / small.fy * z, z], -1)
        pts.append((x_cam - small.t) @ small.R)
    points = np.concatenate(pts).astype(np.float32)
    return SceneData(cameras=cams, images_dir=frames.frames_dir, points=points,
                     colors=np.full(points.shape, 128, np.uint8))


if __name__ == "__main__":
    main()
