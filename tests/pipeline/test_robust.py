"""The robust loss's masks: a person-sized blob of residual is left out, an unlearned edge and a well-fitted
frame are not, and a frame that fits badly everywhere is not masked away."""

from __future__ import annotations

import torch

from vidscene.pipeline.gaussian.robust import RobustSettings, transient_mask, without_masked

SETTINGS = RobustSettings(factor=4.0, floor=0.1, block=8, max_share=0.5)


def _scene(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((96, 128, 3), generator=g) * 0.5 + 0.25


def test_a_person_walking_through_is_masked() -> None:
    render = _scene()
    target = render + 0.02 * (torch.rand(render.shape) - 0.5)  # fitted up to noise
    target[20:80, 40:64] = torch.tensor([0.9, 0.1, 0.1])  # someone in a red coat
    mask = transient_mask(render, target, SETTINGS)
    assert mask[24:76, 44:60].all()  # the person
    assert not mask[:, :24].any() and not mask[:, 90:].any()  # the rest of the frame trains
    assert 0.1 < float(mask.float().mean()) < 0.3


def test_an_unlearned_edge_is_not_masked() -> None:
    render = _scene()
    target = render.clone()
    target[:, 60:62] = 1.0  # a thin bright line the model has not learned yet
    assert not transient_mask(render, target, SETTINGS).any()


def test_a_well_fitted_frame_and_a_bad_frame_lose_nothing() -> None:
    render = _scene()
    assert not transient_mask(render, render + 0.03, SETTINGS).any()  # under the absolute floor
    assert not transient_mask(render, 1.0 - render, SETTINGS).any()  # everything is off: not an occluder


def test_masked_pixels_send_no_gradient() -> None:
    pred = _scene().requires_grad_(True)
    target = _scene(1)
    mask = torch.zeros(pred.shape[:2], dtype=torch.bool)
    mask[:48] = True
    (pred - without_masked(pred, target, mask)).abs().sum().backward()
    assert pred.grad is not None
    assert float(pred.grad[:48].abs().sum()) == 0.0 and float(pred.grad[48:].abs().min()) == 1.0
