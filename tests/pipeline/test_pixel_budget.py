"""The pixel budget of a training step (``gaussian/pixel_budget.py``): about the budget's pixels a step, every
row of the frame drawn equally often, and the same rows again after a resume."""

from __future__ import annotations

import torch

from vidscene.pipeline.gaussian.pixel_budget import drawn_tiles


def test_a_frame_within_the_budget_is_drawn_whole() -> None:
    gen = torch.Generator().manual_seed(0)
    assert drawn_tiles(480, 270, 480 * 270, gen) is None
    assert drawn_tiles(320, 240, 480 * 270, gen) is None
    assert drawn_tiles(480, 360, 0, gen) is None  # no budget


def test_a_larger_frame_draws_about_the_budget_and_every_row_as_often() -> None:
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(23)  # 360 rows: 23 rows of tiles, the last one half
    drawn_share = []
    for _ in range(2000):
        tiles = drawn_tiles(480, 360, 480 * 270, gen)
        assert tiles is not None and tiles.shape == (23, 30)
        assert bool((tiles.all(dim=1) | ~tiles.any(dim=1)).all())  # whole rows, drawn or not
        counts += tiles[:, 0].float()
        drawn_share.append(float(tiles.float().mean()))
    assert abs(sum(drawn_share) / len(drawn_share) - 0.75) < 0.02
    share = counts / 2000
    assert float(share.min()) > 0.70 and float(share.max()) < 0.80, share  # no row starved, none favoured


def test_a_tiny_budget_still_draws_a_row() -> None:
    tiles = drawn_tiles(480, 360, 10, torch.Generator().manual_seed(1))
    assert tiles is not None and int(tiles.any(dim=1).sum()) == 1


def test_the_same_generator_state_draws_the_same_rows() -> None:
    """The trainer's generator is saved in its checkpoints: a resumed run draws what the first would have."""
    gen = torch.Generator().manual_seed(7)
    state = gen.get_state()
    first = [drawn_tiles(640, 480, 300_000, gen) for _ in range(5)]
    gen.set_state(state)
    again = [drawn_tiles(640, 480, 300_000, gen) for _ in range(5)]
    assert all(a is not None and b is not None and torch.equal(a, b) for a, b in zip(first, again, strict=True))
