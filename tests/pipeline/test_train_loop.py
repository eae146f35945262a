"""The loop both trainers share, driven by a stand-in method and a fake clock: save points, resume file,
progress cadence, the final checkpoint and the "already finished" shortcut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vidscene.pipeline.checkpoints import CheckpointFiles
from vidscene.pipeline.progress import Cancelled
from vidscene.pipeline.train_loop import Cadence, TrainLoop
from vidscene.pipeline.training import load_checkpoint, save_checkpoint

FILES = CheckpointFiles(format="test", suffix=".test", resume_file="resume.test")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Method:
    """Counts iterations; each one takes ``seconds_per_iteration`` on the fake clock."""

    def __init__(self, clock: Clock, seconds_per_iteration: float = 0.0) -> None:
        self.clock = clock
        self.seconds_per_iteration = seconds_per_iteration
        self.events: list[str] = []

    def run_iteration(self, iteration: int) -> None:
        self.clock.now += self.seconds_per_iteration
        self.events.append(f"step {iteration}")

    def checkpoint_state(self, iteration: int) -> dict[str, Any]:
        return {"state": iteration}

    def seconds(self) -> float:
        return self.clock.now - 1000.0

    def final_metrics(self) -> dict[str, float]:
        self.events.append("final_metrics")
        return {"s_per_it": 0.5}

    def progress_message(self, iteration: int) -> str:
        return f"at {iteration}"


def _loop(tmp_path: Path, clock: Clock, events: list[str], total: int = 25, *, save_iterations: list[int] | None = None,
          cadence: Cadence | None = None, cancel_at: int | None = None) -> TrainLoop:
    """A loop whose callbacks append to ``events``; progress also notes which iteration the resume file holds."""

    def progress(position: int, total: int, message: str = "") -> None:
        resume = tmp_path / FILES.resume_file
        if resume.is_file():
            events.append(f"resume file at {load_checkpoint(resume)['iteration']}")
        events.append(f"progress {position} {message}")
        if position == cancel_at:
            raise Cancelled

    def on_save(iteration: int, path: Path) -> None:
        events.append(f"saved {iteration} {path.name}")

    return TrainLoop(tmp_path, FILES, total, mode="test", save_iterations=save_iterations or [5, 30],
                     progress=progress, on_save=on_save, cadence=cadence, clock=clock)


def _resume_iterations(events: list[str]) -> list[int]:
    return sorted({int(e.split()[-1]) for e in events if e.startswith("resume file")})


def test_saves_reports_and_finishes_in_order(tmp_path: Path) -> None:
    clock = Clock()
    method = Method(clock)
    loop = _loop(tmp_path, clock, method.events)
    result = loop.run(method, start=0)

    assert result.iteration == 25
    assert result.checkpoint == tmp_path / "checkpoints" / "25.test"
    assert result.metrics == {"s_per_it": 0.5}
    # the method's own state, and the keys the loop writes for every method
    assert load_checkpoint(result.checkpoint) == {"state": 25, "format": "test", "iteration": 25, "seconds": 0.0,
                                                  "metrics": {"s_per_it": 0.5}}
    saves = [e for e in method.events if e.startswith("saved")]
    assert saves == ["saved 5 5.test", "saved 25 25.test"]  # 30 is past the end and ignored
    reported = [int(e.split()[1]) for e in method.events if e.startswith("progress")]
    assert reported == [1, 10, 20, 25, 25]  # first iteration, every 10, the last, then the evaluation
    assert method.events[-3:] == ["progress 25 evaluating the trained model", "final_metrics", "saved 25 25.test"]
    assert _resume_iterations(method.events) == []  # no time passes on the fake clock
    assert not (tmp_path / FILES.resume_file).exists()


def test_resume_file_by_time_counted_from_the_last_checkpoint(tmp_path: Path) -> None:
    clock = Clock()
    method = Method(clock, seconds_per_iteration=7.0)
    loop = _loop(tmp_path, clock, method.events, total=20, save_iterations=[6], cancel_at=19,
                 cadence=Cadence(resume_every_seconds=30.0, resume_every_iterations=8, progress_every_iterations=1))
    with pytest.raises(Cancelled):
        loop.run(method, start=0)
    # 35 s (5 iterations) pass before 6 is saved, then the timer restarts: 11, 16. The cap of 8 never bites.
    assert _resume_iterations(method.events) == [5, 11, 16]
    assert loop.resume_point() == (16, tmp_path / FILES.resume_file)


def test_resume_file_by_iterations_and_removed_at_the_end(tmp_path: Path) -> None:
    clock = Clock()
    method = Method(clock)
    loop = _loop(tmp_path, clock, method.events, total=20, save_iterations=[6],
                 cadence=Cadence(resume_every_iterations=4, progress_every_iterations=1))
    loop.run(method, start=0)
    assert _resume_iterations(method.events) == [4, 10, 14, 18]  # never at the last iteration
    assert not (tmp_path / FILES.resume_file).exists()


def test_finished_run_returns_the_recorded_result(tmp_path: Path) -> None:
    clock = Clock()
    events: list[str] = []
    loop = _loop(tmp_path, clock, events)
    assert loop.finished() is None
    first = loop.run(Method(clock), start=0)
    again = _loop(tmp_path, clock, events).finished()
    assert again == first


def test_an_old_final_checkpoint_loads_without_its_training_size_quality(tmp_path: Path) -> None:
    """Final checkpoints once held a PSNR/SSIM measured at the training downscale beside the working-size one of
    ``metrics/<it>.json``; reading one keeps its training figures only, so a model has one PSNR."""
    old = {"psnr": 24.1, "ssim": 0.8, "flat_psnr": 16.9, "heldout": 1.0, "n_gaussians": 900.0, "s_per_it": 0.2}
    save_checkpoint({"state": 25, "format": FILES.format, "iteration": 25, "seconds": 5.0, "metrics": old},
                    FILES.path(tmp_path, 25))
    done = _loop(tmp_path, Clock(), []).finished()
    assert done is not None and done.metrics == {"n_gaussians": 900.0, "s_per_it": 0.2}


def test_resumed_run_starts_after_the_checkpoint(tmp_path: Path) -> None:
    clock = Clock()
    method = Method(clock)
    loop = _loop(tmp_path, clock, method.events, total=12)
    loop.run(method, start=9)
    steps = [e for e in method.events if e.startswith("step")]
    assert steps == ["step 10", "step 11", "step 12"]
    assert method.events[1] == "progress 10 at 10"


def test_at_least_one_iteration() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TrainLoop(Path("unused"), FILES, 0, mode="test", save_iterations=[])
