"""Floater clean-up before export (gaussian/cleanup.py): planted floaters go, the scene stays, and a model that
learned nothing is never emptied (the trainer's collapse checks, not an empty file, report it)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.support.synthetic import SyntheticScene, orbit_cameras, posed_scene
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.gaussian.cleanup import floater_mask
from vidscene.pipeline.gaussian.model import init_from_points


def _orbit(tmp_path: Path) -> SceneData:
    return posed_scene(tmp_path / "frames", orbit_cameras(16, 64, 48), SyntheticScene(0), points_per_frame=80)


def test_planted_floaters_are_dropped_and_the_scene_is_kept(tmp_path: Path) -> None:
    scene = _orbit(tmp_path)
    g = init_from_points(scene.points, scene.colors, scene.cameras, sh_degree=0,
                         generator=torch.Generator().manual_seed(0), min_points=0)
    means, _, scales, opacities, _ = g.activated()
    n = len(g)
    opacities = torch.full((n,), 0.6)  # a fitted scene, not the 0.1 of a fresh init
    gen = torch.Generator().manual_seed(1)
    centre = means.mean(dim=0)
    radius = float((torch.stack([torch.as_tensor(c.center) for c in scene.cameras]).float() - centre).norm(dim=1)
                   .max())
    transparent = (means[:20], scales[:20], torch.full((20,), 1e-3))
    huge = (centre + torch.randn(10, 3, generator=gen) * 0.1, torch.full((10, 3), 2.0 * radius), torch.full((10,), 0.5))
    direction = torch.nn.functional.normalize(torch.randn(15, 3, generator=gen), dim=1)
    far = (centre + direction * 8.0 * radius, scales[:15], torch.full((15,), 0.9))
    all_means = torch.cat([means, transparent[0], huge[0], far[0]])
    all_scales = torch.cat([scales, transparent[1], huge[1], far[1]])
    all_opacities = torch.cat([opacities, transparent[2], huge[2], far[2]])

    found = floater_mask(all_means, all_scales, all_opacities, scene.cameras)
    assert not found.keep[n:].any()  # every planted floater goes
    assert (found.transparent, found.huge, found.outside) == (20, 10, 15)
    assert int(found.keep[:n].sum()) >= 0.99 * n  # and (almost) all of the scene stays


def test_clean_up_never_drops_everything(tmp_path: Path) -> None:
    scene = _orbit(tmp_path)
    means = torch.as_tensor(scene.points[:50])
    found = floater_mask(means, torch.full((50, 3), 0.01), torch.full((50,), 1e-4), scene.cameras)
    assert bool(found.keep.all())  # all transparent: kept, for the collapse checks to judge
    empty = floater_mask(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0), scene.cameras)
    assert empty.keep.numel() == 0 and empty.dropped == 0
