"""The quality the benchmark scripts report for a trained model: the figure the product itself records
(``metrics/<iteration>.json``), measured by the method's own evaluation at the frames' working size on the
held-out frames, so that a benchmark's PSNR and a scene's are the same number."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vidscene.pipeline.cameras import SceneData
    from vidscene.pipeline.config import PipelineConfig
    from vidscene.pipeline.evaluate import Quality


def measured_quality(mode: str, checkpoint: Path, scene: SceneData, config: PipelineConfig,
                     figures: dict[str, object]) -> Quality:
    """Measure ``checkpoint``, record it in ``figures`` (``quality``, ``evaluate_s``) and print it."""
    from vidscene.pipeline.methods import METHODS

    t = time.monotonic()
    quality = METHODS[mode].evaluate(checkpoint, scene, config)
    figures["evaluate_s"] = round(time.monotonic() - t, 1)
    figures["quality"] = quality.to_json()
    frames = "held-out" if quality.heldout else "training"
    print(f"quality at {quality.resolution[0]}x{quality.resolution[1]}: PSNR {quality.psnr:.2f} dB "
          f"SSIM {quality.ssim:.3f} on {quality.eval_views} {frames} frames, in {figures['evaluate_s']} s",
          flush=True)
    return quality
