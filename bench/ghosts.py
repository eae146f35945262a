"""Benchmark: what training keeps of the people who walked through a capture, without SfM in the way.

``bench/capture.py`` runs the whole pipeline on the disturbed walk-around, and its opacity figure moves with
SfM's randomness as much as with the training (bench/RESULTS.md: 22-49 over five runs of the same code).
This trains the capture of ``tests.support.crowd`` at the true poses (``posed_scene``: the room's true
surface as sparse points), at preview's settings as the train stage picks them for it (the capture check
of these very frames), so that one arm differs from another only in the settings it names. Per arm:

- **swept opacity** (``bench/capture.py``'s measure, in the true world frame): summed opacity of the
  gaussians whose centres lie in the volume the people walked through, total and per walker;
- **kept share** (``tests/pipeline/test_disturbed_capture.py``'s): in the frames where people cover at least
  5% of the pixels, the share of their pixels where the model is nearer the person than the room;
- the share of each frame the robust loss left out at its last step, and the training-size PSNR on the
  held-out frames (of the capture trained: the disturbed one's have people in them).

Run the clean capture with the same arms for the noise floor: nobody walked through it.

    python bench/ghosts.py --arm robust_start=0 --arm "" --arm consensus_start=300,robust_factor=2.5
    python bench/ghosts.py --capture clean --arm "" --arm consensus_start=300,robust_factor=2.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from quality import parse_settings

from tests.support.crowd import WALK_SECONDS, CaptureName, Filming, capture_cameras, swept_opacity
from tests.support.synthetic import posed_scene, posed_similarity
from vidscene.pipeline.capture_check import check_frames
from vidscene.pipeline.gaussian.render import render
from vidscene.pipeline.gaussian.train import GaussianTraining
from vidscene.pipeline.presets import preset_config
from vidscene.pipeline.scene import training_config


def parse_arm(text: str) -> dict[str, Any]:
    """``name=value,...`` (values read as JSON, else kept as strings) for ``GaussianConfig`` fields."""
    return parse_settings([pair for pair in text.split(",") if pair])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", choices=["disturbed", "clean"], default="disturbed")
    parser.add_argument("--arm", action="append", default=[], help="GaussianConfig changes, name=value,...")
    parser.add_argument("--size", default="240x135", help="frame size WxH (default: preview's training size)")
    parser.add_argument("--frames", type=int, default=75, help="frames over the 5 s walk (default 75)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    name: CaptureName = args.capture
    root = Path(tempfile.mkdtemp(prefix="vidscene-ghosts-"))
    cameras = capture_cameras(args.frames, width, height)
    fps = args.frames / WALK_SECONDS
    filming = Filming(name, cameras, fps=fps, seed=args.seed)
    scene = posed_scene(root, cameras, filming.room, frames=filming.frame, seed=args.seed)
    report = check_frames([scene.images_dir / c.image_name for c in scene.cameras], list(range(args.frames)),
                          [i / fps for i in range(args.frames)])
    people = Filming("disturbed", cameras, fps=fps, seed=args.seed)  # the truth about where people walked
    views = [v for v in (people.people_in_view(i) for i in range(args.frames)) if v.mask.mean() >= 0.05]
    base = replace(training_config(preset_config("preview", device="cpu"), report).gaussian,
                   max_long_side=max(width, height), seed=args.seed)
    for arm in args.arm or [""]:
        config = replace(base, **parse_arm(arm))
        started = time.monotonic()
        training = GaussianTraining(scene, config, root / f"arm{len(arm)}", torch.device("cpu"))
        while training.step < config.iterations:
            training.train_step()
        seconds = time.monotonic() - started
        means, quats, scales, opacities, sh = training.gaussians.activated()
        with torch.no_grad():
            kept = [v.kept_share(render(means, quats, scales, opacities, sh, training.cameras[v.index],
                                        sh_degree=config.sh_degree, background=torch.zeros(3))
                                 .image.clamp(0.0, 1.0).numpy()) for v in views]
            heldout = training.evaluate()["psnr"]
        swept = swept_opacity(means.detach().numpy(), opacities.detach().numpy(), posed_similarity(cameras))
        print(json.dumps({"capture": name, "arm": arm or "(product)", "swept_opacity": round(swept.opacity, 2),
                          "by_walker": [round(w, 2) for w in swept.by_walker],
                          "kept_share": round(float(np.mean(kept)), 3),
                          "masked": round(float(training.masked_share.mean()), 4),
                          "heldout_psnr": round(heldout, 2), "gaussians": len(training.gaussians),
                          "train_s": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
