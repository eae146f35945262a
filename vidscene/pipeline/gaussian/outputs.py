"""Turn a gaussian checkpoint into the files users download: ``.spz``, ``.splat``, ``.ply``, ``.compressed.ply``,
``.mp4`` and the model.

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
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.export import copy_file_atomic, ensure_free_space
from vidscene.pipeline.export.camera_path import path_video_size, smooth_camera_path
from vidscene.pipeline.export.compressed_ply import write_compressed_ply
from vidscene.pipeline.export.ply import write_gaussian_ply
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


def _model(path: Path, m: ExportedModel) -> None:
    copy_file_atomic(m.checkpoint, path)


FILE_WRITERS: Mapping[str, Callable[[Path, ExportedModel], None]] = MappingProxyType({
    "spz": _spz,
    "splat_cloud": _splat_cloud,
    "point_cloud": _point_cloud,
    "compressed_ply": _compressed_ply,
    "model": _model,
})
OUTPUT_TYPES = (*FILE_WRITERS, "video")  # the video is rendered, not written from the arrays: see export_outputs
assert set(OUTPUT_TYPES) == set(catalogue.TRAINING_MODES["gaussian"].outputs), \
    "every gaussian output type in the catalogue needs its writer here, and no other"


def export_outputs(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: ExportConfig, *,
                   device: str = "auto", progress: ProgressFn = no_progress, keep: Keep | None = None) -> int:
    """Write every requested output of the model in ``checkpoint``; returns how many gaussians they hold.

    ``requests`` maps an output type (one of ``OUTPUT_TYPES``) to its destination path. SPZ and compressed PLY
    keep the SH bands up to the degree the checkpoint was trained to; the ``.ply`` keeps all of them. The video
    follows a smoothed version of the capture path (``scene.cameras``) at no more than
    ``config.video_max_long_side`` pixels. ``keep`` (an edit, ``pipeline.export.edits``) picks the gaussians
    to write from their exported positions; the video is rendered from the same ones. ``progress`` counts
    rendered video frames plus one step per other output. Raises ``ValueError`` for an unknown output type
    (before writing anything) and ``StorageFullError`` when the disk is full.
    """
    unknown = sorted(set(requests) - set(OUTPUT_TYPES))
    if unknown:
        raise ValueError(f"unknown gaussian output types: {', '.join(unknown)}")
    gaussians, model = exported_model(checkpoint, scene, keep)
    extra = {"stage": "export", "checkpoint": checkpoint.name, "gaussians": len(gaussians)}
    video_frames = config.video_frames if "video" in requests else 0
    total = video_frames + sum(1 for t in requests if t != "video")
    done = 0
    progress(done, total, "exporting")
    for output_type, path in requests.items():
        if output_type not in FILE_WRITERS:
            continue  # the video last: it is the slow one, the small files are useful sooner
        FILE_WRITERS[output_type](path, model)
        done += 1
        progress(done, total, f"wrote {output_type}")
        logger.info("wrote output", extra={**extra, "output": output_type, "path": str(path)})

    if "video" in requests:
        path = requests["video"]
        dev = resolve_device(device, cuda_usable=cuda_available)
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
