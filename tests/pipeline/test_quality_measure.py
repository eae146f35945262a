"""What the product's quality figure counts (``evaluate.measure``): a held-out frame's exposure is the phone's
choice of the moment and what walked through it is not part of the scene, so neither may lower the figure;
anything the model itself gets wrong must."""

from __future__ import annotations

import pytest
import torch

from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.evaluate import measure
from vidscene.pipeline.gaussian.config import GaussianConfig
from vidscene.pipeline.gaussian.method import moving_settings
from vidscene.pipeline.gaussian.robust import RobustSettings, transient_mask


def _camera() -> Camera:
    import numpy as np

    return Camera(width=64, height=48, fx=50.0, fy=50.0, cx=32.0, cy=24.0, R=np.eye(3), t=np.zeros(3))


def _scene(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, 12, 16), generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(48, 64), mode="bilinear")[0].permute(1, 2, 0) * 0.7 + 0.1


def test_a_frame_exposed_darker_scores_as_the_scene_it_shows() -> None:
    scene = _scene()
    darker = scene * torch.tensor([0.75, 0.7, 0.65]) + 0.02  # auto exposure and white balance of the moment
    fitted = measure(lambda _: scene, [_camera()], darker[None])
    raw = measure(lambda _: scene, [_camera()], darker[None], fit_colours=False)
    assert fitted.psnr > 50.0
    assert raw.psnr < 25.0


def test_a_passer_by_is_not_counted_but_a_wrong_model_is() -> None:
    scene = _scene()
    target = scene.clone()
    target[10:34, 20:36] = torch.tensor([0.9, 0.1, 0.5])  # someone walked through the held-out frame
    settings = RobustSettings(factor=4.0, floor=0.1, block=4, max_share=0.5)

    def moving(_: Camera, pred: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        return transient_mask(pred, frame, settings)

    with_passer = measure(lambda _: scene, [_camera()], target[None], moving=moving)
    assert with_passer.psnr > 40.0
    assert 0.1 < with_passer.masked < 0.3
    assert measure(lambda _: scene, [_camera()], target[None]).psnr < 20.0  # counted without the mask

    blurred = _scene(seed=1)  # a model that got the whole scene wrong cannot hide behind the mask
    wrong = measure(lambda _: blurred, [_camera()], scene[None], moving=moving)
    assert wrong.psnr < 25.0
    assert wrong.masked == 0.0


@pytest.mark.parametrize(("size", "block"), [((320, 180), 8), ((480, 270), 8), ((960, 540), 16)])
def test_the_quality_figure_masks_blocks_as_large_as_training_did(size: tuple[int, int], block: int) -> None:
    """Training draws frames at most ``max_long_side`` long and never upscales them, so frames smaller than
    that trained with the configured block and are scored with it; frames twice as large need blocks twice
    as large to cover the same part of the picture."""
    import numpy as np

    camera = Camera(width=size[0], height=size[1], fx=300.0, fy=300.0, cx=size[0] / 2, cy=size[1] / 2,
                    R=np.eye(3), t=np.zeros(3))
    settings = moving_settings(GaussianConfig(max_long_side=480, robust_block=8), camera)
    assert settings is not None and settings.block == block
    assert moving_settings(GaussianConfig(robust_start=0), camera) is None
