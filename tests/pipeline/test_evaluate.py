"""Quality after a saved iteration: measured on held-out frames at the frames' own size, written once."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.captures import CONFIG, forward_capture, make_tiny_scene, tiny_tensorf_config
from vidscene.pipeline.config import PipelineConfig
from vidscene.pipeline.evaluate import evaluation_views, write_quality
from vidscene.pipeline.gaussian.train import train_gaussians
from vidscene.pipeline.methods import METHODS
from vidscene.pipeline.presets import preset_config
from vidscene.pipeline.tensorf.train import train_tensorf
from vidscene.storage.local import SceneFiles


def test_gaussian_quality_at_working_resolution(tmp_path: Path) -> None:
    scene = make_tiny_scene(tmp_path / "scene", n_cams=16, width=96, height=72)
    config = replace(CONFIG, max_long_side=48, eval_every=4)  # trained at half the frames' size
    result = train_gaussians(scene, config, tmp_path / "work", save_iterations=[], device="cpu")
    pipeline = replace(preset_config("preview", device="cpu"), gaussian=config)
    quality = METHODS["gaussian"].evaluate(result.checkpoint, scene, pipeline)
    assert quality.resolution == (96, 72)  # not the 48-px training size
    assert quality.heldout and quality.eval_views == 4
    assert quality.psnr > 15 and 0 < quality.ssim <= 1
    assert quality.gaussians == int(result.metrics["n_gaussians"])
    assert quality.seconds > 0

    files = SceneFiles(tmp_path / "s")
    write_quality(files.metrics_dir, 30, quality)
    assert files.read_metrics() == {30: json.loads((files.metrics_dir / "30.json").read_text())}
    assert files.read_metrics()[30]["resolution"] == [96, 72]


def test_evaluation_views_are_the_held_out_frames_capped(tmp_path: Path) -> None:
    scene = make_tiny_scene(tmp_path / "scene", n_cams=40, width=32, height=24, n=50)
    cameras, images, heldout = evaluation_views(scene, eval_every=2)
    assert heldout and len(cameras) == 10 == images.shape[0]  # 20 held out, 10 measured
    names = {c.image_name for c in cameras}
    assert all(int(name.split(".")[0]) % 2 == 1 for name in names)  # the middle of each block of 2


@pytest.mark.usefixtures("one_torch_thread")
def test_tensorf_quality_reports_its_training_time(tmp_path: Path) -> None:
    """TensoRF checkpoints once stored their time under another key than the one evaluation reads, so every
    TensoRF scene reported 0 s of training."""
    scene = forward_capture(tmp_path / "scene", texture_size=64)
    config = tiny_tensorf_config(200, grid_final=40, batch_rays=512)
    result = train_tensorf(scene, config, tmp_path / "work", save_iterations=[], device="cpu")
    quality = METHODS["tensorf"].evaluate(result.checkpoint, scene, PipelineConfig(device="cpu", tensorf=config))
    assert quality.seconds > 0
    assert quality.seconds == pytest.approx(result.metrics["seconds"], abs=0.01)
