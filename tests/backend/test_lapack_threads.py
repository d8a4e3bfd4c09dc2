"""Small LAPACK calls run numpy's OpenBLAS on one thread (lapack.serially): the count is set to
1 around the call and restored, only below lapack.SERIAL_MAX_WORK, results equal at any thread
count, and code without the wrapper where OpenBLAS has no thread control."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import blas, lapack

pytestmark = pytest.mark.skipif(
    not lapack.available("gesv", np.float64) or blas.thread_control_addresses() is None,
    reason="numpy's LAPACK or OpenBLAS's thread control not found")



def _loss(a, b):
    return np.sum(np.linalg.solve(a, b) ** 2)


def _args(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)) + n * np.eye(n), rng.standard_normal(n)


def test_small_solve_sets_one_thread_and_restores(thread_symbols):
    calls = []
    thread_symbols(lambda: 3, calls.append)
    a, b = _args(20)
    g = ad.grad(_loss)(a, b)
    # forward gesv and the adjoint's getrs: each 1 before, the caller's 3 after
    assert calls == [1, 3, 1, 3]
    ref = ad.grad(_loss, mode="interpret")(a, b)
    np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_already_one_thread_calls_no_setter(thread_symbols):
    calls = []
    thread_symbols(lambda: 1, calls.append)
    ad.grad(_loss)(*_args(20))
    assert calls == []


def test_large_calls_keep_the_thread_count(thread_symbols, monkeypatch):
    calls = []
    thread_symbols(lambda: 2, calls.append)
    # gesv of n = 20 (20 * 20 * 21 multiply-adds) is now large, the adjoint's getrs (400) not
    # cache=False: the threshold is not in the disk-cache key (changing it means editing
    # lapack.py, which is), so the second compile would load the first one's code
    monkeypatch.setattr(lapack, "SERIAL_MAX_WORK", 20 ** 3)
    ad.grad(_loss, cache=False)(*_args(20))
    assert calls == [1, 2]
    calls.clear()
    monkeypatch.setattr(lapack, "SERIAL_MAX_WORK", 1)
    f = ad.grad(_loss, cache=False)
    f(*_args(20))
    assert calls == [] and lapack.THREADS_SET not in f.llvm_ir(*_args(20))


def test_work_estimates():
    assert lapack._work("getrf", [200, 200, object()]) == 200 ** 3
    assert lapack._work("gesv", [200, 1, object()]) == 200 * 200 * 201
    assert lapack._work("getrs", ["T", 200, 3, object()]) == 200 * 200 * 3
    assert lapack._work("potrf", ["U", 50, object()]) == 50 ** 3
    assert lapack._work("sygst", [1, "L", 40, object()]) == 40 ** 3
    assert lapack._work("gesdd", ["S", 300, 20, object()]) == 300 * 20 * 20
    assert lapack._work("orgqr", [30, 20, 20, object()]) == 30 * 20 * 20
    assert lapack._work("getrf", [object(), 5]) is None     # a run-time dimension


def test_restored_count_and_equal_results_at_1_and_2_threads():
    a, b = _args(60)
    f = ad.grad(_loss)
    ad.config.num_threads = 1
    g1 = f(a, b)
    ad.config.num_threads = 2
    g2 = f(a, b)
    assert blas.num_threads() == 2
    np.testing.assert_array_equal(g1, g2)   # both factorizations ran on one BLAS thread
    ad.config.num_threads = None


def test_without_thread_control(monkeypatch):
    monkeypatch.setattr(blas, "thread_control_addresses", lambda: None)
    monkeypatch.setattr(lapack, "_registered", set(lapack._registered) -
                        {lapack.THREADS_GET, lapack.THREADS_SET})
    a, b = _args(20, seed=1)
    f = ad.grad(_loss)
    g = f(a, b)
    assert lapack.THREADS_SET not in f.llvm_ir(a, b)
    ref = ad.grad(_loss, mode="interpret")(a, b)
    np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # a cached module that calls them cannot be used here (a miss, then a compile)
    assert not lapack.register_used(f"call void @{lapack.THREADS_SET}(i32 1) adj_lapack_dgesv")


def test_trsm_call_in_the_window(thread_symbols):
    # n^2 k just above the substitution loops' limit (lapack_kernels.TRSM_MIN_WORK): a cblas
    # trsm call, below SERIAL_MAX_WORK: run on one thread
    from autodiff_jit.backend import lapack_kernels
    calls = []
    thread_symbols(lambda: 2, calls.append)
    n = 200
    k = lapack_kernels.TRSM_MIN_WORK // (n * n) + 2
    assert lapack_kernels.TRSM_MIN_WORK < n * n * k < lapack.SERIAL_MAX_WORK
    rng = np.random.default_rng(3)
    a = np.tril(rng.standard_normal((n, n))) + n * np.eye(n)
    b = rng.standard_normal((n, k))

    def f(a, b):
        return np.sum(ad.solve_triangular(a, b, lower=True) ** 2)
    g = ad.grad(f, argnums=1)
    got = g(a, b)
    assert calls == [1, 2] * 2      # the forward solve and the adjoint's transposed one
    ref = ad.grad(f, argnums=1, mode="interpret")(a, b)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
