"""Whether a finished model learned anything from its video: the check both trainers make before they write
their final checkpoint.

A run can reach its last iteration with nothing to show: every gaussian pruned or transparent, a radiance
field with no density left anywhere (a grey video, an empty point cloud). Its renders are then no better than
the flattest possible guess, one image of the training frames' mean colour, and the stage must fail with a
message the user can act on instead of reporting success. The trainers raise the ``TrainingError`` made here
before the final checkpoint exists, so a re-run trains again rather than finding a "finished" empty model.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from vidscene.pipeline.errors import TrainingError
from vidscene.pipeline.images import psnr

# Renders must beat the mean-colour image by this much: a model that learned anything at all does by several dB
# (bench/RESULTS.md: 16.9 dB flat against 24-34 dB trained on the synthetic clips).
FLAT_MARGIN_DB = 1.0
# Renders varying less than this fraction of the frames' spatial standard deviation are flat (the grey video).
FLAT_STD_FRACTION = 0.2
# Runs shorter than this are too short to blame the video for a flat render: a few dozen iterations leave any
# field flat (tests/pipeline/test_tensorf.py's 40-iteration run: render std 0.002 against 0.217 in the frames).
MIN_JUDGED_ITERATIONS = 200
# Frames that the mean-colour image matches this well are one flat colour plus noise (PSNR 35 dB: an RMS
# deviation of 4.5 grey levels; the synthetic clips' frames: 13-17 dB): there is nothing to learn from them.
FLAT_VIDEO_PSNR = 35.0


def mean_colour(images: Iterable[Tensor]) -> Tensor:
    """Mean RGB (3,) in 0..1 over every pixel of ``images`` ((H, W, 3) each; uint8 0..255 or float 0..1)."""
    total, count = torch.zeros(3, dtype=torch.float64), 0
    scale = 1.0
    for img in images:
        if img.dtype == torch.uint8:
            scale = 255.0
        total += img.reshape(-1, 3).to(torch.float64).sum(dim=0).cpu()
        count += img.shape[0] * img.shape[1]
    if count == 0:
        raise ValueError("the mean colour needs at least one image")
    return (total / count / scale).to(torch.float32)


def flat_image_psnr(colour: Tensor, targets: Iterable[Tensor]) -> float:
    """Mean PSNR of an image filled with ``colour`` (3,) against each target ((H, W, 3) floats in 0..1)."""
    values = [psnr(colour.to(t.device).expand_as(t), t) for t in targets]
    if not values:
        raise ValueError("the flat-image PSNR needs at least one target")
    return float(sum(values) / len(values))


def learned_nothing(reason: str, *, iterations: int | None = None) -> TrainingError:
    """The error for a model that came out empty; ``reason`` (no final full stop) says how it shows. For a run
    of fewer than ``MIN_JUDGED_ITERATIONS`` iterations the message blames the length, not the video."""
    if iterations is not None and iterations < MIN_JUDGED_ITERATIONS:
        return TrainingError(f"The model learned nothing in {iterations} iterations: {reason}. Train for more "
                             f"iterations (at least {MIN_JUDGED_ITERATIONS}; the presets use 1500 or more).")
    return TrainingError(f"The model learned nothing from this video: {reason}. The video may show too little "
                         "texture, or the camera may not have moved enough around the subject; try filming "
                         "again with slow, steady motion around a well-lit, textured subject.")


def image_std(image: Tensor) -> float:
    """Spatial standard deviation of an (H, W, 3) image, averaged over its channels: 0 for a flat image."""
    return float(image.detach().float().reshape(-1, 3).std(dim=0).mean())


def check_not_flat(model_psnr: float, flat_psnr: float, render_std: float, frame_std: float, *, iterations: int,
                   margin: float = FLAT_MARGIN_DB) -> None:
    """Raise ``learned_nothing`` when the renders are flat (spatial variation below ``FLAT_STD_FRACTION`` of the
    frames') and no better than the mean-colour image by ``margin`` dB, or when the frames are one flat colour
    (the mean-colour image within ``FLAT_VIDEO_PSNR`` of them: nothing to learn).

    A render that varies but fits worse than the flat image learned something, however poorly, and passes; so
    does any render of a run shorter than ``MIN_JUDGED_ITERATIONS`` iterations.
    """
    if iterations < MIN_JUDGED_ITERATIONS:
        return
    if flat_psnr >= FLAT_VIDEO_PSNR:
        raise learned_nothing("every frame is one flat colour")
    if model_psnr >= flat_psnr + margin or render_std >= FLAT_STD_FRACTION * frame_std:
        return
    raise learned_nothing(f"its renders are one flat colour, no closer to the frames than the video's mean colour "
                          f"({model_psnr:.1f} dB against {flat_psnr:.1f} dB)")
