"""Process-wide switches, read when a function is traced (not per call of compiled code).

    import autodiff_jit as ad
    ad.config.convert = False        # trace Python `if`/`while`/`for` as written (no rewrite)
    ad.config.debug_nans = True      # raise FloatingPointError at the first NaN/inf produced
    ad.config.max_loop_steps = 10**5 # reverse-mode capacity of converted data-dependent loops
    ad.config.num_threads = 2        # threads of compiled loops and of numpy's BLAS (per call)

Environment variables set the initial values: AUTODIFF_JIT_CONVERT=0,
AUTODIFF_JIT_DEBUG_NANS=1, AUTODIFF_JIT_MAX_LOOP_STEPS=N, AUTODIFF_JIT_NUM_THREADS=N
(num_threads otherwise defaults to OMP_NUM_THREADS, OPENBLAS_NUM_THREADS or the CPU count).
num_threads is read by compiled code at run time, not when tracing: changing it takes effect
at the next call, without recompiling.
"""
from __future__ import annotations

import os


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no", "off")


class Config:
    """convert: rewrite Python control flow on traced values into loop/branch ops (see
    docs/control-flow.md). debug_nans: check every value produced, forward and adjoint, and
    raise FloatingPointError naming the primitive and the user's source line. max_loop_steps:
    the `max_steps` of the while loops that converted `while` / traced-bound `for` loops become
    (None: while_loop's default). num_threads: threads that large compiled loops and numpy's
    BLAS use (see docs/performance.md); None until set: the environment's default."""

    def __init__(self):
        self._listeners = []  # called when debug_nans changes (the api drops fast call paths)
        # called with the new count when num_threads is set (the backend's thread pool and BLAS)
        self._thread_listeners = []
        self._num_threads = None
        self.convert = _env_flag("AUTODIFF_JIT_CONVERT", True)
        self._debug_nans = _env_flag("AUTODIFF_JIT_DEBUG_NANS", False)
        steps = os.environ.get("AUTODIFF_JIT_MAX_LOOP_STEPS")
        self.max_loop_steps = int(steps) if steps else None

    @property
    def debug_nans(self) -> bool:
        return self._debug_nans

    @debug_nans.setter
    def debug_nans(self, value: bool):
        self._debug_nans = bool(value)
        for listener in self._listeners:
            listener(self._debug_nans)

    @property
    def num_threads(self) -> int:
        if self._num_threads is not None:
            return self._num_threads
        return default_num_threads()

    @num_threads.setter
    def num_threads(self, value):
        if value is None:
            n = None
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"ad.config.num_threads must be a positive int (or None for the "
                             f"environment's default), not {value!r}")
        else:
            n = int(value)
        self._num_threads = n
        for listener in self._thread_listeners:
            listener(self.num_threads, n is not None)

    def __repr__(self):
        return (f"Config(convert={self.convert}, debug_nans={self.debug_nans}, "
                f"max_loop_steps={self.max_loop_steps}, num_threads={self.num_threads})")


THREAD_VARIABLES = ("AUTODIFF_JIT_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_num_threads() -> int:
    """The first of AUTODIFF_JIT_NUM_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS that holds
    a positive int, else the number of CPUs this process may run on."""
    for var in THREAD_VARIABLES:
        value = os.environ.get(var, "").strip().split(",")[0]
        try:
            n = int(value)
        except ValueError:
            continue
        if n >= 1:
            return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


config = Config()

__all__ = ["config", "Config", "default_num_threads"]
