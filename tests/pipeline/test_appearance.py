"""The per-frame colour maps (``gaussian/appearance.py``): identity at the start, learn how a frame was exposed
relative to the others, keep the capture's average exposure in the model (the gauge), and are saved and
restored exactly (a resumed run goes on with them)."""

from __future__ import annotations

import torch

from vidscene.pipeline.gaussian.appearance import FrameColours


def _fit(colours: FrameColours, image: torch.Tensor, exposed: dict[int, torch.Tensor], steps: int) -> torch.Tensor:
    """Train ``colours`` together with a learnable model of the scene (starting from ``image``) on the frames
    ``exposed`` shows, as training does: one frame a step. Returns the model."""
    model = image.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([model], lr=0.01)
    for _ in range(steps):
        for frame, target in exposed.items():
            (colours.apply(model, frame) - target).abs().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
            colours.step(frame)
    return model.detach()


def test_maps_start_as_the_identity_and_learn_how_frames_differ() -> None:
    colours = FrameColours(4, torch.device("cpu"), lr=0.01, trained=[0, 1, 2])
    image = torch.rand((16, 16, 3)) * 0.8 + 0.1
    with torch.no_grad():
        assert torch.equal(colours.apply(image, 1), image)
        assert float(colours.penalty(1)) == 0.0
    # Frame 1 was exposed 30% darker than frames 0 and 2, with a warmer white balance.
    darker = image * torch.tensor([0.8, 0.7, 0.6])
    _fit(colours, image, {0: image, 1: darker, 2: image}, 300)
    with torch.no_grad():
        ratio = (colours.apply(image, 1) / colours.apply(image, 0)).mean(dim=(0, 1))
        assert torch.allclose(ratio, torch.tensor([0.8, 0.7, 0.6]), atol=0.05)
        assert float(colours.penalty(1)) > 0.0
        assert torch.equal(colours.apply(image, 3), image)  # a held-out frame keeps the identity


def test_the_model_keeps_the_average_exposure() -> None:
    """Were every frame darker, the maps could all go dark and the model bright: the same frames, a wrong
    scene in every export. Re-centring keeps the trained frames' mean map at the identity, so the model
    takes the frames' average exposure."""
    colours = FrameColours(3, torch.device("cpu"), lr=0.01, trained=[0, 1, 2])
    image = torch.rand((8, 8, 3)) * 0.5 + 0.2
    model = _fit(colours, image, {0: image * 0.6, 1: image * 0.7, 2: image * 0.8}, 300)
    assert torch.allclose(colours.gain.mean(dim=0), torch.ones(3), atol=1e-5)
    assert torch.allclose(colours.bias.mean(dim=0), torch.zeros(3), atol=1e-5)
    assert abs(float((model / image).mean()) - 0.7) < 0.05


def test_state_round_trips_and_old_maps_are_ignored() -> None:
    first = FrameColours(2, torch.device("cpu"), lr=0.05)
    image = torch.rand((8, 8, 3))
    _fit(first, image, {0: image * 1.2, 1: image}, 3)
    second = FrameColours(2, torch.device("cpu"), lr=0.05)
    second.restore(first.state())
    with torch.no_grad():
        assert torch.equal(second.apply(image, 0), first.apply(image, 0))
    assert second.state()["optimizers"][0]["state"].keys() == first.state()["optimizers"][0]["state"].keys()
    # A checkpoint from the 3x3 maps of earlier versions: the run goes on from the identity.
    third = FrameColours(2, torch.device("cpu"), lr=0.05)
    third.restore({"matrix": torch.eye(3).repeat(2, 1, 1), "bias": torch.zeros(2, 3), "optimizer": {}})
    assert torch.equal(third.apply(image, 0), image)
