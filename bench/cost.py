"""Benchmark: what each preset costs end to end, and what the app promised for it (issue 25).

Per clip, preset and strategy, through the product's own stages: wall and CPU seconds of frames (with the
capture check), SfM, training (with the final iteration's export and quality figure) and export, wall and CPU
s/iteration over the first and the last tenth of training, gaussians (the most held and the final count),
peak RSS of this process (everything runs in it), held-out PSNR/SSIM, and
the time ``jobs.estimates`` promises for that preset and that video's length (the reference CPU's figures: a
server without measurements of its own promises exactly this) next to the actual time, per stage.

    python bench/cost.py --work-dir /tmp/cost                                   # orbit, preview, default strategy
    python bench/cost.py --work-dir /tmp/cost --clip forward --strategy adaptive --strategy mcmc
    nice python bench/cost.py --work-dir /tmp/cost --clip portrait10 --preset standard

Clips: ``orbit`` (plain, 10 s 480x360) and ``portrait``/``portrait10`` (3 s / 10 s 1080x1920 phone clips) are
``bench/quality.py``'s; ``forward`` is a texture-rich forward-facing 10 s 640x480 sweep over a table (1024 px
textures). Frames and SfM are redone for every run (they are part of the end-to-end time); the clips are cached
in the work dir.
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
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support

from quality import make_clip

from vidscene.work_env import reexec_with_work_env

STAGES = ("frames", "sfm", "train", "export")


class Rate:
    """Progress callback keeping (iteration, wall time, CPU time, gaussians) at every report, for the cost of a
    step at the start and at the end of training and the count it had there."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float, float, int]] = []

    def __call__(self, position: int, total: int, message: str = "") -> None:
        words = message.split()
        count = int(words[words.index("gaussians") + 1]) if "gaussians" in words[:-1] else -1
        self.points.append((position, time.monotonic(), time.process_time(), count))

    def per_iteration(self, lo: float, hi: float, column: int) -> float | None:
        """Mean seconds per iteration (``column`` 1: wall, 2: CPU) between fractions ``lo`` and ``hi`` of the
        run."""
        total = self.points[-1][0] if self.points else 0
        inside = [p for p in self.points if lo * total <= p[0] <= hi * total]
        if len(inside) < 2 or inside[-1][0] == inside[0][0]:
            return None
        return (inside[-1][column] - inside[0][column]) / (inside[-1][0] - inside[0][0])

    def max_gaussians(self) -> int:
        return max((p[3] for p in self.points), default=-1)


def peak_rss_mb() -> int:
    """This process's peak RSS so far (everything a run does happens in it)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class Clock:
    """Wall and CPU seconds (``time.process_time``: every thread of this process, where all stages run) of
    each stage. CPU seconds are the figure to compare on a shared machine: the load stretches wall time, but
    hardly the work done."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak_mb: dict[str, int] = {}  # the process's peak RSS so far at the end of each stage
        self._started = (0.0, 0.0)

    def start(self) -> None:
        self._started = (time.monotonic(), time.process_time())

    def stop(self, stage: str) -> None:
        self.wall[stage] = time.monotonic() - self._started[0]
        self.cpu[stage] = time.process_time() - self._started[1]
        self.peak_mb[stage] = peak_rss_mb()


def run_one(clip: str, preset: str, strategy: Literal["adaptive", "mcmc"] | None, root: Path,
            iterations: int | None = None) -> dict[str, Any]:
    """One clip through the product's own stages (``pipeline.scene.STAGES``, as ``vidscene run`` and the
    workers call them): the capture check, the settings the train stage picks from it (colour maps only for a
    drifting capture), and the export and quality figure of the final iteration inside the train stage."""
    from vidscene import catalogue
    from vidscene.pipeline.presets import preset_config
    from vidscene.pipeline.progress import no_progress
    from vidscene.pipeline.scene import STAGES as PIPELINE
    from vidscene.pipeline.scene import SceneWork
    from vidscene.storage.local import SceneFiles

    video = make_clip(clip, root)
    config = preset_config(preset, device="cpu")
    if strategy:
        config = replace(config, gaussian=replace(config.gaussian, strategy=strategy))
    g = config.gaussian
    directory = root / f"{clip}-{preset}-{g.strategy}"
    shutil.rmtree(directory, ignore_errors=True)
    work = SceneWork.create(scene_id=directory.name, video=video, files=SceneFiles(directory),
                            training_mode="gaussian", output_types=catalogue.PRESETS[preset].outputs_for("gaussian"),
                            save_iterations=[], total_iterations=iterations or g.iterations, config=config)
    work.files.create()
    clock, rate = Clock(), Rate()
    for name, stage in PIPELINE.items():
        clock.start()
        stage(work, rate if name == "train" else no_progress)
        clock.stop(name)
    total = work.total_iterations
    quality = work.files.read_metrics()[total]
    report = work.files.read_capture_report() or {}
    return {"clip": clip, "preset": preset, "strategy": g.strategy, "cap": g.max_gaussians,
            "iterations": total, "frames_kept": len(list(work.files.frames_dir.glob("*.png"))),
            "capture_check": [p["code"] for p in report.get("problems", [])],
            "seconds": {k: round(v, 1) for k, v in clock.wall.items()},
            "end_to_end_s": round(sum(clock.wall.values()), 1),
            "cpu_seconds": {k: round(v, 1) for k, v in clock.cpu.items()},
            "end_to_end_cpu_s": round(sum(clock.cpu.values()), 1),
            "s_per_it_start": _round(rate.per_iteration(0.0, 0.1, 1)),
            "s_per_it_end": _round(rate.per_iteration(0.9, 1.0, 1)),
            "cpu_s_per_it_start": _round(rate.per_iteration(0.0, 0.1, 2)),
            "cpu_s_per_it_end": _round(rate.per_iteration(0.9, 1.0, 2)),
            "gaussians": quality.get("gaussians"), "most_gaussians": rate.max_gaussians(),
            "psnr": round(quality["psnr"], 2), "ssim": round(quality["ssim"], 4),
            "resolution": list(quality["resolution"]),
            "peak_rss_mb": peak_rss_mb(),
            "peak_rss_mb_after": clock.peak_mb,  # one clip per process: later clips' peaks include earlier ones
            **promise(video, preset, total, sum(clock.wall.values())),
            "torch_threads": torch_threads(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def promise(video: Path, preset: str, iterations: int, end_to_end: float) -> dict[str, Any]:
    """What ``jobs.estimates`` promises for this preset and this video's length on a server without
    measurements of its own (the reference CPU's figures), per stage, against the actual wall time."""
    from vidscene.db.models import Stage
    from vidscene.jobs import estimates
    from vidscene.probe import probe_video

    source_frames = probe_video(video).frame_count
    promised = estimates.reference_costs("gaussian", preset, source_frames)
    per_stage = {s: promised.stage_seconds(Stage(s), iterations) for s in STAGES}
    total = promised.total_seconds(iterations)
    return {"source_frames": source_frames, "promised": {k: _round(v, 1) for k, v in per_stage.items()},
            "promised_total_s": _round(total, 1),
            "actual_over_promised": _round(end_to_end / total, 2) if total else None}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", action="append", choices=["orbit", "portrait", "portrait10", "forward"],
                        help="repeatable; default orbit")
    parser.add_argument("--preset", action="append", choices=["preview", "standard", "quality"],
                        help="repeatable; default preview")
    parser.add_argument("--strategy", action="append", choices=["adaptive", "mcmc"],
                        help="repeatable, alternated per clip; default the preset's")
    parser.add_argument("--iterations", type=int, help="a shorter run (smoke tests); the schedule scales to it")
    parser.add_argument("--work-dir", type=Path, required=True, help="cache of the clips")
    parser.add_argument("--json", type=Path, help="append one JSON line per run here")
    args = parser.parse_args()
    reexec_with_work_env(sys.argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    for clip in args.clip or ["orbit"]:
        for preset in args.preset or ["preview"]:
            for strategy in args.strategy or [None]:
                row = run_one(clip, preset, strategy, args.work_dir, args.iterations)
                print(json.dumps(row), flush=True)
                if args.json:
                    with args.json.open("a") as f:
                        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
