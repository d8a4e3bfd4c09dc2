"""Keep freed array memory in the process heap across backward passes (glibc only).

A tape-mode gradient allocates its temporaries and cotangents (hundreds of KB to MB each),
keeps them alive while the pass runs and frees them all at its end. glibc then returns the
top of its heap to the system (trims it) once more than a threshold is free there, and the
next pass faults every page back in (zeroed by the kernel): 350-720 page faults per gradient
of the 784-128-10 MLP, about a third of its time. `keep_heap()` raises glibc's trim threshold
to 64 MB and fixes its mmap threshold at 32 MB (the ceiling its own adaptive scheme reaches;
setting one threshold switches that scheme off, so both are set), so freed blocks stay in the
heap for the next pass. Cost: up to 64 MB of freed memory stays mapped to the process.

It runs once, on the first backward pass, and not at all when AUTODIFF_JIT_KEEP_HEAP=0, off
glibc, or when the process set its own thresholds through MALLOC_TRIM_THRESHOLD_ /
MALLOC_MMAP_THRESHOLD_ (glibc's environment variables).
"""
from __future__ import annotations

import ctypes
import os
import sys

TRIM_THRESHOLD = 64 << 20
MMAP_THRESHOLD = 32 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's malloc.h

_STATE = {"done": False, "applied": False}


def _wanted():
    if os.environ.get("AUTODIFF_JIT_KEEP_HEAP", "1") == "0":
        return False
    if any(v in os.environ for v in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return False   # the user tuned glibc themselves
    return sys.platform.startswith("linux")


def keep_heap():
    """Apply the thresholds once per process; True when they are in effect."""
    if _STATE["done"]:
        return _STATE["applied"]
    _STATE["done"] = True
    if not _wanted():
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version   # glibc's, absent from musl: other libcs keep their own
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _STATE["applied"] = ok
    return ok
