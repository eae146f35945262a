"""The geometry of crop and clean (``vidscene.edits``, ``pipeline.export.edits``): rotated boxes, spheres, the
positions the API reads from exported files, and an edit that would leave nothing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.support.gaussians import random_gaussians
from vidscene.edits import keep_mask, parse_operations, read_positions
from vidscene.pipeline.export.edits import EmptyEditError, apply_edits
from vidscene.pipeline.export.ply import write_gaussian_ply
from vidscene.pipeline.export.splat import write_splat


def test_a_rotated_box_keeps_along_its_own_axes() -> None:
    quarter_turn_z = [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]
    ops = parse_operations([{"op": "keep_inside", "shape": "box", "center": [1, 0, 0], "half_size": [1, 0.1, 0.1],
                             "rotation": quarter_turn_z}])
    points = np.array([[1.0, 0.9, 0.0], [1.9, 0.0, 0.0], [1.0, -0.95, 0.05]])
    assert keep_mask(points, ops).tolist() == [True, False, True]


def test_operations_combine_a_box_and_a_sphere_eraser() -> None:
    ops = parse_operations([{"op": "keep_inside", "shape": "sphere", "center": [0, 0, 0], "radius": 1},
                            {"op": "delete_inside", "shape": "sphere", "center": [0.5, 0, 0], "radius": 0.2}])
    points = np.array([[0.0, 0.0, 0.0], [0.55, 0.0, 0.0], [1.5, 0.0, 0.0], [-0.9, 0.0, 0.0]])
    assert keep_mask(points, ops).tolist() == [True, False, False, True]
    with pytest.raises(EmptyEditError, match="keeps no gaussian"):
        apply_edits(points[[1, 2]], ops)


@pytest.mark.parametrize(("bad", "named"), [
    ({"op": "keep_inside", "shape": "box", "center": [0, 0, 0], "half_size": [1, 0, 1]}, "half_size"),
    ({"op": "keep_inside", "shape": "box", "center": [0, 0, math.inf], "half_size": [1, 1, 1]}, "center"),
    ({"op": "keep_inside", "shape": "box", "center": [0, 0, 0], "half_size": [1, 1, 1], "rotation": [0, 0, 0, 0]},
     "rotation"),
    ({"op": "keep_inside", "shape": "sphere", "center": [0, 0, 0]}, "radius"),
])
def test_bad_operations_are_named(bad: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=rf"operations\[0\]\.{named}"):
        parse_operations([bad])


def test_positions_are_read_from_the_exported_splat_and_ply(tmp_path: Path) -> None:
    g = random_gaussians(300, sh_degree=1)
    write_gaussian_ply(tmp_path / "a.ply", g.means, g.log_scales, g.quats, g.opacity_logits, g.sh)
    write_splat(tmp_path / "a.splat", g.means, g.log_scales, g.quats, g.opacity_logits, g.sh[:, 0, :])
    ply = read_positions(tmp_path / "a.ply")
    splat = read_positions(tmp_path / "a.splat")
    assert ply is not None and splat is not None
    np.testing.assert_array_equal(ply, g.means)
    assert sorted(map(tuple, splat.tolist())) == sorted(map(tuple, g.means.tolist()))  # the .splat is sorted
    assert read_positions(tmp_path / "a.compressed.ply") is None
