"""The registry of training methods: mode name -> its ``TrainingMethod`` (``training_method``).

``pipeline.scene`` and ``vidscene run`` look a mode up here and nowhere else, so an unknown mode fails at
once with ``UnknownModeError`` instead of silently training with another method. Each method's package owns
its contract in its ``method.py``; adding one is described in docs/extending.md.

Importing this module costs nothing (no torch), which the API and the job layer rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vidscene import catalogue
from vidscene.pipeline.gaussian.method import METHOD as GAUSSIAN
from vidscene.pipeline.tensorf.method import METHOD as TENSORF
from vidscene.pipeline.training_method import TrainingMethod


class UnknownModeError(ValueError):
    """A training mode that has no method here (a caller bug or a stale row: the API refuses it at upload)."""


METHODS: Mapping[str, TrainingMethod] = MappingProxyType({m.name: m for m in (GAUSSIAN, TENSORF)})
if set(METHODS) != set(catalogue.TRAINING_MODES):
    raise RuntimeError("every catalogue training mode needs a method, and no other")


def method(mode: str) -> TrainingMethod:
    """The method for ``mode``; ``UnknownModeError`` names the modes there are."""
    try:
        return METHODS[mode]
    except KeyError:
        raise UnknownModeError(f"unknown training mode {mode!r}; use one of {', '.join(METHODS)}") from None
