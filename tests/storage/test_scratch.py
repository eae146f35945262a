"""Scratch folders of workers sharing one scratch dir: a worker killed with SIGKILL leaves its staged files,
and the next worker to start removes them; a live worker's folder is never touched, nor anything in the
scratch dir that is not a worker's. Real processes, really killed."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidscene.config import Settings
from vidscene.db.models import Stage
from vidscene.jobs.stage_execution import WorkerContext, staging_for
from vidscene.storage import Storage
from vidscene.storage.s3 import S3Store
from vidscene.storage.scratch import LOCK_SUFFIX, WorkerScratch

# A worker as far as scratch goes: takes its folder, stages a file into it, says where, then works on.
WORKER = """
import sys, time
from pathlib import Path
from vidscene.storage.scratch import WorkerScratch
root = WorkerScratch(Path(sys.argv[1])).root()
(root / "scene-x" / "frames").mkdir(parents=True)
(root / "scene-x" / "frames" / "frame_00001.jpg").write_bytes(b"x" * 4096)
print(root, flush=True)
time.sleep(120)
"""


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _start(base: Path, started: list[subprocess.Popen[str]]) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(base)], stdout=subprocess.PIPE, text=True)
    started.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, "the worker did not start"
    return proc, Path(line)


def test_a_killed_workers_scratch_goes_and_a_live_ones_stays(tmp_path: Path,
                                                             workers: list[subprocess.Popen[str]]) -> None:
    base = tmp_path / "scratch"
    killed, dead_root = _start(base, workers)
    alive, live_root = _start(base, workers)
    stranger = base / "not-a-worker"  # an operator's file, or an older layout: not ours to judge
    stranger.mkdir()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert (dead_root / "scene-x" / "frames" / "frame_00001.jpg").is_file()  # what SIGKILL leaves behind

    worker = WorkerScratch(base)  # a worker starting on the same machine
    own = worker.root()
    assert not dead_root.exists() and not dead_root.with_name(dead_root.name + LOCK_SUFFIX).exists()
    assert (live_root / "scene-x" / "frames" / "frame_00001.jpg").is_file()
    assert stranger.is_dir() and own.is_dir() and own != live_root

    alive.send_signal(signal.SIGKILL)  # the other one dies too: this worker's next stage sweeps it
    alive.wait()
    assert worker.root() == own
    assert not live_root.exists() and own.is_dir()
    worker.release()
    assert sorted(p.name for p in base.iterdir()) == [stranger.name]


def test_a_stage_on_s3_works_in_its_workers_own_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", scratch_dir=tmp_path / "scratch", storage_url="s3://b/p")
    ctx = WorkerContext(settings=settings, engine=None, factory=None,  # type: ignore[arg-type]  # no database here
                        storage=Storage(settings.data_dir, objects=S3Store("s3://b/p")),
                        enqueue=lambda job_id, stage: None)
    staging = staging_for(ctx, "scene-1", Stage.frames)
    folder = staging.files.root.parent
    assert staging.files.root.name == "scene-1" and folder.parent == settings.scratch_dir
    assert folder.name.startswith("worker-") and folder.is_dir()
    assert ctx.scratch_root() == folder  # one folder for the process's life
    assert ctx.scratch is not None
    ctx.scratch.release()
    assert list(settings.scratch_dir.iterdir()) == []
