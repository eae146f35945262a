"""Benchmark: the size of every gaussian download format for one trained scene, and the time to write each.

Reads a scene directory as ``vidscene run`` or the worker leaves it (``sfm/`` and ``train/checkpoints/N.ckpt``),
exports each file output type of the catalogue with the pipeline's own ``export_outputs`` (floaters dropped,
as users get them) into ``--out``, and prints one JSON line per type: bytes and seconds, and bytes per gaussian
and the ratio to the ``.ply`` when ``--out`` holds one. The mesh's seconds are its extraction time.

    python bench/export_sizes.py SCENE_DIR --out /tmp/sizes                 # the newest checkpoint
    python bench/export_sizes.py SCENE_DIR --out /tmp/sizes --iteration 7000
    python bench/export_sizes.py SCENE_DIR --out /tmp/sizes --types mesh        # one type: its time alone
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
    parser.add_argument("--types", default=",".join(TYPES), help="comma-separated output types (default: all)")
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
    for output_type in args.types.split(","):
        path = args.out / f"{checkpoint.stem}-{output_type}{catalogue.OUTPUT_TYPES[output_type].extension('gaussian')}"
        started = time.perf_counter()
        export_outputs(checkpoint, scene, {output_type: path}, ExportConfig(), device="cpu")
        rows.append({"type": output_type, "bytes": path.stat().st_size,
                     "seconds": round(time.perf_counter() - started, 2)})
    ply_path = args.out / f"{checkpoint.stem}-point_cloud.ply"
    if ply_path.is_file():  # the .ply of this run or an earlier one: the reference size
        from plyfile import PlyData

        count = PlyData.read(str(ply_path))["vertex"].count
        for row in rows:
            row.update({"gaussians": count, "bytes_per_gaussian": round(row["bytes"] / count, 2),
                        "ply_over_this": round(ply_path.stat().st_size / row["bytes"], 2)})
    for row in rows:
        print(json.dumps({**row, "checkpoint": str(checkpoint)}))


if __name__ == "__main__":
    main()
