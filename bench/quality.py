"""Benchmark: what a person gets from each preset, measured on the exported model.

Per clip and preset: wall time of training, s/iteration, held-out PSNR/SSIM at the frames' working resolution
(``methods`` evaluation, the numbers the API serves), and, read back from the exported ``.ply`` (what a viewer
loads): gaussian count and needle share (opacity-weighted fraction of gaussians whose longest axis is more than
10x their middle one). Peak RSS is this process's (training runs in it). Frames and SfM are cached in the work
dir, so reruns (before/after a change) train on the same poses.

    python bench/quality.py --work-dir /tmp/q                          # orbit + portrait, preview
    python bench/quality.py --work-dir /tmp/q --clip orbit --iterations 300
    python bench/quality.py --work-dir /tmp/q --preset standard --clip orbit

Clips: ``orbit`` is bench/gaussian.py's 10 s 480x360 synthetic orbit; ``portrait`` a 3 s 1080x1920 HEVC clip of
the same scene stored landscape with a 90-degree rotation tag, like a phone's; ``portrait10`` the same at 10 s
(240 frames), the length issue 14.4's target is set for; ``forward`` a texture-rich forward-facing 10 s 640x480
sweep over a table (1024 px textures), another kind of content.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support

import numpy as np

from vidscene.work_env import reexec_with_work_env

NEEDLE_RATIO = 10.0


def needle_share_of_ply(path: Path) -> dict[str, float]:
    """Count and needle shares of a 3DGS ``.ply`` (log scales, opacity logits), as a viewer would read it."""
    from plyfile import PlyData

    v = PlyData.read(str(path))["vertex"]
    scales = np.exp(np.stack([np.asarray(v[f"scale_{i}"], np.float64) for i in range(3)], axis=1))
    opacity = 1.0 / (1.0 + np.exp(-np.asarray(v["opacity"], np.float64)))
    s = np.sort(scales, axis=1)
    needle = s[:, 2] > NEEDLE_RATIO * s[:, 1]
    return {"gaussians": float(len(opacity)), "needle_share": float(needle.mean()) if len(opacity) else 0.0,
            "needle_share_weighted": float((opacity * needle).sum() / max(opacity.sum(), 1e-12))}


def make_clip(clip: str, root: Path) -> Path:
    from tests.support.videos import make_forward_video, make_orbit_video

    if clip == "forward":  # texture-rich, forward-facing: a 10 s 640x480 sweep over a table, 1024 px textures
        path = root / "forward_640x480_240_24_rich.mp4"
        if not path.is_file():
            make_forward_video(path, width=640, height=480, n_frames=240, fps=24, texture_size=1024)
    elif clip == "orbit":
        path = root / "orbit_480x360_240_24.mp4"
        if not path.is_file():
            make_orbit_video(path, width=480, height=360, n_frames=240, fps=24)
    else:
        # Shown as 1080x1920 portrait, stored 1920x1080 with a display rotation, as phones write them
        # (``make_orbit_video`` takes the displayed size); ``portrait10`` is the 10 s phone clip.
        n_frames = 240 if clip == "portrait10" else 72
        path = root / f"portrait_1080x1920_{n_frames}_24_upright.mp4"
        if not path.is_file():
            make_orbit_video(path, width=1080, height=1920, n_frames=n_frames, fps=24, codec="libx265",
                             rotation=90, supersample=1)
    return path


def prepared_scene(clip: str, preset: str, root: Path) -> Any:
    """Frames and SfM for ``clip`` under ``preset``, cached in ``root/clip-preset``."""
    from vidscene.pipeline.cameras import SceneData
    from vidscene.pipeline.frames import extract_frames
    from vidscene.pipeline.presets import preset_config
    from vidscene.pipeline.sfm import reconstruct

    config = preset_config(preset)
    work = root / f"{clip}-{preset}"
    if SceneData.exists(work / "scene"):
        return SceneData.load(work / "scene")
    video = make_clip(clip, root)
    t = time.monotonic()
    frames = extract_frames(video, work / "frames", work / "thumb.jpg", config.frames)
    scene = reconstruct(frames, work / "sfm", config.sfm)
    scene.save(work / "scene")
    print(f"{clip}: {len(scene.cameras)} frames at {frames.width}x{frames.height}, {len(scene.points)} points, "
          f"frames+SfM {time.monotonic() - t:.1f} s", flush=True)
    return scene


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``name=value`` pairs for ``GaussianConfig`` fields (values read as JSON, else kept as strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def run_one(clip: str, preset: str, iterations: int | None, root: Path, tag: str,
            settings: dict[str, Any]) -> dict[str, Any]:
    from vidscene.pipeline.gaussian.outputs import export_outputs
    from vidscene.pipeline.gaussian.train import train_gaussians
    from vidscene.pipeline.methods import METHODS
    from vidscene.pipeline.presets import preset_config

    scene = prepared_scene(clip, preset, root)
    config = preset_config(preset, device="cpu")
    if iterations:
        config = config.with_iterations(iterations)
    if settings:
        config = replace(config, gaussian=replace(config.gaussian, **settings))
    g = config.gaussian
    work = root / f"{clip}-{preset}" / f"train-{tag}-{g.iterations}"
    shutil.rmtree(work, ignore_errors=True)  # a benchmark trains from scratch, never resumes
    t, cpu = time.monotonic(), time.process_time()
    result = train_gaussians(scene, g, work, save_iterations=[], device="cpu")
    train_s, train_cpu_s = time.monotonic() - t, time.process_time() - cpu
    quality = METHODS["gaussian"].evaluate(result.checkpoint, scene, config)
    raw = raw_scores(result.checkpoint, scene, config)
    ply = work / "scene.ply"
    t = time.monotonic()
    export_outputs(result.checkpoint, scene, {"point_cloud": ply}, config.export, device="cpu")
    export_s = time.monotonic() - t
    exported = needle_share_of_ply(ply)
    return {"clip": clip, "preset": preset, "tag": tag, "settings": settings, "iterations": g.iterations,
            "train_s": round(train_s, 1), "train_cpu_s": round(train_cpu_s, 1),
            "cpu_s_per_it": round(train_cpu_s / g.iterations, 4),
            "s_per_it": round(train_s / g.iterations, 4), "psnr": round(quality.psnr, 2),
            "ssim": round(quality.ssim, 4), "resolution": list(quality.resolution),
            "masked": round(quality.masked, 4), "psnr_raw": round(raw.psnr, 2), "ssim_raw": round(raw.ssim, 4),
            "trained_gaussians": int(result.metrics["n_gaussians"]), "exported_gaussians": int(exported["gaussians"]),
            "needle_share": round(exported["needle_share"], 4),
            "needle_share_weighted": round(exported["needle_share_weighted"], 4), "export_s": round(export_s, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def raw_scores(checkpoint: Path, scene: Any, config: Any) -> Any:
    """PSNR/SSIM as the product measured them before held-out frames were colour-fitted and moving content left
    out (every pixel, raw colours): the figure earlier rows of RESULTS compare with."""
    from vidscene.pipeline.evaluate import evaluation_views, measure
    from vidscene.pipeline.gaussian.method import drawing

    draw, _, _ = drawing(checkpoint, config)
    cameras, images, _ = evaluation_views(scene, config.gaussian.eval_every)
    return measure(draw, cameras, images, fit_colours=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", action="append", choices=["orbit", "portrait", "portrait10", "forward"],
                        help="repeatable; default both")
    parser.add_argument("--preset", action="append", choices=["preview", "standard", "quality"],
                        help="repeatable; default preview")
    parser.add_argument("--iterations", type=int, help="the run's length; the preset's schedule scales to it")
    parser.add_argument("--work-dir", type=Path, required=True, help="cache of clips, frames and SfM")
    parser.add_argument("--tag", default="run", help="names the training folder and the JSON rows")
    parser.add_argument("--json", type=Path, help="append one JSON line per run here")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a GaussianConfig field after the schedule is scaled (experiments)")
    args = parser.parse_args()
    reexec_with_work_env(sys.argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    for clip in args.clip or ["orbit", "portrait"]:
        for preset in args.preset or ["preview"]:
            row = run_one(clip, preset, args.iterations, args.work_dir, args.tag, parse_settings(args.set))
            print(json.dumps(row), flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
