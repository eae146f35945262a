"""Where a training method's checkpoints live and the keys every checkpoint has, whatever the method.

A method names its files (``CheckpointFiles``: format tag, suffix, resume file) and the shared loop
(``train_loop``) writes the common keys below into each checkpoint beside the method's own state, so the
job layer, evaluation and resume read iteration, training time and metrics the same way for every method.

Importing this module costs nothing (torch is loaded only to read a file), which the API and the job
layer rely on when they name a scene's checkpoint files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"  # under a scene's training dir: ``checkpoints/{iteration}{suffix}``

# Keys the training loop writes in every checkpoint of every method.
FORMAT = "format"  # the method's ``CheckpointFiles.format``: another method's file is refused on load
ITERATION = "iteration"  # the last iteration trained (1-based)
SECONDS = "seconds"  # training wall time up to ``ITERATION``, summed over resumed runs
METRICS = "metrics"  # the final checkpoint's training figures (empty in the others); see ``training_metrics``

# Quality figures that final checkpoints once stored, measured at the training downscale by the collapse check.
# A checkpoint's quality is measured at working size (``pipeline.evaluate``, ``metrics/<iteration>.json``), so
# these are dropped when an old checkpoint is read: two PSNRs of one model disagreed by up to several dB.
RETIRED_METRICS = frozenset({"psnr", "ssim", "l1", "heldout", "eval_views", "render_std", "frame_std", "flat_psnr"})


@dataclass(frozen=True)
class CheckpointFiles:
    """One training method's checkpoint files under a work dir, and the reader that checks their format."""

    format: str
    suffix: str  # the model output type's extension for this method (``catalogue``)
    resume_file: str  # the periodic checkpoint written between requested iterations

    def path(self, work_dir: Path, iteration: int) -> Path:
        return work_dir / CHECKPOINT_DIR / f"{iteration}{self.suffix}"

    def saved(self, work_dir: Path) -> dict[int, Path]:
        """Iteration -> path for every complete numbered checkpoint under ``work_dir``."""
        directory = work_dir / CHECKPOINT_DIR
        if not directory.is_dir():
            return {}
        return {int(p.name.removesuffix(self.suffix)): p for p in directory.iterdir()
                if p.name.endswith(self.suffix) and p.name.removesuffix(self.suffix).isdigit() and p.is_file()}

    def load(self, path: Path, device: Any = "cpu") -> dict[str, Any]:
        """Read a checkpoint of this method (tensors, numbers, strings and dicts only: never unpickles code).

        Raises ``ValueError`` for a file of another method or no checkpoint at all.
        """
        from vidscene.pipeline.training import load_checkpoint

        obj = load_checkpoint(path, device)
        if obj.get(FORMAT) != self.format:
            raise ValueError(f"{path} is not a {self.format} checkpoint")
        return obj

    def find_resume(self, work_dir: Path, max_iteration: int) -> tuple[int, Path] | None:
        """The newest checkpoint (a numbered one or the resume file) at or below ``max_iteration``.

        A resume file that cannot be read is skipped with a warning rather than failing the job: an older
        checkpoint still works.
        """
        candidates = [(it, p) for it, p in self.saved(work_dir).items() if it <= max_iteration]
        resume = work_dir / self.resume_file
        if resume.is_file():
            try:
                it = int(self.load(resume)[ITERATION])
            except Exception:  # a corrupt file must not block resuming from a good one
                log.warning("ignoring unreadable resume checkpoint", extra={"path": str(resume)}, exc_info=True)
            else:
                if it <= max_iteration:
                    candidates.append((it, resume))
        if not candidates:
            return None
        # Prefer a numbered checkpoint over the resume file at the same iteration (it is the one users download).
        return max(candidates, key=lambda c: (c[0], c[1].name != self.resume_file))


def training_seconds(checkpoint: dict[str, Any]) -> float:
    """The training time a checkpoint records (0 when it records none).

    TensoRF checkpoints written before the loop wrote ``SECONDS`` kept it as ``train_seconds``: they still
    resume with their time, and their scenes report it.
    """
    return float(checkpoint.get(SECONDS, checkpoint.get("train_seconds", 0.0)))


def training_metrics(checkpoint: dict[str, Any]) -> dict[str, float]:
    """The training figures a final checkpoint records (gaussian count, seconds, seconds per iteration, ...),
    without the training-size quality figures that checkpoints written before had (``RETIRED_METRICS``)."""
    return {k: v for k, v in dict(checkpoint.get(METRICS, {})).items() if k not in RETIRED_METRICS}
