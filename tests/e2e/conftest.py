from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.videos import SyntheticVideo, make_orbit_video


@pytest.fixture(scope="session")
def orbit_video(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """A tiny but real orbit video: enough texture and motion for SfM to place every frame."""
    return make_orbit_video(tmp_path_factory.mktemp("video") / "orbit.mp4", width=160, height=120, n_frames=36,
                            fps=12, seed=3)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Processes started by a test; all stopped at the end, logs shown on failure."""
    c = Cluster.create(tmp_path)
    yield c
    c.stop()

