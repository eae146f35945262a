"""Fixtures the pipeline tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for a module of small TensoRF runs: on a CPU shared with other jobs, OpenMP's
    spinning second thread makes these small kernels tens of times slower (unless the process started with
    ``OMP_WAIT_POLICY=PASSIVE``). Use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
