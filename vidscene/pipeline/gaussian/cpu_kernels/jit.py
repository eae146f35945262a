"""Compile options and typed decorators shared by every CPU kernel.

numba's decorators are untyped; wrapping them here keeps the kernels' own signatures visible to mypy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


# error_model="numpy": Python semantics would check every float division for zero, and that branch keeps
# LLVM from vectorising the backward pixel loop (14x slower). Divisions here never see zero by construction.
_JIT_OPTIONS: dict[str, Any] = {"cache": True, "fastmath": True, "nogil": True, "error_model": "numpy"}


def parallel_kernel(fn: F) -> F:
    return cast(F, numba.njit(parallel=True, **_JIT_OPTIONS)(fn))


def serial_kernel(fn: F) -> F:
    return cast(F, numba.njit(**_JIT_OPTIONS)(fn))


# The per-gaussian kernels (projection, SH) are cheap and decide visibility, so they keep IEEE semantics:
# under fastmath, isfinite() and comparisons with NaN may be folded away, and a diverged gaussian with NaN
# parameters must be culled, not rasterised.
_STRICT_OPTIONS: dict[str, Any] = {**_JIT_OPTIONS, "fastmath": False}


def parallel_strict_kernel(fn: F) -> F:
    return cast(F, numba.njit(parallel=True, **_STRICT_OPTIONS)(fn))


def serial_strict_kernel(fn: F) -> F:
    return cast(F, numba.njit(**_STRICT_OPTIONS)(fn))
