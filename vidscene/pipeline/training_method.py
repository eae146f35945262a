"""What a training method supplies: the contract each method's package fulfils in its ``method.py``.

A method is its config section (``PipelineConfig.training``), its checkpoint files, and three functions that
the scene stages call with the same arguments for every method: train, export, evaluate. The registry of
methods is ``pipeline.methods``; how to add one is in docs/extending.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vidscene.pipeline.cameras import SceneData
from vidscene.pipeline.checkpoints import CheckpointFiles
from vidscene.pipeline.config import PipelineConfig
from vidscene.pipeline.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from vidscene.pipeline.evaluate import Quality


class Trainer(Protocol):
    """Train ``config.training(mode)`` iterations into ``work_dir``, resuming from its newest checkpoint, and
    call ``on_save(iteration, path)`` once each numbered checkpoint of ``save_iterations`` is in place."""

    def __call__(self, scene: SceneData, config: PipelineConfig, work_dir: Path, *, save_iterations: Sequence[int],
                 progress: ProgressFn = no_progress, on_save: Callable[[int, Path], None] | None = None) -> None: ...


class Exporter(Protocol):
    """Write each requested output type of one checkpoint to its path (``requests``: output type -> path)."""

    def __call__(self, checkpoint: Path, scene: SceneData, requests: Mapping[str, Path], config: PipelineConfig, *,
                 progress: ProgressFn = no_progress) -> None: ...


class Evaluator(Protocol):
    """Held-out quality of one checkpoint at the frames' working resolution (``pipeline.evaluate``)."""

    def __call__(self, checkpoint: Path, scene: SceneData, config: PipelineConfig) -> Quality: ...


class TransientReader(Protocol):
    """Share of each training frame (by image name) that a checkpoint's training left out of the scene as
    content that moved through the shot; empty for a method that does not mask."""

    def __call__(self, checkpoint: Path, scene: SceneData) -> Mapping[str, float]: ...


def no_transients(checkpoint: Path, scene: SceneData) -> Mapping[str, float]:
    """``TransientReader`` of a method that masks nothing."""
    return {}


@dataclass(frozen=True)
class TrainingMethod:
    name: str  # a name in ``catalogue.TRAINING_MODES``
    checkpoints: CheckpointFiles
    train: Trainer
    export: Exporter
    evaluate: Evaluator
    transients: TransientReader = no_transients
