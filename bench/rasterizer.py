"""Rasterizer benchmark: forward and forward+backward times of ``vidscene.pipeline.gaussian.render``.

Run by hand (not a test)::

    .venv/bin/python bench/rasterizer.py                      # CPU: 160x120 and 320x240, 7.6k and 20k gaussians
    .venv/bin/python bench/rasterizer.py --threads 1
    .venv/bin/python bench/rasterizer.py --device cuda        # gsplat at 1280x720 (needs vidscene[gpu])

The scene imitates what training sees after SfM initialisation: gaussians on a few surfaces (back wall, floor,
side wall, clutter) filling the view from 1.5 to 6 units away, sized from the point spacing like 3DGS's
nearest-neighbour initialisation so that the surfaces are covered, with random rotations and opacities.

OpenMP threads (shared by PyTorch and numba, which load the same libgomp) spin after every parallel region
by default; on a loaded 2-core machine that spinning costs 2-3x. The benchmark therefore sets
``OMP_WAIT_POLICY=PASSIVE`` before importing torch, as training processes should; ``--omp-spin`` keeps the
default to measure the difference.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable

# Must happen before torch loads libgomp; see the module docstring.
if "--omp-spin" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.gaussian.render import Backend, render

Scene = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def make_camera(width: int, height: int) -> Camera:
    """A 60-degree horizontal field of view camera at the origin looking down +z."""
    fx = 0.5 * width / math.tan(math.radians(30.0))
    return Camera(width=width, height=height, fx=fx, fy=fx, cx=width / 2.0, cy=height / 2.0,
                  R=np.eye(3), t=np.zeros(3))


def make_scene(n: int, seed: int = 0, sh_degree: int = 3) -> Scene:
    """Gaussians on surfaces in front of a 60x45-degree camera (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 2, generator=gen)
    kind = torch.randint(0, 4, (n,), generator=gen)
    pts = torch.empty(n, 3)
    # Back wall at z = 6 (about 7 x 5 units visible), floor y = 1.2, left wall x = -2, clutter boxes near.
    pts[:, 0] = (u[:, 0] - 0.5) * 7.0
    pts[:, 1] = (u[:, 1] - 0.5) * 5.0
    pts[:, 2] = 6.0
    floor = kind == 1
    pts[floor, 0] = (u[floor, 0] - 0.5) * 6.0
    pts[floor, 1] = 1.2
    pts[floor, 2] = 1.5 + u[floor, 1] * 4.5
    wall = kind == 2
    pts[wall, 0] = -2.0
    pts[wall, 1] = (u[wall, 0] - 0.5) * 3.0
    pts[wall, 2] = 2.0 + u[wall, 1] * 4.0
    clutter = kind == 3
    centres = torch.tensor([[0.6, 0.6, 3.0], [-0.8, 0.3, 4.0], [1.5, -0.2, 5.0]])
    which = torch.randint(0, 3, (n,), generator=gen)
    pts[clutter] = centres[which[clutter]] + (torch.rand(int(clutter.sum()), 3, generator=gen) - 0.5) * 0.8
    area = 7.0 * 5.0 + 6.0 * 4.5 + 3.0 * 4.0 + 3 * 6 * 0.8 * 0.8
    spacing = math.sqrt(area / n)
    scales = spacing * torch.exp(0.4 * torch.randn(n, 3, generator=gen)) * 0.8
    scales[:, 2] *= 0.3  # surfaces: flattened gaussians, as training makes them
    quats = torch.randn(n, 4, generator=gen)
    opacities = 0.2 + 0.75 * torch.rand(n, generator=gen)
    sh = torch.zeros(n, (sh_degree + 1) ** 2, 3)
    sh[:, 0] = torch.rand(n, 3, generator=gen) * 2.0 - 1.0
    sh[:, 1:] = 0.1 * torch.randn(n, (sh_degree + 1) ** 2 - 1, 3, generator=gen)
    return pts, quats, scales, opacities, sh


def timed(fn: Callable[[], None], repeats: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds (all threads) per call.

    On a shared machine the wall clock mostly measures the other users; CPU time says what the work itself
    costs (divided by the thread count it approximates the wall time on an idle machine).
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def bench_case(n: int, width: int, height: int, backend: Backend, device: str, repeats: int) -> str:
    cam = make_camera(width, height)
    means, quats, scales, opacities, sh = (t.to(device).requires_grad_() for t in make_scene(n))
    params = [means, quats, scales, opacities, sh]
    background = torch.zeros(3, device=device)
    target = torch.rand(height, width, 3, generator=torch.Generator().manual_seed(1)).to(device)

    def forward() -> None:
        with torch.no_grad():
            render(means, quats, scales, opacities, sh, cam, sh_degree=3, background=background, backend=backend)

    def forward_backward() -> None:
        out = render(means, quats, scales, opacities, sh, cam, sh_degree=3, background=background, backend=backend)
        loss = (out.image - target).abs().mean()
        loss.backward()
        for p in params:
            p.grad = None

    out = render(means, quats, scales, opacities, sh, cam, sh_degree=3, background=background, backend=backend)
    visible = int((out.radii > 0).sum())
    coverage = float(out.alpha.detach().mean())
    fwd = timed(forward, repeats, warmup=2)
    fb = timed(forward_backward, repeats, warmup=2)

    def stats(times: tuple[list[float], list[float]]) -> str:
        ts_ms = sorted(t * 1000.0 for t in times[0])
        p90 = ts_ms[min(len(ts_ms) - 1, math.ceil(0.9 * len(ts_ms)) - 1)]
        cpu_ms = statistics.median(t * 1000.0 for t in times[1])
        return f"median {statistics.median(ts_ms):6.1f} p90 {p90:6.1f} cpu {cpu_ms:6.1f} ms"

    return (f"{width}x{height} n={n:6d} visible={visible:6d} alpha={coverage:.2f} | "
            f"fwd {stats(fwd)} | fwd+bwd {stats(fb)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="numba and torch threads (0: leave as is)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sizes", default="", help="comma-separated WxH list, e.g. 320x240")
    parser.add_argument("--counts", default="7600,20000")
    parser.add_argument("--omp-spin", action="store_true", help="leave OMP_WAIT_POLICY unset (threads spin)")
    args = parser.parse_args()

    import numba

    if args.threads:
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    backend: Backend = "cuda" if args.device == "cuda" else "cpu"
    default_sizes = "1280x720" if args.device == "cuda" else "160x120,320x240"
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.sizes or default_sizes).split(",")]
    counts = [int(c) for c in args.counts.split(",")]
    if args.device == "cpu":
        # Compile (or load from numba's cache) outside the timed loops.
        t0 = time.perf_counter()
        bench_case(100, 32, 32, backend, "cpu", repeats=1)
        print(f"first call (JIT compile or cache load): {time.perf_counter() - t0:.1f} s")
    print(f"backend={backend} numba threads={numba.get_num_threads()} (NUMBA_NUM_THREADS="
          f"{numba.config.NUMBA_NUM_THREADS}, layer={numba.threading_layer()}) "  # type: ignore[attr-defined]
          f"torch threads={torch.get_num_threads()} cpus={os.cpu_count()} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for width, height in sizes:
        for n in counts:
            print(bench_case(n, width, height, backend, args.device, args.repeats), flush=True)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak RSS {peak_mib:.0f} MiB; load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.device == "cuda":
        print(f"peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
