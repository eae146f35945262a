"""The method registry: every catalogue mode has exactly one method, and an unknown mode never falls into one."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidscene import catalogue
from vidscene.pipeline.methods import METHODS, UnknownModeError, method
from vidscene.pipeline.presets import PRESETS, preset_config
from vidscene.pipeline.scene import SceneWork
from vidscene.storage.local import SceneFiles


def _work(tmp_path: Path, mode: str, outputs: list[str]) -> SceneWork:
    return SceneWork.create(scene_id="s", video=tmp_path / "v.mp4", files=SceneFiles(tmp_path / "s"),
                            training_mode=mode, output_types=outputs, save_iterations=[5], total_iterations=10,
                            config=preset_config("preview"))


def test_every_catalogue_mode_has_its_method() -> None:
    assert set(METHODS) == set(catalogue.TRAINING_MODES)
    for name, entry in METHODS.items():
        assert entry.name == name
        assert entry.checkpoints.suffix == catalogue.OUTPUT_TYPES["model"].extension(name)
        for preset, config in PRESETS.items():
            assert config.training(name).iterations == catalogue.PRESETS[preset].iterations[name]


@pytest.mark.parametrize("mode", ["nerfacto", "", "Gaussian", "tensorF"])
def test_an_unknown_mode_fails_loudly(tmp_path: Path, mode: str) -> None:
    with pytest.raises(UnknownModeError, match="unknown training mode"):
        method(mode)
    with pytest.raises(UnknownModeError):
        _work(tmp_path, mode, ["video"])


def test_paths_follow_the_catalogue(tmp_path: Path) -> None:
    tensorf = _work(tmp_path, "tensorf", ["video", "model", "point_cloud"])
    assert tensorf.checkpoint_path(10).name == "10.th"
    assert tensorf.output_path("model", 10).name == "10.th"
    gaussian = _work(tmp_path, "gaussian", ["splat_cloud", "model"])
    assert gaussian.checkpoint_path(10).name == "10.ckpt"
    assert gaussian.output_path("splat_cloud", 5).name == "5.splat"
    assert gaussian.save_iterations == (5, 10)
    with pytest.raises(ValueError, match="not available for training mode tensorf"):
        _work(tmp_path, "tensorf", ["splat_cloud"])
