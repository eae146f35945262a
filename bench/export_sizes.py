"""Benchmark: the size of every gaussian download format for one trained scene, and the time to write each.

Reads a scene directory as ``vidscene run`` or the worker leaves it (``sfm/`` and ``train/checkpoints/N.ckpt``),
exports each file output type of the catalogue with the pipeline's own ``export_outputs`` (floaters dropped,
as users get them) into ``--out``, and prints one JSON line per type: bytes, bytes per gaussian, ratio to the
``.ply`` and seconds.

    python bench/export_sizes.py SCENE_DIR --out /tmp/sizes                 # the newest checkpoint
    python bench/export_sizes.py SCENE_DIR --out /tmp/sizes --iteration 7000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidscene import catalogue
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.gaussian.outputs import FILE_WRITERS, export_outputs

TYPES = [*(t for t in FILE_WRITERS if t != "model"), "mesh"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scene", type=Path, help="a scene directory with sfm/ and train/checkpoints/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--iteration", type=int, default=None)
    args = parser.parse_args()
    checkpoints = sorted(args.scene.glob("train/checkpoints/*.ckpt"), key=lambda p: int(p.stem))
    if args.iteration is not None:
        checkpoints = [p for p in checkpoints if int(p.stem) == args.iteration]
    if not checkpoints:
        parser.error(f"no checkpoint in {args.scene / 'train' / 'checkpoints'}")
    checkpoint = checkpoints[-1]
    scene = SceneData.load(args.scene / "sfm")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for output_type in TYPES:
        path = args.out / f"{checkpoint.stem}{catalogue.OUTPUT_TYPES[output_type].extension('gaussian')}"
        started = time.perf_counter()
        export_outputs(checkpoint, scene, {output_type: path}, ExportConfig(), device="cpu")
        rows.append({"type": output_type, "bytes": path.stat().st_size,
                     "seconds": round(time.perf_counter() - started, 2)})
    ply = next(r["bytes"] for r in rows if r["type"] == "point_cloud")
    from plyfile import PlyData

    count = PlyData.read(str(args.out / f"{checkpoint.stem}.ply"))["vertex"].count
    for row in rows:
        row.update({"gaussians": count, "bytes_per_gaussian": round(row["bytes"] / count, 2),
                    "ply_over_this": round(ply / row["bytes"], 2), "checkpoint": str(checkpoint)})
        print(json.dumps(row))


if __name__ == "__main__":
    main()
