"""Fixtures shared by the backend tests."""
from __future__ import annotations

import ctypes

import pytest

import autodiff_jit as ad
from autodiff_jit.backend import engine, lapack

_GET = ctypes.CFUNCTYPE(ctypes.c_int)
_SET = ctypes.CFUNCTYPE(None, ctypes.c_int)


@pytest.fixture
def thread_symbols():
    """Point THREADS_GET/SET of code compiled in the test at the given callables (the real
    OpenBLAS functions are registered again afterwards)."""
    keep = []

    def install(get, put):
        keep.extend((_GET(get), _SET(put)))
        engine.add_symbol(lapack.THREADS_GET, ctypes.cast(keep[-2], ctypes.c_void_p).value)
        engine.add_symbol(lapack.THREADS_SET, ctypes.cast(keep[-1], ctypes.c_void_p).value)
        lapack._registered.update((lapack.THREADS_GET, lapack.THREADS_SET))
    yield install
    lapack._registered.discard(lapack.THREADS_SET)
    assert lapack._thread_symbols()
    ad.config.num_threads = None
