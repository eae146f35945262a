"""The CPU renderer's numba kernels: compiled once, then loaded from numba's on-disk cache by later processes.

Workers rely on the cache (``vidscene worker`` warms it, training jobs then start in seconds); a kernel that
moved to a module numba cannot cache, or that lost ``cache=True``, would silently recompile in every job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vidscene

# Prints [hits, misses] of numba's cache for every entry kernel after one forward+backward render.
_PROBE = """
import json
from vidscene.pipeline.gaussian.render import precompile_cpu
from vidscene.pipeline.gaussian.cpu_kernels import projection, sh_colors, tiles
precompile_cpu()
kernels = [tiles.bin_tiles, tiles.forward_tiles, tiles.backward_tiles, projection.project_forward,
           projection.project_backward, sh_colors.sh_forward, sh_colors.sh_backward]
print(json.dumps({k.__name__: [sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
                  for k in kernels}))
"""


def _cache_stats(cache_dir: Path) -> dict[str, list[int]]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600, check=False,
                          env=env, cwd=Path(vidscene.__file__).parents[1])
    assert done.returncode == 0, done.stderr
    stats: dict[str, list[int]] = json.loads(done.stdout.strip().splitlines()[-1])
    return stats


@pytest.mark.slow
def test_second_process_loads_every_kernel_from_the_cache(tmp_path: Path) -> None:
    first = _cache_stats(tmp_path)
    assert all(hits == 0 and misses > 0 for hits, misses in first.values()), first
    second = _cache_stats(tmp_path)
    assert all(hits > 0 and misses == 0 for hits, misses in second.values()), second
