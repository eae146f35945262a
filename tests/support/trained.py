"""A finished gaussian scene with real kept models, without training: known gaussians saved as checkpoints in
the trainer's format, the SfM cameras they were seen from, and the original outputs written by the pipeline's
own export, seeded as the job engine leaves them (``scenes.seed_scene``). What outputs made after the fact
(edits, formats not asked for) start from.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sqlalchemy import select

from tests.support.scenes import seed_scene
from tests.support.synthetic import orbit_cameras
from vidscene import catalogue
from vidscene.config import Settings
from vidscene.db.models import DeriveJob
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import ExportConfig
from vidscene.pipeline.gaussian.checkpoint_files import CHECKPOINTS
from vidscene.pipeline.gaussian.outputs import export_outputs
from vidscene.pipeline.training import save_checkpoint
from vidscene.storage import Storage

ITERATIONS = (2, 4)
# Gaussians fill this cube; the cameras orbit it at radius about 3.
HALF_EXTENT = 0.5


@dataclass(frozen=True)
class Deployment:
    """What ``seed_scene`` needs of a server: its data dir and database."""

    data_dir: Path
    database_url: str


def write_model(root: Path, n: int = 1500, seed: int = 0) -> None:
    """``root/sfm`` (4 orbit cameras over noise images) and ``root/train/checkpoints/<it>.ckpt`` for each of
    ``ITERATIONS``: ``n`` small opaque gaussians in the cube, a little moved between iterations."""
    rng = np.random.default_rng(seed)
    cameras = orbit_cameras(4, 32, 24)
    images = root / "sfm" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for cam in cameras:
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(images / cam.image_name, format="PNG")
    points = rng.uniform(-HALF_EXTENT, HALF_EXTENT, (n, 3)).astype(np.float32)
    SceneData(cameras=cameras, images_dir=images, points=points,
              colors=rng.integers(0, 256, (n, 3), dtype=np.uint8)).save(root / "sfm")
    for iteration in ITERATIONS:
        means = points + rng.normal(scale=0.01 * iteration, size=points.shape).astype(np.float32)
        params = {"means": torch.from_numpy(means), "scales": torch.full((n, 3), -4.0),
                  "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
                  "opacities": torch.full((n,), 2.0), "sh0": torch.from_numpy(rng.uniform(-1, 1, (n, 1, 3))).float(),
                  "shN": torch.from_numpy(rng.uniform(-0.3, 0.3, (n, 3, 3))).float()}
        save_checkpoint({"format": CHECKPOINTS.format, "iteration": iteration, "params": params, "sh_degree": 1,
                         "active_sh_degree": 1, "seconds": 1.0, "metrics": {}},
                        CHECKPOINTS.path(root / "train", iteration))


def export_originals(root: Path, output_types: tuple[str, ...]) -> dict[str, dict[int, bytes]]:
    """The files the export stage would have written for the model under ``root``, as bytes."""
    scene = SceneData.load(root / "sfm")
    out: dict[str, dict[int, bytes]] = {t: {} for t in output_types}
    for iteration in ITERATIONS:
        paths = {t: root / "export" / f"{t}-{iteration}{catalogue.OUTPUT_TYPES[t].extension('gaussian')}"
                 for t in output_types}
        export_outputs(CHECKPOINTS.path(root / "train", iteration), scene, paths,
                       ExportConfig(video_frames=6, video_max_long_side=32), device="cpu")
        for output_type, path in paths.items():
            out[output_type][iteration] = path.read_bytes()
    return out


def seed_trained_scene(deployment: Deployment, username: str, model: Path,
                       originals: dict[str, dict[int, bytes]], *, name: str = "Tabletop") -> str:
    """A done gaussian scene (preview preset) with ``originals`` as its outputs and the model under ``model``
    (``write_model``) as its SfM result and kept checkpoints; its id."""
    scene_id = seed_scene(deployment, username, name=name, outputs=originals,  # type: ignore[arg-type]
                          total_iterations=ITERATIONS[-1], save_iterations=ITERATIONS)
    files = Storage(deployment.data_dir).scene(scene_id)
    shutil.copytree(model / "sfm", files.sfm_dir)
    shutil.copytree(model / "train", files.train_dir)
    return scene_id


def run_derive_jobs(settings: Settings) -> int:
    """Run every queued derive job as a worker would (``jobs.derive_execution``); how many there were."""
    from vidscene.jobs.derive_execution import run_derive
    from vidscene.jobs.stage_execution import WorkerContext

    ctx = WorkerContext.create(settings, lambda job_id, stage: None)
    try:
        with ctx.factory() as session:
            ids = list(session.scalars(select(DeriveJob.id).where(DeriveJob.state == "queued")
                                       .order_by(DeriveJob.id)))
        for job_id in ids:
            run_derive(ctx, job_id)
        return len(ids)
    finally:
        ctx.engine.dispose()
        if ctx.scratch is not None:  # as a worker process's exit would: its scratch folder and lock go
            ctx.scratch.release()
