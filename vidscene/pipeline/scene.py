"""The four stages of one scene, as plain functions over a scene's file layout.

Both the job engine (one Celery task per stage, resumable) and ``vidscene run`` (everything in one process)
drive a scene through these, so the two can never disagree about what a stage does or where it puts files.
Each stage is idempotent: re-running a finished stage finds its result on disk and returns quickly, and a
re-run training stage resumes from its newest checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from vidscene import catalogue, photos
from vidscene.pipeline import capture_check
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.config import PipelineConfig
from vidscene.pipeline.errors import ReconstructionError
from vidscene.pipeline.evaluate import metrics_path, write_quality
from vidscene.pipeline.export.initial_view import write_initial_view
from vidscene.pipeline.methods import method
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.training_method import TrainingMethod
from vidscene.storage.local import SceneFiles

log = logging.getLogger(__name__)

OutputSink = Callable[[str, int, Path], None]
"""Called with (output type, iteration, final path) once an output file is complete and in place."""


def _ignore_output(output_type: str, iteration: int, path: Path) -> None:
    """Default ``OutputSink``."""


class Stage(Protocol):
    """Every stage has this one signature, so the job runner and ``vidscene run`` call them alike; a stage
    that makes no output file never calls ``on_output``."""

    def __call__(self, work: SceneWork, progress: ProgressFn = no_progress,
                 on_output: OutputSink = _ignore_output) -> None: ...


@dataclass(frozen=True)
class SceneWork:
    """Everything a stage needs to know about one scene; no database or HTTP objects."""

    scene_id: str
    video: Path
    files: SceneFiles
    training_mode: str  # a name in ``catalogue.TRAINING_MODES`` (and so in ``methods.METHODS``)
    output_types: tuple[str, ...]
    save_iterations: tuple[int, ...]
    config: PipelineConfig

    @classmethod
    def create(cls, *, scene_id: str, video: Path, files: SceneFiles, training_mode: str,
               output_types: Sequence[str], save_iterations: Sequence[int], total_iterations: int,
               config: PipelineConfig) -> SceneWork:
        """Raises ``ValueError`` (``methods.UnknownModeError`` for the mode) for anything the catalogue lacks."""
        method(training_mode)
        unknown = [t for t in output_types if t not in catalogue.TRAINING_MODES[training_mode].outputs]
        if unknown:
            raise ValueError(f"output types {unknown} are not available for training mode {training_mode}")
        iterations = tuple(sorted({int(i) for i in save_iterations if 0 < int(i) <= total_iterations}
                                  | {total_iterations}))
        return cls(scene_id=scene_id, video=video, files=files, training_mode=training_mode,
                   output_types=tuple(dict.fromkeys(output_types)), save_iterations=iterations,
                   config=config.with_iterations(total_iterations))

    @property
    def method(self) -> TrainingMethod:
        return method(self.training_mode)

    @property
    def total_iterations(self) -> int:
        return self.config.training(self.training_mode).iterations

    def output_path(self, output_type: str, iteration: int) -> Path:
        extension = catalogue.OUTPUT_TYPES[output_type].extension(self.training_mode)
        return self.files.output_path(output_type, iteration, extension)

    def checkpoint_path(self, iteration: int) -> Path:
        return self.method.checkpoints.path(self.files.train_dir, iteration)


def run_frames(work: SceneWork, progress: ProgressFn = no_progress, on_output: OutputSink = _ignore_output) -> None:
    """Extract the frames, then check the capture on them; ``CaptureError`` when it cannot make a scene."""
    from vidscene.pipeline.frames import extract_frames
    from vidscene.pipeline.photo_frames import extract_photo_frames

    extract = extract_photo_frames if photos.is_archive(work.video) else extract_frames
    result = extract(work.video, work.files.frames_dir, work.files.thumbnail, work.config.frames, progress)
    # Source index -> time: the frames stage spaces its samples evenly in time over the whole clip.
    duration, count = float(result.stats["duration_s"]), int(result.stats["source_frames"])
    times = [i * duration / max(count - 1, 1) for i in result.source_frame_indices]
    report = capture_check.check_frames(result.frame_paths, result.source_frame_indices, times,
                                        unit="photo" if result.stats.get("input") == "photos" else "s")
    _publish(work, report)
    report.raise_if_refused()


def run_sfm(work: SceneWork, progress: ProgressFn = no_progress, on_output: OutputSink = _ignore_output) -> None:
    """Place the frames in 3D, then add what SfM placed to the capture check's report."""
    from vidscene.pipeline.sfm import reconstruct

    report = capture_check.CaptureReport.read(work.files.capture_report)
    if SceneData.exists(work.files.sfm_dir):
        scene = SceneData.load(work.files.sfm_dir)
    else:
        try:
            scene = reconstruct(work.files.frames_dir, work.files.sfm_dir, work.config.sfm, progress)
        except ReconstructionError as exc:
            message = capture_check.explain_failure(str(exc), report)
            if report is not None:
                _publish(work, capture_check.placement_failed(report, str(exc)))
            raise ReconstructionError(message) from exc
    if report is not None and report.stage == "frames":
        _publish(work, capture_check.check_placement(report, _frame_names(work), capture_check.placement_of(scene)))


def _frame_names(work: SceneWork) -> list[str]:
    """The frames stage's files, in the order of the capture report's frames (time order)."""
    return sorted(p.name for p in work.files.frames_dir.iterdir() if p.suffix == ".png")


def _publish(work: SceneWork, report: capture_check.CaptureReport) -> None:
    report.write(work.files.capture_report)
    for problem in report.problems:
        log.info("capture check: %s", problem.code, extra={"scene": work.scene_id, "stage": report.stage,
                                                           "severity": problem.severity,
                                                           "frames": len(problem.frames)})


def run_train(work: SceneWork, progress: ProgressFn = no_progress, on_output: OutputSink = _ignore_output) -> None:
    """Train, exporting the requested outputs as each requested iteration is saved (users see early results)."""
    scene = SceneData.load(work.files.sfm_dir)

    def on_save(iteration: int, checkpoint: Path) -> None:
        export_iteration(work, scene, iteration, checkpoint, no_progress, on_output)

    report = capture_check.CaptureReport.read(work.files.capture_report)
    work.method.train(scene, training_config(work.config, report), work.files.train_dir,
                      save_iterations=work.save_iterations, progress=progress, on_save=on_save)
    final = work.checkpoint_path(work.total_iterations)
    if report is not None and report.stage != "train" and final.is_file():
        left_out = work.method.transients(final, scene)
        _publish(work, capture_check.check_training(report, _frame_names(work), left_out))


def training_config(config: PipelineConfig, report: capture_check.CaptureReport | None) -> PipelineConfig:
    """The preset's settings as this capture trains with them: the per-frame colour maps
    (``gaussian/appearance.py``) only where the capture check saw the exposure or white balance change. There
    they keep the drift out of the scene (views off the path in the capture's own colours: +0.8 dB); on a
    steady capture they have nothing to absorb but view-dependent colour, and cost views off the path
    0.4-0.8 dB (bench/RESULTS.md, sessions 6 and 7)."""
    drifting = report is not None and any(p.code == "exposure_changes" for p in report.problems)
    if drifting or not config.gaussian.appearance_lr:
        return config
    return replace(config, gaussian=replace(config.gaussian, appearance_lr=0.0))


def run_export(work: SceneWork, progress: ProgressFn = no_progress, on_output: OutputSink = _ignore_output) -> None:
    """Make sure every requested output exists for every saved iteration (after a crash between save and export)."""
    scene = SceneData.load(work.files.sfm_dir)
    for n, iteration in enumerate(work.save_iterations):
        progress(n, len(work.save_iterations), f"exporting iteration {iteration}")
        checkpoint = work.checkpoint_path(iteration)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"checkpoint for iteration {iteration} is missing: {checkpoint}")
        export_iteration(work, scene, iteration, checkpoint, progress, on_output)
    progress(len(work.save_iterations), len(work.save_iterations), "exported")


def export_iteration(work: SceneWork, scene: SceneData, iteration: int, checkpoint: Path, progress: ProgressFn,
                      on_output: OutputSink) -> None:
    """Write the requested outputs of one saved iteration that are missing, announce each, and measure its
    quality once (``metrics/<iteration>.json``); the train stage calls it as each checkpoint lands."""
    if not work.files.initial_view.is_file():  # the viewer opens from the first capture camera
        write_initial_view(work.files.initial_view, scene.cameras)
    requests = {t: work.output_path(t, iteration) for t in work.output_types}
    missing = {t: p for t, p in requests.items() if not p.is_file()}
    if missing:
        log.info("exporting outputs", extra={"scene": work.scene_id, "stage": "export", "iteration": iteration,
                                             "outputs": sorted(missing)})
        work.method.export(checkpoint, scene, missing, work.config, progress=progress)
    for output_type, path in requests.items():
        on_output(output_type, iteration, path)
    if not metrics_path(work.files.metrics_dir, iteration).is_file():
        quality = work.method.evaluate(checkpoint, scene, work.config)
        write_quality(work.files.metrics_dir, iteration, quality)
        log.info("measured quality", extra={"scene": work.scene_id, "stage": "export", "iteration": iteration,
                                            "psnr": round(quality.psnr, 2), "ssim": round(quality.ssim, 3)})


STAGES: Mapping[str, Stage] = MappingProxyType({"frames": run_frames, "sfm": run_sfm, "train": run_train,
                                                "export": run_export})
"""The stages in the order they run."""
