"""Turn a gaussian checkpoint into the files users download: ``.spz``, ``.sog``, ``.glb``, ``.splat``, ``.ply``,
``.compressed.ply``, ``.mp4`` and the model.

Each output is written atomically (``.part`` then rename) so the API never serves half a file, and a full disk
becomes ``StorageFullError`` with the partial file removed. ``FILE_WRITERS`` maps every output type but the
video to its writer: a new gaussian output type is its catalogue entry, its writer module and one line there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from numpy.typing import NDArray

from vidscene import catalogue
from vidscene.pipeline.cameras import Camera, SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.export import copy_file_atomic, ensure_free_space
from vidscene.pipeline.export.camera_path import path_video_size, smooth_camera_path
from vidscene.pipeline.export.compressed_ply import write_compressed_ply
from vidscene.pipeline.export.gltf import write_gltf
from vidscene.pipeline.export.mesh import View, fuse, write_mesh_glb
from vidscene.pipeline.export.ply import write_gaussian_ply
from vidscene.pipeline.export.sog import write_sog
from vidscene.pipeline.export.splat import write_splat
from vidscene.pipeline.export.spz import write_spz
from vidscene.pipeline.export.video import write_mp4
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.gaussian.cleanup import floater_mask
from vidscene.pipeline.gaussian.model import Gaussians
from vidscene.pipeline.gaussian.render import cuda_available, render
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.training import resolve_device

logger = logging.getLogger(__name__)
MESH_REACH = 10.0


@dataclass(frozen=True)
class ExportedModel:
    """What the file writers read: the checkpoint and its gaussians as raw training parameters.

    ``sh`` (N, K, 3) holds every SH coefficient the model has; ``sh_degree`` is the degree it was trained up
    to (``active_sh_degree``: a model saved early has not used its higher bands yet).
    """

    checkpoint: Path
    means: NDArray[np.float32]
    log_scales: NDArray[np.float32]
    quats: NDArray[np.float32]
    opacity_logits: NDArray[np.float32]
    sh: NDArray[np.float32]
    sh_degree: int


def _splat_cloud(path: Path, m: ExportedModel) -> None:
    write_splat(path, m.means, m.log_scales, m.quats, m.opacity_logits, m.sh[:, 0, :])


def _point_cloud(path: Path, m: ExportedModel) -> None:
    write_gaussian_ply(path, m.means, m.log_scales, m.quats, m.opacity_logits, m.sh)


def _spz(path: Path, m: ExportedModel) -> None:
    write_spz(path, m.means, m.log_scales, m.quats, m.opacity_logits, m.sh, sh_degree=m.sh_degree)


def _compressed_ply(path: Path, m: ExportedModel) -> None:
    write_compressed_ply(path, m.means, m.log_scales, m.quats, m.opacity_logits, m.sh, sh_degree=m.sh_degree)


def _sog(path: Path, m: ExportedModel) -> None:
    write_sog(path, m.means, m.log_scales, m.quats, m.opacity_logits, m.sh, sh_degree=min(m.sh_degree, 3))


def _gltf(path: Path, m: ExportedModel) -> None:
    write_gltf(path, m.means, m.log_scales, m.quats, m.opacity_logits, m.sh, sh_degree=min(m.sh_degree, 3))


def _model(path: Path, m: ExportedModel) -> None:
    copy_file_atomic(m.checkpoint, path)


FILE_WRITERS: Mapping[str, Callable[[Path, ExportedModel], None]] = MappingProxyType({
    "spz": _spz,
    "splat_cloud": _splat_cloud,
    "point_cloud": _point_cloud,
    "compressed_ply": _compressed_ply,
    "sog": _sog,
    "gltf": _gltf,
    "model": _model,
})
# The video and the mesh are rendered, not written from the arrays: see export_outputs.
OUTPUT_TYPES = (*FILE_WRITERS, "mesh", "video")
assert set(OUTPUT_TYPES) == set(catalogue.TRAINING_MODES["gaussian"].outputs), \
    "every gaussian output type in the catalogue needs its writer here, and no other"


def export_outputs(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: ExportConfig, *,
                   device: str = "auto", progress: ProgressFn = no_progress, keep: Keep | None = None) -> int:
    """Write every requested output of the model in ``checkpoint``; returns how many gaussians they hold.

    ``requests`` maps an output type (one of ``OUTPUT_TYPES``) to its destination path. SPZ, SOG, glTF and
    compressed PLY keep the SH bands up to the degree the checkpoint was trained to; the ``.ply`` keeps all of
    them. The mesh is fused from the capture cameras' rendered depth (``write_mesh``); the video follows a
    smoothed version of the capture path (``scene.cameras``) at no more than ``config.video_max_long_side``
    pixels. ``keep`` (an edit, ``pipeline.export.edits``) picks the gaussians to write from their exported
    positions; the mesh and the video are rendered from the same ones. ``progress`` counts mesh views and video
    frames plus one step per other output. Raises ``ValueError`` for an unknown output type (before writing
    anything) and ``StorageFullError`` when the disk is full.
    """
    unknown = sorted(set(requests) - set(OUTPUT_TYPES))
    if unknown:
        raise ValueError(f"unknown gaussian output types: {', '.join(unknown)}")
    gaussians, model = exported_model(checkpoint, scene, keep)
    extra = {"stage": "export", "checkpoint": checkpoint.name, "gaussians": len(gaussians)}
    video_frames = config.video_frames if "video" in requests else 0
    mesh_views = len(_mesh_cameras(scene, config)) if "mesh" in requests else 0
    total = video_frames + mesh_views + sum(1 for t in requests if t in FILE_WRITERS)
    done = 0
    progress(done, total, "exporting")
    for output_type, path in requests.items():
        if output_type not in FILE_WRITERS:
            continue  # the video last: it is the slow one, the small files are useful sooner
        FILE_WRITERS[output_type](path, model)
        done += 1
        progress(done, total, f"wrote {output_type}")
        logger.info("wrote output", extra={**extra, "output": output_type, "path": str(path)})

    dev = resolve_device(device, cuda_usable=cuda_available)
    if "mesh" in requests:
        write_mesh(requests["mesh"], gaussians, scene, config, model.sh_degree, dev,
                   lambda k: progress(done + k, total, f"rendered mesh view {k}/{mesh_views}"))
        done += mesh_views
        logger.info("wrote output", extra={**extra, "output": "mesh", "path": str(requests["mesh"])})

    if "video" in requests:
        path = requests["video"]
        ensure_free_space(path.parent, 256 * 1024 * video_frames)  # generous: H.264 at these sizes is ~20 KB/frame

        def counted() -> Iterator[np.ndarray]:
            nonlocal done
            for k, frame in enumerate(_render_path(gaussians, scene, config, model.sh_degree, dev), start=1):
                yield frame
                done += 1
                progress(done, total, f"rendered video frame {k}/{video_frames}")

        write_mp4(counted(), path, fps=config.video_fps)
        logger.info("wrote output", extra={**extra, "output": "video", "path": str(path)})
    return len(gaussians)


Keep = Callable[[NDArray[np.float32]], NDArray[np.bool_]]
"""Which gaussians to write, from their (N, 3) exported positions."""


def exported_model(checkpoint: Path, scene: SceneData, keep: Keep | None = None) -> tuple[Gaussians, ExportedModel]:
    """The gaussians a checkpoint exports (floaters dropped, ``keep`` applied) and the writers' arrays of them."""
    ckpt = CHECKPOINTS.load(checkpoint)
    gaussians = without_floaters(Gaussians.from_state(ckpt["params"]), scene, int(ckpt["iteration"]))
    sh_degree = int(ckpt.get("active_sh_degree", ckpt.get("sh_degree", gaussians.max_sh_degree)))
    sh_degree = min(sh_degree, gaussians.max_sh_degree)
    if keep is not None:
        mask = torch.from_numpy(np.asarray(keep(gaussians.exported()["means"]), dtype=bool))
        filt = gaussians.filter_variances
        gaussians = Gaussians({k: v.detach()[mask] for k, v in gaussians.params.items()},
                              None if filt is None else filt[mask])
    arrays = gaussians.exported()  # the 3D filter baked in: viewers do not know it
    return gaussians, ExportedModel(checkpoint=checkpoint, means=arrays["means"], log_scales=arrays["scales"],
                                    quats=arrays["quats"], opacity_logits=arrays["opacities"],
                                    sh=gaussians.sh_numpy(), sh_degree=sh_degree)


def _mesh_cameras(scene: SceneData, config: ExportConfig) -> list[Camera]:
    """At most ``config.mesh_views`` capture cameras, evenly spread, at most ``mesh_long_side`` pixels wide."""
    cams = scene.cameras
    if len(cams) > config.mesh_views:
        cams = [cams[round(i)] for i in np.linspace(0, len(cams) - 1, config.mesh_views)]
    out = []
    for cam in cams:
        shrink = min(1.0, config.mesh_long_side / max(cam.width, cam.height))
        out.append(cam.scaled(max(1, round(cam.width * shrink)), max(1, round(cam.height * shrink))))
    return out


def mesh_bounds(means: NDArray[np.floating], scene: SceneData) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The box the mesh is fused in: what holds 98% of the gaussians on each axis, padded by 5%, and never more
    than ``MESH_REACH`` camera radii from the cameras' centre (the world is normalised so the cameras are within
    1): a far background is left out rather than coarsening the whole grid."""
    m = np.asarray(means, dtype=np.float64)
    lo, hi = np.percentile(m, 1, axis=0), np.percentile(m, 99, axis=0)
    pad = 0.05 * (hi - lo) + 1e-3
    centre = np.mean([c.center for c in scene.cameras], axis=0)
    return np.maximum(lo - pad, centre - MESH_REACH), np.minimum(hi + pad, centre + MESH_REACH)


def write_mesh(path: Path, gaussians: Gaussians, scene: SceneData, config: ExportConfig, sh_degree: int,
               device: torch.device, rendered: Callable[[int], None] = lambda _k: None) -> None:
    """The mesh output: each of ``_mesh_cameras`` rendered (depth, colour, opacity) and fused
    (``export/mesh.py``); ``rendered(k)`` after the k-th view."""
    g = Gaussians.from_state(gaussians.state(), device)
    means, quats, scales, opacities, sh = g.activated()
    views = []
    with torch.no_grad():
        for k, cam in enumerate(_mesh_cameras(scene, config), start=1):
            out = render(means, quats, scales, opacities, sh, cam, sh_degree=sh_degree,
                         background=torch.zeros(3, device=device), with_depth=True)
            assert out.depth is not None
            views.append(View(cam, out.depth.cpu().numpy().astype(np.float32),
                              out.image.clamp(0.0, 1.0).cpu().numpy().astype(np.float32),
                              out.alpha.cpu().numpy().astype(np.float32)))
            rendered(k)
    lo, hi = mesh_bounds(gaussians.exported()["means"], scene)
    write_mesh_glb(path, fuse(views, lo, hi, config.mesh_resolution))


def without_floaters(gaussians: Gaussians, scene: SceneData, iteration: int) -> Gaussians:
    """``gaussians`` less the floaters ``cleanup.floater_mask`` finds (never all of them), counts logged."""
    means, _, scales, opacities, _ = gaussians.activated()
    found = floater_mask(means.detach(), scales.detach(), opacities.detach(), scene.cameras)
    logger.info("dropped floaters before export", extra={
        "stage": "export", "iteration": iteration, "gaussians": len(gaussians), "dropped": found.dropped,
        "transparent": found.transparent, "huge": found.huge, "outside": found.outside})
    if found.dropped == 0:
        return gaussians
    keep = found.keep
    filt = gaussians.filter_variances
    return Gaussians({k: v.detach()[keep] for k, v in gaussians.params.items()},
                     None if filt is None else filt[keep])


def _render_path(gaussians: Gaussians, scene: SceneData, config: ExportConfig, sh_degree: int,
                 device: torch.device) -> Iterator[np.ndarray]:
    """uint8 frames along the smoothed capture path, rendered over a black background."""
    w, h = path_video_size(scene.cameras, config.video_max_long_side)
    path = smooth_camera_path(scene.cameras, config.video_frames, width=w, height=h)
    g = Gaussians.from_state(gaussians.state(), device)  # state() carries the 3D filter, params alone not
    means, quats, scales, opacities, sh = g.activated()
    background = torch.zeros(3, device=device)
    with torch.no_grad():
        for cam in path:
            out = render(means, quats, scales, opacities, sh, cam, sh_degree=sh_degree, background=background)
            img = (out.image.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
            yield img
