"""The slot for host LAPACK/BLAS routines that the linear-algebra impls call when present.

numpy.linalg has no LU-factor, LU-solve or triangular-solve API. The backend calls the ones in
numpy's own LAPACK through ctypes (backend/host_lapack.py); it sits above the primitives, so
the package facade plugs it in here (`install`) instead of the impls importing it. The
provider runs once, on the first linear-algebra impl call (importing the backend costs tens
of milliseconds, which `import autodiff_jit` does not pay); `kernels()` is then its result,
or None (no provider, or no LAPACK found): the impls use numpy.linalg alone.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_state = {"provider": None, "kernels": None, "loaded": False}


def install(provider) -> None:
    """provider() -> an object with supports(dtype), lu_factor, lu_solve, solve,
    triangular_solve, triangular_matmul, congruence_solve and cholesky
    (backend/host_lapack.Kernels), or None."""
    with _lock:
        _state.update(provider=provider, kernels=None, loaded=False)


def kernels():
    """The installed host routines, or None."""
    if _state["loaded"]:
        return _state["kernels"]
    with _lock:
        if not _state["loaded"]:
            p = _state["provider"]
            _state["kernels"] = p() if p is not None else None
            _state["loaded"] = True
    return _state["kernels"]


# Each host call costs a few microseconds of ctypes: for a stack of many small matrices
# numpy's batched loop (one call for the stack) is faster
_SMALL_N, _FEW = 32, 4


def for_stack(a):
    """The host routines for the stack of square matrices `a` (..., n, n), or None where the
    impl should use numpy.linalg (none installed, not float32/float64, empty, or many small
    matrices)."""
    k = kernels()
    if k is None or not k.supports(a.dtype):
        return None
    n = a.shape[-1]
    if n == 0 or (n < _SMALL_N and a.size > _FEW * n * n):
        return None
    return k
