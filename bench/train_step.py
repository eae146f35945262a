"""Benchmark: where one gaussian training step spends its time, on a trained model's real state.

Loads a checkpoint written by training (``bench/quality.py`` leaves ``.../train-TAG-N/checkpoints/N.ckpt``),
continues training it for ``--steps`` iterations on the same scene and prints seconds per iteration and the
operations that took the time (torch's profiler: the numba kernels show as ``_ProjectCPU``, ``_SHColorsCPU``,
``_RasterizeCPU`` and their ``Backward``, the optimizers as ``Optimizer.step#Adam.step``). Measuring on a
checkpoint rather than a fresh model matters: a step's cost follows the gaussian count and their footprints,
which only a trained model has (at standard, 300k gaussians after densification).

    python bench/train_step.py --work-dir /tmp/q --clip portrait10 --preset standard \\
        --checkpoint /tmp/q/portrait10-standard/train-base-7000/checkpoints/7000.ckpt --steps 40
    python bench/train_step.py ... --no-profile            # s/iteration only (for before/after runs)

Re-executes itself with the worker's allocator and OpenMP settings (``vidscene.work_env``), as bench/quality.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vidscene.work_env import reexec_with_work_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, required=True, help="bench/quality.py's cache of clips and SfM")
    parser.add_argument("--clip", default="portrait10", choices=["orbit", "portrait", "portrait10"])
    parser.add_argument("--preset", default="standard", choices=["preview", "standard", "quality"])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps run before timing (JIT, caches)")
    parser.add_argument("--no-profile", action="store_true", help="time only, no operator table")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    reexec_with_work_env(sys.argv)  # the allocator and OpenMP settings a worker trains with

    import quality
    import torch

    from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
    from vidscene.pipeline.gaussian.render import precompile_cpu
    from vidscene.pipeline.gaussian.train import GaussianTraining, configure_cpu_threads
    from vidscene.pipeline.presets import preset_config

    configure_cpu_threads()
    precompile_cpu()
    scene = quality.prepared_scene(args.clip, args.preset, args.work_dir)
    config = preset_config(args.preset, device="cpu").gaussian
    with tempfile.TemporaryDirectory() as tmp:
        runner = GaussianTraining(scene, config, Path(tmp), torch.device("cpu"))
        runner.restore(CHECKPOINTS.load(args.checkpoint))
        runner.update_filter()
        # Continue past the end of the schedule: no densification, full SH degree (what most steps are).
        runner.config = dataclasses.replace(config, iterations=10**9)
        for _ in range(args.warmup):
            runner.train_step()
        n = len(runner.gaussians)
        if args.no_profile:
            started = time.perf_counter()
            for _ in range(args.steps):
                runner.train_step()
            elapsed = time.perf_counter() - started
        else:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                started = time.perf_counter()
                for _ in range(args.steps):
                    runner.train_step()
                elapsed = time.perf_counter() - started
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
        cam = runner.cameras[runner.train_idx[0]]
        print(f"{args.clip}/{args.preset}: {n} gaussians at {cam.width}x{cam.height}, {args.steps} steps: "
              f"{elapsed / args.steps:.4f} s/iteration, load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
