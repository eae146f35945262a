"""An edit (crop and clean, ``vidscene.edits``) applied to the gaussians an export writes.

The mask is computed on the exported positions, the coordinates every downloaded file holds, so a box drawn
around something in a viewer of the ``.ply`` cuts exactly that out of every format. An edit that leaves
nothing is refused: an empty file opens as a blank scene in every viewer, which reads as a broken export.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from vidscene.edits import Operation, keep_mask
from vidscene.pipeline.errors import PipelineError


class EmptyEditError(PipelineError):
    """The edit removes every gaussian."""

    code = 1


def apply_edits(means: NDArray[np.floating], operations: Sequence[Operation]) -> NDArray[np.bool_]:
    """Which of the gaussians at ``means`` (N, 3) the operations keep, in order; ``EmptyEditError`` for none."""
    keep = keep_mask(means, operations)
    if len(means) and not keep.any():
        raise EmptyEditError("The edit keeps no gaussian: widen the box or sphere, or remove an operation.")
    return keep


def edit_filter(operations: Sequence[Operation]) -> Callable[[NDArray[np.float32]], NDArray[np.bool_]]:
    """``apply_edits`` bound to ``operations``: what ``gaussian.outputs.export_outputs`` takes as ``keep``."""
    ops = tuple(operations)
    return lambda means: apply_edits(means, ops)
