"""The process environment for heavy CPU work (training, benchmarks), read by C runtimes at start-up.

OpenMP threads that spin between parallel regions made CPU training 2-3x slower on a loaded machine
(PyTorch's and numba's pools spin against each other), and large glibc malloc thresholds avoid the slow page
faults measured on these VMs (~25% faster training, docs/measured.md). Both must be in the environment before
the process starts, hence the re-exec.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

WORK_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_MMAP_THRESHOLD_": "1073741824",
            "MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_TOP_PAD_": "268435456"}
_NO_REEXEC = "VIDSCENE_NO_REEXEC"


def reexec_with_work_env(argv: Sequence[str]) -> None:
    """Restart this process as ``python *argv`` with ``WORK_ENV`` unless it is already set.

    Values the caller set explicitly are kept; only missing ones are added. Returns only when nothing was missing.
    """
    missing = {k: v for k, v in WORK_ENV.items() if k not in os.environ}
    if missing and not os.environ.get(_NO_REEXEC):
        env = {**os.environ, **missing, _NO_REEXEC: "1"}
        os.execve(sys.executable, [sys.executable, *argv], env)  # noqa: S606 - fixed argv, no shell
