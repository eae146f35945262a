"""The progress callback every long pipeline function accepts."""

from __future__ import annotations

from typing import Protocol


class ProgressFn(Protocol):
    """Called as work advances: ``position`` of ``total`` steps done, with a short human message.

    Implementations may raise ``Cancelled`` (the job was deleted) or any other exception to stop the
    work; pipeline code must let it propagate and leave no half-written output behind.
    """

    def __call__(self, position: int, total: int, message: str = "") -> None: ...


class Cancelled(Exception):  # noqa: N818 - it is a signal, not an error
    """Raised from a progress callback to stop the running stage at the next step."""


def no_progress(position: int, total: int, message: str = "") -> None:
    """A ``ProgressFn`` that ignores everything (library use and tests)."""
