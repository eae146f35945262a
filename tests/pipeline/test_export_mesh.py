"""The mesh output: TSDF fusion of depth and colour views, marching cubes and simplification, read back by trimesh.

Fast: the generated tabletop's true depth maps fused into a mesh, held to the issue's targets against the true
surfaces (median distance of the mesh's vertices to them at most 1% of the scene size, at least 90% of the
visible surface within 2% of the mesh). Slow: the whole export from gaussians placed on those surfaces, each
capture camera rendered by the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from tests.support.synthetic import QuadScene, TabletopScene, forward_cameras, surface_points
from vidscene.pipeline.cameras import Camera
from vidscene.pipeline.errors import PipelineError
from vidscene.pipeline.export.mesh import NoSurfaceError, View, fuse, write_mesh_glb

F64 = NDArray[np.float64]
Y_UP = np.array([1.0, -1.0, -1.0])  # the pipeline's -y-up world -> glTF's +y up


def distance_to_surfaces(points: F64, scene: QuadScene) -> F64:
    """Exact distance from each point to the nearest of the scene's rectangles."""
    best = np.full(len(points), np.inf)
    for q in scene.quads:
        inside_u = np.clip(points[:, q.u_axis], *q.u_range) - points[:, q.u_axis]
        inside_v = np.clip(points[:, q.v_axis], *q.v_range) - points[:, q.v_axis]
        best = np.minimum(best, np.sqrt((points[:, q.axis] - q.pos) ** 2 + inside_u**2 + inside_v**2))
    return best


def true_views(scene: QuadScene, cameras: list[Camera]) -> list[View]:
    views = []
    for cam in cameras:
        depth = scene.depth(cam)
        seen = np.isfinite(depth)
        views.append(View(cam, np.where(seen, depth, 0.0).astype(np.float32),
                          scene.render(cam, supersample=1).astype(np.float32) / 255.0, seen.astype(np.float32)))
    return views


def check_targets(vertices: F64, scene: QuadScene, cameras: list[Camera]) -> tuple[float, float]:
    """(median vertex distance, share of the visible surface within 2%), both against the scene size."""
    truth = surface_points(scene, cameras, 400, seed=11)
    size = float((truth.max(axis=0) - truth.min(axis=0)).max())
    median = float(np.median(distance_to_surfaces(vertices, scene))) / size
    near, _ = cKDTree(vertices).query(truth)
    return median, float(np.mean(near <= 0.02 * size))


def test_fused_depth_meets_the_targets(tmp_path: Path) -> None:
    scene = TabletopScene(0, texture_size=32)
    cameras = forward_cameras(12, 96, 72)
    truth = surface_points(scene, cameras, 200, seed=3)
    lo, hi = truth.min(axis=0) - 0.1, truth.max(axis=0) + 0.1
    mesh = fuse(true_views(scene, cameras), lo, hi, resolution=128)
    path = tmp_path / "mesh.glb"
    write_mesh_glb(path, mesh)

    loaded = trimesh.load(path, force="mesh")
    assert isinstance(loaded, trimesh.Trimesh)
    assert len(loaded.faces) == len(mesh.faces) and len(loaded.vertices) == len(mesh.vertices)
    # trimesh applies no turn of its own: the file's +y-up vertices are the world's turned about x.
    np.testing.assert_allclose(loaded.vertices, mesh.vertices * Y_UP, atol=1e-5)
    colours = np.asarray(loaded.visual.vertex_colors)
    assert colours.shape == (len(mesh.vertices), 4) and colours[:, :3].std() > 5  # the textures' colours

    median, covered = check_targets(mesh.vertices.astype(np.float64), scene, cameras)
    assert median <= 0.01
    assert covered >= 0.9


def test_nothing_seen_is_refused() -> None:
    cam = forward_cameras(1, 16, 12)[0]
    empty = View(cam, np.zeros((12, 16), np.float32), np.zeros((12, 16, 3), np.float32), np.zeros((12, 16), np.float32))
    with pytest.raises(NoSurfaceError, match="no surface was seen") as failed:
        fuse([empty], np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 2.0]), resolution=16)
    assert isinstance(failed.value, PipelineError), "the job's message is this sentence, not an internal error"


@pytest.mark.slow
def test_mesh_from_gaussians_meets_the_targets(tmp_path: Path) -> None:
    """The export's own path: gaussians on the true surfaces (as training would place them), every capture
    camera rendered by the model (depth, colour, opacity), fused, written; trimesh reads it."""
    import torch

    from vidscene.pipeline.cameras import SceneData
    from vidscene.pipeline.config import ExportConfig
    from vidscene.pipeline.gaussian.model import Gaussians
    from vidscene.pipeline.gaussian.outputs import write_mesh
    from vidscene.pipeline.poses import normalizing_similarity

    scene = TabletopScene(0, texture_size=32)
    cameras = forward_cameras(16, 96, 72)
    norm = normalizing_similarity(cameras)
    world = [norm.apply_camera(c) for c in cameras]
    points = norm.apply_points(surface_points(scene, cameras, 2500, seed=5))
    spacing = float(np.median(cKDTree(points).query(points, k=2)[0][:, 1]))
    n = len(points)
    gaussians = Gaussians({
        "means": torch.as_tensor(points, dtype=torch.float32),
        "scales": torch.full((n, 3), float(np.log(1.5 * spacing))),
        "quats": torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
        "opacities": torch.full((n,), 4.0),
        "sh0": torch.rand(n, 1, 3, generator=torch.Generator().manual_seed(0)) - 0.5,
        "shN": torch.zeros(n, 0, 3),
    })
    path = tmp_path / "mesh.glb"
    write_mesh(path, gaussians, SceneData(cameras=world, images_dir=tmp_path, points=points.astype(np.float32),
                                          colors=np.zeros(points.shape, np.uint8)),
               ExportConfig(mesh_resolution=160, mesh_long_side=96), 0, torch.device("cpu"))
    loaded = trimesh.load(path, force="mesh")
    assert isinstance(loaded, trimesh.Trimesh) and len(loaded.faces) > 1000
    in_world = np.asarray(loaded.vertices, np.float64) * Y_UP
    back = (in_world - norm.t) @ norm.R / norm.scale  # to the synthetic scene's own frame
    median, covered = check_targets(back, scene, cameras)
    assert median <= 0.01
    assert covered >= 0.9
