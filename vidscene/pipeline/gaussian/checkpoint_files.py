"""Where the ``gaussian`` method keeps its checkpoints: their format tag, suffix (the catalogue's ``model``
extension for the mode) and resume file. Its own module, so that the trainer, the exporter and the method's
contract (``method.py``) all read it without importing one another."""

from __future__ import annotations

from vidscene import catalogue
from vidscene.pipeline.checkpoints import CheckpointFiles

CHECKPOINTS = CheckpointFiles(format="vidscene-gaussian", suffix=catalogue.OUTPUT_TYPES["model"].extension("gaussian"),
                              resume_file="resume.ckpt")
