"""Failures a user can cause (a bad video, a scene SfM cannot register). Their message is shown to the user."""

from __future__ import annotations


class PipelineError(Exception):
    """A failure whose ``str()`` is a complete sentence meant for the person who uploaded the video."""

    code: int = 1


class VideoError(PipelineError):
    """The file is not a decodable video, or has too few usable frames."""

    code = 2


class ReconstructionError(PipelineError):
    """Structure from motion could not place enough frames (no camera motion, textureless scene...)."""

    code = 3


class TrainingError(PipelineError):
    """Training diverged or produced nothing usable."""

    code = 4


class StorageFullError(PipelineError):
    """The disk filled up while writing results."""

    code = 5
