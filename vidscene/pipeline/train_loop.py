"""The iteration loop both trainers run, with everything around the optimisation step that they share.

A trainer builds a :class:`TrainLoop` for its checkpoint files, asks it whether an earlier run already
finished (:meth:`TrainLoop.finished`) and where to resume (:meth:`TrainLoop.resume_point`), restores its
own state, and hands :meth:`TrainLoop.run` an object with the :class:`LoopHooks`. The loop owns the
bookkeeping, so both methods behave alike:

- numbered checkpoints at the requested iterations (and always the last), each announced via ``on_save``;
- the periodic resume file (every ``Cadence.resume_every_seconds``, and every ``resume_every_iterations``
  where a method asks for it), counted from the last checkpoint of either kind, never at the last iteration;
- progress at the first iteration of a run, then every ``progress_every_iterations`` or
  ``progress_every_seconds``, and at the last iteration; the callback may raise to cancel, which leaves
  the checkpoints written so far intact;
- after the last iteration: the final check, the final checkpoint holding its training figures, and removal of
  the resume file the final checkpoint supersedes;
- the keys every checkpoint has (``checkpoints.FORMAT``, ``ITERATION``, ``SECONDS``, ``METRICS``) beside the
  method's own state, so nothing that reads a checkpoint depends on which method wrote it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vidscene.pipeline import checkpoints
from vidscene.pipeline.checkpoints import CheckpointFiles
from vidscene.pipeline.progress import ProgressFn, no_progress
from vidscene.pipeline.training import TrainResult, save_checkpoint

log = logging.getLogger(__name__)

RESUME_EVERY_SECONDS = 60.0
PROGRESS_EVERY_ITERATIONS = 10
PROGRESS_EVERY_SECONDS = 1.0


class LoopHooks(Protocol):
    """What a training method supplies to :meth:`TrainLoop.run` for one run."""

    def run_iteration(self, iteration: int) -> None:
        """Train 1-based ``iteration``; raise ``TrainingError`` when training cannot go on (divergence)."""

    def checkpoint_state(self, iteration: int) -> dict[str, Any]:
        """The method's own state, enough to continue exactly after ``iteration`` (the loop adds the keys every
        checkpoint has)."""

    def seconds(self) -> float:
        """Training wall time so far, summed over resumed runs (``checkpoints.training_seconds`` of the
        checkpoint a run resumed from, plus this run's)."""

    def final_metrics(self) -> dict[str, float]:
        """Training figures of the finished model (timing, size), stored in the final checkpoint and returned;
        raise ``TrainingError`` when it learned nothing. Its quality is not among them: that is measured at
        working size from the checkpoint (``pipeline.evaluate``), one figure per checkpoint."""

    def progress_message(self, iteration: int) -> str:
        """A short message for the progress callback after ``iteration``."""


@dataclass(frozen=True)
class Cadence:
    """How often the loop writes the resume file and reports progress."""

    resume_every_seconds: float = RESUME_EVERY_SECONDS
    resume_every_iterations: int | None = None  # None: by time only
    progress_every_iterations: int = PROGRESS_EVERY_ITERATIONS
    progress_every_seconds: float = PROGRESS_EVERY_SECONDS


class TrainLoop:
    """One training run of ``total`` iterations into ``work_dir``: checkpoints, resume file and progress.

    Raises ``ValueError`` when ``total`` is below 1. Values of ``save_iterations`` outside ``1..total`` are
    ignored; ``total`` itself is always saved.
    """

    def __init__(self, work_dir: Path, files: CheckpointFiles, total: int, *, mode: str,
                 save_iterations: Sequence[int], progress: ProgressFn = no_progress,
                 on_save: Callable[[int, Path], None] | None = None, cadence: Cadence | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if total < 1:
            raise ValueError("config.iterations must be at least 1")
        self.work_dir = work_dir
        self.files = files
        self.total = total
        self.save_at = frozenset(int(i) for i in save_iterations if 0 < int(i) <= total) | {total}
        self.progress = progress
        self.on_save = on_save
        self.cadence = cadence or Cadence()
        self.clock = clock
        self.log_extra: dict[str, Any] = {"stage": "train", "mode": mode, "work_dir": str(work_dir)}

    @property
    def final_path(self) -> Path:
        return self.files.path(self.work_dir, self.total)

    def finished(self) -> TrainResult | None:
        """The recorded result when an earlier run already wrote the final checkpoint, else None."""
        if not self.final_path.is_file():
            return None
        done = self.files.load(self.final_path)
        log.info("training already finished", extra=self.log_extra)
        return TrainResult(iteration=self.total, checkpoint=self.final_path,
                           metrics=checkpoints.training_metrics(done))

    def resume_point(self) -> tuple[int, Path] | None:
        """The newest readable checkpoint (numbered or the resume file) at or below ``total``."""
        return self.files.find_resume(self.work_dir, self.total)

    def run(self, method: LoopHooks, *, start: int) -> TrainResult:
        """Train iterations ``start + 1 .. total``, then evaluate and write the final checkpoint."""
        total, cadence = self.total, self.cadence
        last_resume_time, last_resume_iteration = self.clock(), start
        last_progress = -math.inf  # report the first iteration at once: the run has visibly started
        for it in range(start + 1, total + 1):
            method.run_iteration(it)
            now = self.clock()
            if it == total:
                pass  # the final checkpoint follows the evaluation below
            elif it in self.save_at:
                self._save(self._state(method, it), it)
                last_resume_time, last_resume_iteration = now, it
            elif (now - last_resume_time >= cadence.resume_every_seconds
                  or (cadence.resume_every_iterations is not None
                      and it - last_resume_iteration >= cadence.resume_every_iterations)):
                save_checkpoint(self._state(method, it), self.work_dir / self.files.resume_file)
                last_resume_time, last_resume_iteration = now, it
            if (it % cadence.progress_every_iterations == 0 or now - last_progress >= cadence.progress_every_seconds
                    or it == total):
                self.progress(it, total, method.progress_message(it))
                last_progress = now

        self.progress(total, total, "evaluating the trained model")
        metrics = method.final_metrics()
        final = self._save(self._state(method, total, metrics), total, metrics)
        return TrainResult(iteration=total, checkpoint=final, metrics=metrics)

    def _state(self, method: LoopHooks, iteration: int, metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
        return {**method.checkpoint_state(iteration), checkpoints.FORMAT: self.files.format,
                checkpoints.ITERATION: iteration, checkpoints.SECONDS: method.seconds(),
                checkpoints.METRICS: dict(metrics or {})}

    def _save(self, state: dict[str, Any], iteration: int, metrics: Mapping[str, float] | None = None) -> Path:
        path = self.files.path(self.work_dir, iteration)
        save_checkpoint(state, path)
        if iteration == self.total:
            # Superseded; removed before on_save so that a failing callback cannot leave it behind for good.
            (self.work_dir / self.files.resume_file).unlink(missing_ok=True)
        log.info("checkpoint saved", extra={**self.log_extra, "iteration": iteration, "path": str(path),
                                            **(metrics or {})})
        if self.on_save is not None:
            self.on_save(iteration, path)
        return path
