"""Turn a gaussian checkpoint into the files users download: ``.splat``, ``.ply``, ``.mp4`` and the model.

Each output is written atomically (``.part`` then rename) so the API never serves half a file, and a full disk
becomes ``StorageFullError`` with the partial file removed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.export import copy_file_atomic, ensure_free_space
from vidscene.pipeline.export.camera_path import smooth_camera_path
from vidscene.pipeline.export.ply import write_gaussian_ply
from vidscene.pipeline.export.splat import write_splat
from vidscene.pipeline.export.video import write_mp4
from vidscene.pipeline.gaussian.model import Gaussians
from vidscene.pipeline.gaussian.render import cuda_available, render
from vidscene.pipeline.gaussian.train import load_checkpoint
from vidscene.pipeline.images import training_size
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.training import resolve_device

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("splat_cloud", "point_cloud", "video", "model")


def export_outputs(checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: ExportConfig, *,
                   device: str = "auto", progress: ProgressFn = no_progress) -> None:
    """Write every requested output of the model in ``checkpoint``.

    ``requests`` maps an output type (``splat_cloud`` | ``point_cloud`` | ``video`` | ``model``) to its
    destination path. The video follows a smoothed version of the capture path (``scene.cameras``) at no more
    than ``config.video_max_long_side`` pixels. ``progress`` counts rendered video frames plus one step per
    other output. Raises ``ValueError`` for an unknown output type (before writing anything) and
    ``StorageFullError`` when the disk is full.
    """
    unknown = sorted(set(requests) - set(OUTPUT_TYPES))
    if unknown:
        raise ValueError(f"unknown gaussian output types: {', '.join(unknown)}")
    ckpt = load_checkpoint(checkpoint)
    gaussians = Gaussians.from_state(ckpt["params"])
    sh_degree = int(ckpt.get("active_sh_degree", ckpt.get("sh_degree", gaussians.max_sh_degree)))
    sh_degree = min(sh_degree, gaussians.max_sh_degree)
    iteration = int(ckpt["iteration"])
    extra = {"stage": "export", "iteration": iteration, "gaussians": len(gaussians)}

    video_frames = config.video_frames if "video" in requests else 0
    total = video_frames + sum(1 for t in requests if t != "video")
    done = 0
    progress(done, total, "exporting")
    arrays = gaussians.to_numpy()
    for output_type, path in requests.items():
        if output_type == "splat_cloud":
            write_splat(path, arrays["means"], arrays["scales"], arrays["quats"], arrays["opacities"],
                        arrays["sh0"][:, 0, :])
        elif output_type == "point_cloud":
            write_gaussian_ply(path, arrays["means"], arrays["scales"], arrays["quats"], arrays["opacities"],
                               gaussians.sh_numpy())
        elif output_type == "model":
            copy_file_atomic(checkpoint, path)
        else:
            continue  # the video last: it is the slow one, the small files are useful sooner
        done += 1
        progress(done, total, f"wrote {output_type}")
        logger.info("wrote output", extra={**extra, "output": output_type, "path": str(path)})

    if "video" in requests:
        path = requests["video"]
        dev = resolve_device(device, cuda_usable=cuda_available)
        ensure_free_space(path.parent, 256 * 1024 * video_frames)  # generous: H.264 at these sizes is ~20 KB/frame

        def counted() -> Iterator[np.ndarray]:
            nonlocal done
            for k, frame in enumerate(_render_path(gaussians, scene, config, sh_degree, dev), start=1):
                yield frame
                done += 1
                progress(done, total, f"rendered video frame {k}/{video_frames}")

        write_mp4(counted(), path, fps=config.video_fps)
        logger.info("wrote output", extra={**extra, "output": "video", "path": str(path)})


def _render_path(gaussians: Gaussians, scene: SceneData, config: ExportConfig, sh_degree: int,
                 device: torch.device) -> Iterator[np.ndarray]:
    """uint8 frames along the smoothed capture path, rendered over a black background."""
    ref = scene.cameras[0]
    w, h = training_size(ref.width, ref.height, config.video_max_long_side)
    w, h = w - w % 2, h - h % 2  # H.264 yuv420p needs even sizes; choose them here rather than crop
    path = smooth_camera_path(scene.cameras, config.video_frames, width=w, height=h)
    g = Gaussians.from_state(gaussians.params, device)
    means, quats, scales, opacities, sh = g.activated()
    background = torch.zeros(3, device=device)
    with torch.no_grad():
        for cam in path:
            out = render(means, quats, scales, opacities, sh, cam, sh_degree=sh_degree, background=background)
            img = (out.image.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
            yield img
