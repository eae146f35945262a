"""Outputs made after a scene finished, from its kept models: an output type the upload did not ask for, or
the files of an edit (crop and clean) in every format.

The job engine runs this for a derive job (``jobs.derive_execution``); it reads the saved checkpoints and the
SfM cameras like the export stage and writes beside the originals, never over them: the original of an
output type is ``outputs/<type>/<iteration><ext>``, edit version N's is ``outputs/edits/N/<type>/...``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from vidscene import catalogue
from vidscene.edits import UNEDITED, Operation
from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.errors import PipelineError
from vidscene.pipeline.export.edits import edit_filter
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.scene import OutputSink, SceneWork

log = logging.getLogger(__name__)


class NoModelKeptError(PipelineError):
    """No saved iteration of the scene has its model on disk any more."""


@dataclass(frozen=True)
class DeriveRequest:
    output_types: tuple[str, ...]
    edit_version: int = 0  # 0: the original outputs
    operations: tuple[Operation, ...] = ()  # the edit of ``edit_version`` (empty for 0)


def _ignore_output(output_type: str, iteration: int, path: Path) -> None:
    """Default ``OutputSink``."""


def kept_iterations(work: SceneWork) -> list[int]:
    """The saved iterations whose model is still on disk (what outputs can be made from)."""
    return [it for it in work.save_iterations if work.checkpoint_path(it).is_file()]


def derive_outputs(work: SceneWork, request: DeriveRequest, progress: ProgressFn = no_progress,
                   on_output: OutputSink = _ignore_output) -> int | None:
    """Write the request's output types at every kept iteration, announcing each file; returns the gaussians
    an edit keeps at the last of them (None for the original outputs or a mode without gaussians).

    The original of a type is made only where missing (a re-delivered job resumes); an edit's files are
    always written, because its version number is new. ``UNEDITED`` types are skipped for an edit: the job
    layer serves their originals. Raises ``NoModelKeptError`` when no model is kept, ``ValueError`` for an
    output type the mode does not make or an edit of a scene without gaussians.
    """
    makes = catalogue.TRAINING_MODES[work.training_mode].outputs
    unknown = [t for t in request.output_types if t not in makes]
    if unknown:
        raise ValueError(f"{work.training_mode} scenes do not make {unknown}")
    edited = request.edit_version > 0
    if edited and work.training_mode != "gaussian":
        raise ValueError("only gaussian scenes can be edited")
    iterations = kept_iterations(work)
    if not iterations:
        raise NoModelKeptError("This scene's trained model is no longer kept, so no other output can be made.")
    scene = SceneData.load(work.files.sfm_dir)
    types = [t for t in request.output_types if not (edited and t in UNEDITED)]
    kept: int | None = None
    for n, iteration in enumerate(iterations):
        progress(n, len(iterations), f"making outputs of iteration {iteration}")
        paths = {t: work.files.edited_output_path(request.edit_version, t, iteration,
                                                  catalogue.OUTPUT_TYPES[t].extension(work.training_mode))
                 for t in types}
        checkpoint = work.checkpoint_path(iteration)
        if edited:
            from vidscene.pipeline.gaussian.outputs import export_outputs

            kept = export_outputs(checkpoint, scene, paths, work.config.export, device=work.config.device,
                                  keep=edit_filter(request.operations), progress=progress)
        else:
            missing = {t: p for t, p in paths.items() if not p.is_file()}
            if missing:
                work.method.export(checkpoint, scene, missing, work.config, progress=progress)
        for output_type, path in paths.items():
            on_output(output_type, iteration, path)
        log.info("derived outputs", extra={"scene": work.scene_id, "iteration": iteration, "outputs": types,
                                           "edit_version": request.edit_version, "kept": kept})
    progress(len(iterations), len(iterations), "outputs made")
    return kept
