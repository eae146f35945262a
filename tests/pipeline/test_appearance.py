"""The per-frame colour maps (``gaussian/appearance.py``): identity at the start, learnable towards a frame's
exposure, pulled back by their penalty, and saved and restored exactly (a resumed run goes on with them)."""

from __future__ import annotations

import torch

from vidscene.pipeline.gaussian.appearance import FrameColours


def test_maps_start_as_the_identity_and_learn_a_frames_exposure() -> None:
    colours = FrameColours(3, torch.device("cpu"), lr=0.05)
    image = torch.rand((16, 16, 3))
    with torch.no_grad():
        assert torch.equal(colours.apply(image, 1), image)
        assert float(colours.penalty(1)) == 0.0
    darker = image * 0.7  # frame 1 was exposed darker
    for _ in range(200):
        loss = (colours.apply(image, 1) - darker).abs().mean()
        loss.backward()
        colours.step()
    with torch.no_grad():
        assert float((colours.apply(image, 1) - darker).abs().mean()) < 0.02
        assert float(colours.penalty(1)) > 0.0
        assert torch.equal(colours.apply(image, 0), image)  # the other frames keep theirs


def test_state_round_trips() -> None:
    first = FrameColours(2, torch.device("cpu"), lr=0.05)
    image = torch.rand((8, 8, 3))
    (first.apply(image, 0) - image * 1.2).abs().mean().backward()
    first.step()
    second = FrameColours(2, torch.device("cpu"), lr=0.05)
    second.restore(first.state())
    with torch.no_grad():
        assert torch.equal(second.apply(image, 0), first.apply(image, 0))
    assert second.optimizer.state_dict()["state"].keys() == first.optimizer.state_dict()["state"].keys()
