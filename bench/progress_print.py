"""The progress callback the benchmark scripts hand to the pipeline: a line at most every 15 s, and at the end,
so that a long run shows it is alive without flooding the log."""

from __future__ import annotations

import time
from collections.abc import Callable


def progress_printer(every_s: float = 15.0) -> Callable[..., None]:
    last = [time.monotonic()]

    def progress(position: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] > every_s or position == total:
            print(f"  {position}/{total} {message}", flush=True)
            last[0] = now

    return progress
