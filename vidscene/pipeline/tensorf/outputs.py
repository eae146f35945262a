"""Files a user downloads from a TensoRF checkpoint: a fly-through video, the checkpoint, a density point cloud."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.export import copy_file_atomic
from vidscene.pipeline.export.camera_path import path_video_size, smooth_camera_path
from vidscene.pipeline.export.ply import write_point_ply
from vidscene.pipeline.export.video import write_mp4
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.tensorf.model import solid_nodes
from vidscene.pipeline.tensorf.render import render_image
from vidscene.pipeline.tensorf.space import NdcSpace
from vidscene.pipeline.tensorf.train import LoadedModel, load_model
from vidscene.pipeline.training import resolve_device

log = logging.getLogger(__name__)

OUTPUT_TYPES = ("video", "model", "point_cloud")
MAX_POINTS = 500_000
FAR_FACTOR = 3.0  # NDC point clouds stop at this many times the SfM points' far depth


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


def write_video(loaded: LoadedModel, scene: SceneData, path: Path, config: ExportConfig,
                progress: ProgressFn = no_progress) -> None:
    """Render ``config.video_frames`` frames along the smoothed camera path and encode them as H.264.

    The frames are at the capture's working resolution, as for gaussian scenes, even where the field trained
    at a lower one (preview: 160 px against 320 px frames): the video is what a person watches, and a
    smaller one than their own clip reads as broken. On the CPU that costs time: ray marching a 320x240
    frame takes ~2 s on 2 quiet cores, 4x a 160x120 one (bench/RESULTS.md, TensoRF).
    """
    width, height = path_video_size(scene.cameras, config.video_max_long_side)
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
    """World positions of the field's solid grid nodes (``model.solid_nodes``), with the colour seen from the
    nearest training camera. At most ``MAX_POINTS`` points, densest first.

    In NDC (forward-facing captures) nodes farther than ``FAR_FACTOR`` times the SfM points' 99th-percentile
    depth are left out: NDC reaches to infinity, and a few far nodes would dwarf the scene in a viewer.
    """
    model, device = loaded.model, loaded.model.aabb.device
    pts, alpha = solid_nodes(model, loaded.alpha_mask)
    if pts.shape[0] == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    space = model.space
    if isinstance(space, NdcSpace):
        limit = FAR_FACTOR * _content_depth(space, scene)
        near_enough = space.depth(pts) <= limit
        pts, alpha = pts[near_enough], alpha[near_enough]
    if pts.shape[0] > MAX_POINTS:
        sel = torch.topk(alpha, MAX_POINTS).indices
        pts, alpha = pts[sel], alpha[sel]
    normed = model.normalize(pts)
    world = space.to_world(pts)
    # Colour as seen from the closest camera: the direction a user actually saw the surface from.
    centers = torch.tensor(np.stack([c.center for c in scene.cameras]), dtype=torch.float32, device=device)
    nearest = torch.cdist(world, centers).argmin(dim=1)
    dirs = world - centers[nearest]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    colors = torch.cat([model.color(normed[s : s + 65_536], dirs[s : s + 65_536])
                        for s in range(0, world.shape[0], 65_536)]) if world.shape[0] else torch.zeros(0, 3)
    return (world.cpu().numpy().astype(np.float32),
            (colors.clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8))


def _content_depth(space: NdcSpace, scene: SceneData) -> float:
    """99th percentile depth along the reference axis of the SfM points in front of the near plane."""
    R = np.asarray(space.rotation, dtype=np.float64).reshape(3, 3)
    depth = (np.asarray(scene.points, dtype=np.float64).reshape(-1, 3) - np.asarray(space.centre)) @ R[2]
    depth = depth[np.isfinite(depth) & (depth > space.near)]
    return float(np.percentile(depth, 99.0)) if depth.size else 100.0 * space.near


def write_point_cloud(loaded: LoadedModel, scene: SceneData, path: Path) -> None:
    """Binary little-endian PLY with float x, y, z and uchar red, green, blue per vertex."""
    pts, colors = density_points(loaded, scene)
    write_point_ply(path, pts, colors)
    log.info("wrote density point cloud", extra={"path": str(path), "points": int(pts.shape[0])})

