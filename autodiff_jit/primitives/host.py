"""The slots for host routines that impls call when present: LAPACK/BLAS for the linear
algebra, and compiled row scatter-add for take_add.

numpy.linalg has no LU-factor, LU-solve or triangular-solve API. The backend calls the ones in
numpy's own LAPACK through ctypes (backend/host_lapack.py); it sits above the primitives, so
the package facade plugs it in here (`install`) instead of the impls importing it. The
provider runs once, on the first linear-algebra impl call (importing the backend costs tens
of milliseconds, which `import autodiff_jit` does not pay); `kernels()` is then its result,
or None (no provider, or no LAPACK found): the impls use numpy.linalg alone.

The scatter slot works the same way (`install_scatter`, `scatter()`): backend/scatter.py's
compiled loop, or None (numpy's np.bincount / np.add.at).
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_state = {"provider": None, "kernels": None, "loaded": False}
_scatter_state = {"provider": None, "kernels": None, "loaded": False}


def install(provider) -> None:
    """provider() -> an object with supports(dtype), lu_factor, lu_solve, solve,
    triangular_solve, triangular_matmul, congruence_solve and cholesky
    (backend/host_lapack.Kernels), or None."""
    with _lock:
        _state.update(provider=provider, kernels=None, loaded=False)


def install_scatter(provider) -> None:
    """provider() -> a function take_add_rows(g, idx, size, axis) returning the row
    scatter-add or None where it does not apply (backend/scatter.take_add_rows), or None."""
    with _lock:
        _scatter_state.update(provider=provider, kernels=None, loaded=False)


def _loaded(state):
    if state["loaded"]:
        return state["kernels"]
    with _lock:
        if not state["loaded"]:
            p = state["provider"]
            state["kernels"] = p() if p is not None else None
            state["loaded"] = True
    return state["kernels"]


def kernels():
    """The installed host routines, or None."""
    return _loaded(_state)


def scatter():
    """The installed row scatter-add, or None."""
    return _loaded(_scatter_state)


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
