"""Files a user downloads from a TensoRF checkpoint: a fly-through video, the checkpoint, a density point cloud."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from plyfile import PlyData, PlyElement

from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.export import atomic_write_path, copy_file_atomic
from vidscene.pipeline.export.camera_path import smooth_camera_path
from vidscene.pipeline.export.video import write_mp4
from vidscene.pipeline.images import training_size
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.tensorf.model import solid_nodes
from vidscene.pipeline.tensorf.render import render_image
from vidscene.pipeline.tensorf.train import LoadedModel, load_model
from vidscene.pipeline.training import resolve_device

log = logging.getLogger(__name__)

OUTPUT_TYPES = ("video", "model", "point_cloud")
MAX_POINTS = 500_000


def export_outputs(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: ExportConfig, *,
                   device: str = "auto", progress: ProgressFn = no_progress) -> None:
    """Write each requested output (``video``, ``model``, ``point_cloud``) to its path, atomically.

    The video follows the smoothed capture path of ``scene.cameras`` (the SfM cameras the model was trained
    with). Raises ``ValueError`` for an unknown output type, before writing anything.
    """
    unknown = sorted(set(requests) - set(OUTPUT_TYPES))
    if unknown:
        raise ValueError(f"tensorf cannot export {unknown}")
    if "model" in requests:
        copy_file_atomic(checkpoint, requests["model"])
    if not set(requests) - {"model"}:
        return
    dev = resolve_device(device)
    loaded = load_model(checkpoint, dev)
    if "point_cloud" in requests:
        write_point_cloud(loaded, scene, requests["point_cloud"])
    if "video" in requests:
        write_video(loaded, scene, requests["video"], config, progress)


def video_size(scene: SceneData, max_long_side: int) -> tuple[int, int]:
    """The path video's (width, height): the capture's aspect, even dimensions for H.264's 4:2:0 chroma."""
    ref = scene.cameras[0]
    w, h = training_size(ref.width, ref.height, max_long_side)
    return max(2, w - w % 2), max(2, h - h % 2)


def write_video(loaded: LoadedModel, scene: SceneData, path: Path, config: ExportConfig,
                progress: ProgressFn = no_progress) -> None:
    """Render ``config.video_frames`` frames along the smoothed camera path and encode them as H.264.

    On the CPU the frames are rendered at most at the training resolution: ray marching costs ~2 s per
    320x240 frame there (it was over 3 minutes of a 10-minute preview run) and a field rendered above the
    resolution it learned from shows no more detail.
    """
    long_side = config.video_max_long_side
    trained = int(loaded.checkpoint.get("config", {}).get("max_long_side", 0) or 0)
    if loaded.model.aabb.device.type == "cpu" and trained > 0:
        long_side = min(long_side, trained)
    width, height = video_size(scene, long_side)
    path_cams = smooth_camera_path(scene.cameras, config.video_frames, width=width, height=height)

    volume = loaded.model.density_volume()

    def frames() -> Iterator[NDArray[np.uint8]]:
        for k, cam in enumerate(path_cams):
            progress(k, len(path_cams), f"rendering video frame {k + 1}/{len(path_cams)}")
            img = render_image(loaded.model, cam, loaded.settings, alpha_mask=loaded.alpha_mask,
                               density_volume=volume)
            yield (img.cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
        progress(len(path_cams), len(path_cams), "encoding video")

    write_mp4(frames(), path, fps=config.video_fps)


@torch.no_grad()
def density_points(loaded: LoadedModel, scene: SceneData) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """The field's solid grid nodes (``model.solid_nodes``: high density, inside the alpha mask), with the
    colour seen from the nearest training camera. At most ``MAX_POINTS`` points, densest first."""
    model, device = loaded.model, loaded.model.aabb.device
    pts, alpha = solid_nodes(model, loaded.alpha_mask)
    if pts.shape[0] == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    if pts.shape[0] > MAX_POINTS:
        sel = torch.topk(alpha, MAX_POINTS).indices
        pts, alpha = pts[sel], alpha[sel]
    # Colour as seen from the closest camera: the direction a user actually saw the surface from.
    centers = torch.tensor(np.stack([c.center for c in scene.cameras]), dtype=torch.float32, device=device)
    nearest = torch.cdist(pts, centers).argmin(dim=1)
    dirs = pts - centers[nearest]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    colors = torch.cat([model.color(model.normalize(pts[s : s + 65_536]), dirs[s : s + 65_536])
                        for s in range(0, pts.shape[0], 65_536)])
    return (pts.cpu().numpy().astype(np.float32),
            (colors.clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8))


def write_point_cloud(loaded: LoadedModel, scene: SceneData, path: Path) -> None:
    """Binary little-endian PLY with float x, y, z and uchar red, green, blue per vertex."""
    pts, colors = density_points(loaded, scene)
    vertex = np.empty(pts.shape[0], dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                                            ("green", "u1"), ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    with atomic_write_path(path, expected_bytes=vertex.nbytes + 1024) as tmp:
        PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(str(tmp))
    log.info("wrote density point cloud", extra={"path": str(path), "points": int(pts.shape[0])})

