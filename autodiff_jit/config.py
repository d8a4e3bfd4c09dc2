"""Process-wide switches, read when a function is traced (not per call of compiled code).

    import autodiff_jit as ad
    ad.config.convert = False        # trace Python `if`/`while`/`for` as written (no rewrite)
    ad.config.debug_nans = True      # raise FloatingPointError at the first NaN/inf produced
    ad.config.max_loop_steps = 10**5 # reverse-mode capacity of converted data-dependent loops
    ad.config.num_threads = 2        # threads of compiled loops and of numpy's BLAS (per call)
    ad.config.cache = False          # compiled code not kept on disk (default: True)
    ad.config.cache_max_bytes = 2**28  # size cap of the disk cache directory (None: no cap)

Environment variables set the initial values: AUTODIFF_JIT_CONVERT=0,
AUTODIFF_JIT_DEBUG_NANS=1, AUTODIFF_JIT_MAX_LOOP_STEPS=N, AUTODIFF_JIT_NUM_THREADS=N
(num_threads otherwise defaults to OMP_NUM_THREADS, OPENBLAS_NUM_THREADS or the CPU count),
AUTODIFF_JIT_CACHE=0, AUTODIFF_JIT_CACHE_MAX_BYTES=N (a K/M/G suffix: binary units; "none":
no cap). num_threads is read by compiled code at run time, not when tracing: changing it takes
effect at the next call, without recompiling. cache is read when a function is compiled.
"""
from __future__ import annotations

import os
import warnings

DEFAULT_CACHE_MAX_BYTES = 256 << 20   # 256 MiB: ~10^4 entries of a few tens of kB
DEFAULT_BUFFER_CACHE_BYTES = 256 << 20   # freed large arrays tape mode keeps for reuse


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "false", "no", "off")


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str):
    """'512M' -> 536870912, '10000' -> 10000, 'none' -> None (K/M/G/T: binary units, an
    optional trailing B or iB); ValueError if it is none of these or not positive."""
    t = text.strip().lower()
    if t in ("none", "unlimited"):
        return None
    t = t[:-2] if t.endswith("ib") else t[:-1] if t.endswith("b") else t
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        n = int(float(t[:len(t) - len(unit)]) * _UNITS[unit])
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"expected a positive size such as 10000, 512M or 2G, or 'none', "
                         f"not {text!r}")
    return n


_OFF = ("0", "off", "false", "no")


def _env_bytes(name: str, default, allow_zero: bool = False):
    value = os.environ.get(name)
    if not value or not value.strip():
        return default
    if allow_zero and value.strip().lower() in _OFF:
        return 0
    try:
        n = parse_bytes(value)
        if n is None and allow_zero:
            raise ValueError(f"expected a size such as 256M, or 0 (off), not {value!r}")
        return n
    except ValueError as exc:   # a bad variable must not break `import autodiff_jit`
        warnings.warn(f"{name}: {exc}; using {default} bytes", RuntimeWarning, stacklevel=3)
        return default


class Config:
    """convert: rewrite Python control flow on traced values into loop/branch ops (see
    docs/control-flow.md). debug_nans: check every value produced, forward and adjoint, and
    raise FloatingPointError naming the primitive and the user's source line. max_loop_steps:
    the `max_steps` of the while loops that converted `while` / traced-bound `for` loops become
    (None: while_loop's default). num_threads: threads that large compiled loops and numpy's
    BLAS use (see docs/performance.md); None until set: the environment's default.
    cache: the disk cache of compiled code for transformed functions that do not pass
    `cache=` (True: the default directory, $AUTODIFF_JIT_CACHE_DIR or ~/.cache/autodiff_jit; a
    directory path; False: off). cache_max_bytes: the size the cache directory is kept under
    (least recently used entries deleted first; None: no cap). See docs/api.md, "Disk cache"."""

    def __init__(self):
        self._listeners = []  # called when debug_nans changes (the api drops fast call paths)
        # called with the new count when num_threads is set (the backend's thread pool and BLAS)
        self._thread_listeners = []
        self._num_threads = None
        self.convert = _env_flag("AUTODIFF_JIT_CONVERT", True)
        self._debug_nans = _env_flag("AUTODIFF_JIT_DEBUG_NANS", False)
        steps = os.environ.get("AUTODIFF_JIT_MAX_LOOP_STEPS")
        self.max_loop_steps = int(steps) if steps else None
        self._cache = _env_flag("AUTODIFF_JIT_CACHE", True)
        self._cache_max_bytes = _env_bytes("AUTODIFF_JIT_CACHE_MAX_BYTES",
                                           DEFAULT_CACHE_MAX_BYTES)
        self._buffer_cache_listeners = []   # called with the new cap (backend/buffers.py)
        self._buffer_cache_bytes = _env_bytes("AUTODIFF_JIT_BUFFER_CACHE_BYTES",
                                              DEFAULT_BUFFER_CACHE_BYTES, allow_zero=True)

    @property
    def cache(self):
        return self._cache

    @cache.setter
    def cache(self, value):
        self._cache = check_cache_option(value, "ad.config.cache")

    @property
    def cache_max_bytes(self):
        return self._cache_max_bytes

    @cache_max_bytes.setter
    def cache_max_bytes(self, value):
        if isinstance(value, str):
            value = parse_bytes(value)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(f"ad.config.cache_max_bytes must be a positive int (bytes), a size "
                             f"such as '512M', or None (no cap), not {value!r}")
        self._cache_max_bytes = value

    @property
    def buffer_cache_bytes(self) -> int:
        return self._buffer_cache_bytes

    @buffer_cache_bytes.setter
    def buffer_cache_bytes(self, value):
        if isinstance(value, str):
            try:
                value = 0 if value.strip().lower() in _OFF else parse_bytes(value)
            except ValueError:
                pass     # refused below, with this setting's name
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"ad.config.buffer_cache_bytes must be an int >= 0 (bytes; 0: "
                             f"off) or a size such as '256M', not {value!r}")
        self._buffer_cache_bytes = value
        for listener in self._buffer_cache_listeners:
            listener(value)

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
                f"max_loop_steps={self.max_loop_steps}, num_threads={self.num_threads}, "
                f"cache={self.cache!r}, cache_max_bytes={self.cache_max_bytes})")


def check_cache_option(value, what: str = "cache"):
    """A valid `cache=` value (True, False or a directory path: str / os.PathLike) as given;
    TypeError naming `what` otherwise."""
    if isinstance(value, bool) or isinstance(value, (str, os.PathLike)):
        if isinstance(value, str) and not value.strip():
            raise TypeError(f"{what} must be True, False or a directory path, not an empty "
                            f"string")
        return value
    raise TypeError(f"{what} must be True, False or a directory path (str or os.PathLike), "
                    f"not {value!r}")


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

__all__ = ["config", "Config", "default_num_threads", "check_cache_option", "parse_bytes"]
