"""pycolmap, imported so that the process still behaves as Python expects.

Import it from here, never directly:

- Python's zlib must be loaded before pycolmap: pycolmap's binary exports its own statically linked zlib
  symbols, and when it is the first to need zlib in the process, Pillow's PNG writer (and torch) later free
  memory with the wrong allocator and the process aborts ("free(): invalid pointer").
- Importing pycolmap runs glog's failure signal handler installation, which takes SIGTERM away from Python: a
  SIGTERM then prints a native stack trace and kills the process by the signal. SIGTERM is not a crash here:
  it is how Celery's prefork pool retires a child after its task (billiard answers the child's DEATH message
  with SIGTERM, and its own handler ends the child with its recycle code), and how a worker is asked to stop.
  So the SIGTERM handler Python had before the import is put back; glog keeps the real crash signals
  (SIGSEGV, SIGABRT, ...), where its stack trace helps. Later pycolmap calls do not install it again.
"""

from __future__ import annotations

import signal
import threading
import zlib  # noqa: F401  (loaded before pycolmap, see above)
from typing import Any

_sigterm_before: Any = signal.getsignal(signal.SIGTERM)

import pycolmap  # noqa: E402  (the SIGTERM handler must be read before this import)


def _give_sigterm_back() -> None:
    """Re-install Python's SIGTERM disposition (possible from the main thread only, where handlers run)."""
    if _sigterm_before is None or threading.current_thread() is not threading.main_thread():
        return  # set outside Python (nothing to restore) or imported from a thread (cannot restore)
    signal.signal(signal.SIGTERM, _sigterm_before)


_give_sigterm_back()

__all__ = ["pycolmap"]
