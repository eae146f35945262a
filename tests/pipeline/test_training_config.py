"""The per-frame colour maps are for captures whose exposure drifted (``scene.training_config``): the capture
check's finding switches them on, a steady capture trains without them, and a preset without them stays so."""

from __future__ import annotations

from dataclasses import replace

from vidscene.pipeline.capture_check import CaptureReport, Problem
from vidscene.pipeline.presets import preset_config
from vidscene.pipeline.scene import training_config


def _report(*codes: str) -> CaptureReport:
    return CaptureReport(stage="sfm", problems=[Problem(code, "warning", code) for code in codes], frames=[],
                         coverage={})


def test_colour_maps_only_for_a_capture_whose_exposure_changed() -> None:
    config = preset_config("preview")
    assert config.gaussian.appearance_lr > 0
    assert training_config(config, _report("exposure_changes", "blur")) == config
    for steady in (_report(), _report("blur", "moving_content"), None):
        trained = training_config(config, steady)
        assert trained.gaussian.appearance_lr == 0.0
        assert replace(trained.gaussian, appearance_lr=config.gaussian.appearance_lr) == config.gaussian
    off = replace(config, gaussian=replace(config.gaussian, appearance_lr=0.0))
    assert training_config(off, _report("exposure_changes")) == off
