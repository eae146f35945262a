"""Benchmark: what the robust loss's multi-view look-up (``gaussian/left_out.py``) costs a training step.

A step that flags blocks asks where the gaussians drawn there land in other views' verdicts. This times
``LeftOutHistory.failed`` alone on a frame with ``--flagged`` of its blocks flagged, ``--gaussians``
gaussians spread over the room the cameras look at, and ``--views`` recorded views of ``--size``: the
figure to set beside a training step's time at the same size (``bench/cost.py`` prints s/iteration), with
the gaussians projected here and with their positions given, as training passes the render's.

    python bench/left_out.py                              # preview: 480x270, 80 views, 30k gaussians
    python bench/left_out.py --size 480x360 --views 135 --gaussians 100000   # standard, a 4:3 clip
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.synthetic import LOOK_AT, orbit_cameras
from vidscene.pipeline.gaussian.left_out import LeftOutHistory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="480x270", help="training frame size WxH")
    parser.add_argument("--views", type=int, default=80, help="training views recorded")
    parser.add_argument("--gaussians", type=int, default=30_000)
    parser.add_argument("--flagged", type=float, default=0.15, help="share of the judged frame's blocks flagged")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    cameras = orbit_cameras(args.views, width, height, orbit_degrees=60.0)
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(args.gaussians, 3, generator=generator) * 0.5 + torch.as_tensor(LOOK_AT, dtype=torch.float32)
    opacities = torch.rand(args.gaussians, generator=generator)
    blocks = ((height + 7) // 8, (width + 7) // 8)
    history = LeftOutHistory()
    for view in range(args.views):
        history.record(view, torch.rand(blocks, generator=generator) < args.flagged)
    flagged = torch.rand(blocks, generator=generator) < args.flagged
    judged = args.views // 2
    camera = cameras[judged]
    cam = means.double().numpy() @ camera.R.T + camera.t
    screen = torch.from_numpy(np.stack([cam[:, 0] / cam[:, 2] * camera.fx + camera.cx,
                                        cam[:, 1] / cam[:, 2] * camera.fy + camera.cy], axis=-1)).float()
    figures = []
    for name, given in (("projecting every gaussian", None), ("with the render's screen positions", screen)):
        times = []
        for repeat in range(args.repeats + 5):
            started = time.perf_counter()
            history.failed(flagged, camera, means, opacities, cameras, view=judged, screen=given)
            if repeat >= 5:  # the first calls stack the cameras
                times.append((time.perf_counter() - started) * 1000)
        p90 = sorted(times)[int(0.9 * len(times))]
        figures.append(f"{name}: median {statistics.median(times):.2f} ms, p90 {p90:.2f}")
    print(f"{args.size}, {args.views} views, {args.gaussians} gaussians, {args.flagged:.0%} flagged, "
          f"{args.threads} threads, per step that flags anything: " + "; ".join(figures))


if __name__ == "__main__":
    main()
