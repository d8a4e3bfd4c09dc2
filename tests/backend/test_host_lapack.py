"""The host LAPACK/BLAS routines (backend/host_lapack.py) behind the linear-algebra impls of
interpret and tape mode: values against numpy (float32/float64, stacks, transposed views),
inputs left unchanged, numpy's LinAlgError, the LU cache that solve hands to its gradient, and
the same results from the numpy fallbacks when no routines are installed."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.primitives import decomp as D, host, linalg_solve as LS
from tests.helpers import assert_close, numerical_grad

rng = np.random.default_rng(11)
HOST = host.kernels()
pytestmark = pytest.mark.skipif(HOST is None, reason="numpy's LAPACK/BLAS not found")


@pytest.fixture
def no_host():
    """The impls with no host routines installed (numpy.linalg and blocked numpy only)."""
    saved = dict(host._state)
    host.install(None)
    yield
    host._state.update(saved)


def _tol(dt, n):
    # a backward-stable solve of a well-conditioned system (cond ~ 1): error ~ n eps
    return 50 * n * np.finfo(dt).eps


def _wc(shape, dt):
    n = shape[-1]
    return (rng.standard_normal(shape) + n * np.eye(n)).astype(dt)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
@pytest.mark.parametrize("n", [5, 40])
def test_values_match_numpy(dt, batch, n):
    a = _wc(batch + (n, n), dt)
    b = rng.standard_normal(batch + (n, 3)).astype(dt)
    a0, b0 = a.copy(), b.copy()
    tol = _tol(dt, n)
    x, lu, piv = LS._solve_impl(a, b)
    assert x.dtype == dt and lu.dtype == dt and piv.dtype == np.int64
    assert_close(x, np.linalg.solve(a, b), tol, tol)
    assert piv.min() >= 1   # real getrf factors, not the empty cache
    for trans in (False, True):
        op = np.swapaxes(a, -1, -2) if trans else a
        assert_close(LS._lu_solve_impl(a, lu, piv, b, trans=trans), np.linalg.solve(op, b),
                     tol, tol)
    spd = a @ np.swapaxes(a, -1, -2)
    low = D._cholesky_impl(spd)
    assert low.dtype == dt
    np.testing.assert_array_equal(np.triu(low, 1), 0)
    assert_close(low, np.linalg.cholesky(spd), tol, tol * n)
    for lower in (True, False):
        for trans in (False, True):
            tri = np.tril(a) if lower else np.triu(a)
            op = np.swapaxes(tri, -1, -2) if trans else tri
            got = LS._trsolve_impl(a, b, lower=lower, transpose_a=trans)
            assert got.dtype == dt
            assert_close(got, np.linalg.solve(op.astype(np.float64), b), tol, tol)
    np.testing.assert_array_equal(a, a0)   # LAPACK overwrites copies, never the inputs
    np.testing.assert_array_equal(b, b0)


def test_solve_of_a_vector_column_is_numpy_to_the_bit():
    # getrf + getrs is what numpy's gesv does on the same column-major copy
    a, b = _wc((60, 60), np.float64), rng.standard_normal((60, 1))
    np.testing.assert_array_equal(LS._solve_impl(a, b)[0], np.linalg.solve(a, b))


def test_transposed_views_are_read_in_place():
    # mT(l) in the Cholesky rule is an F-ordered view: trsm reads it with the triangle and the
    # transpose flipped, and a transposed right-hand side is copied, not misread
    a = _wc((50, 50), np.float64)
    b = rng.standard_normal((4, 50))
    for lower in (True, False):
        for trans in (False, True):
            v = a.T
            tri = np.tril(v) if lower else np.triu(v)
            op = tri.T if trans else tri
            got = LS._trsolve_impl(v, b.T, lower=lower, transpose_a=trans)
            assert_close(got, np.linalg.solve(op, b.T), 1e-12, 1e-12)
    x, lu, piv = LS._solve_impl(a.T, b.T)
    assert_close(x, np.linalg.solve(a.T, b.T), 1e-12, 1e-12)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [(), (3,)])
def test_cholesky_helpers_match_the_numpy_fallbacks(dt, batch, no_host):
    # trmm and sygst (host) against the fallbacks (matmul of the masked triangle, two blocked
    # triangular solves) on C- and F-ordered views; the inputs are left unchanged
    n = 70
    low = np.linalg.cholesky(_wc(batch + (n, n), np.float64) @
                             np.swapaxes(_wc(batch + (n, n), np.float64), -1, -2)).astype(dt)
    l = low + np.triu(rng.standard_normal(low.shape), 1).astype(dt)
    c = rng.standard_normal(l.shape).astype(dt)
    x = rng.standard_normal(batch + (n, 4)).astype(dt)
    views = [l, np.swapaxes(np.ascontiguousarray(np.swapaxes(l, -1, -2)), -1, -2)]
    tol = 200 * n * np.finfo(dt).eps
    for v in views:
        v0, c0, x0 = v.copy(), c.copy(), x.copy()
        for transpose in (False, True):
            slow = LS._congruence_impl(v, c, transpose=transpose)
            host._state.update(loaded=True, kernels=HOST)
            fast = LS._congruence_impl(v, c, transpose=transpose)
            prods = [LS._trmm_impl(v, x, lower=lo, transpose_a=transpose) for lo in (True, False)]
            host._state.update(loaded=True, kernels=None)
            assert fast.dtype == dt
            np.testing.assert_array_equal(np.triu(fast, 1), 0)
            assert_close(fast, slow, tol, tol * np.abs(slow).max())
            for lo, got in zip((True, False), prods):
                slow_p = LS._trmm_impl(v, x, lower=lo, transpose_a=transpose)
                assert got.dtype == dt
                assert_close(got, slow_p, tol, tol * np.abs(slow_p).max())
        np.testing.assert_array_equal(v, v0)
        np.testing.assert_array_equal(c, c0)
        np.testing.assert_array_equal(x, x0)


def test_slogdet_from_the_factors_is_numpys():
    # sign and log|det| from getrf's factors (host) against numpy's slogdet: pivots, signs,
    # an exactly singular matrix, NaN; the factors are the LU cache lu_solve reads
    a = _wc((40, 40), np.float64)
    singular = a.copy()
    singular[:, 7] = 0.0   # getrf meets an exactly zero pivot
    nan = a.copy()
    nan[5, 9] = np.nan
    for m in (a, -a, a[::-1], singular, nan, np.stack([a, -a[::-1]])):
        sign, logdet, lu, piv = LS._slogdet_impl(m)
        with np.errstate(invalid="ignore"):
            es, el = np.linalg.slogdet(m)
        np.testing.assert_array_equal(sign, es)
        assert_close(logdet, el, 1e-13, 0)
        assert piv.min() >= 1
    assert LS._slogdet_impl(singular)[0] == 0
    _, _, lu, piv = LS._slogdet_impl(a)
    assert_close(LS._lu_solve_impl(a, lu, piv, np.eye(40), trans=True), np.linalg.inv(a).T,
                 1e-12, 1e-12)
    _, _, lu, piv = LS._slogdet_impl(singular)
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        LS._lu_solve_impl(singular, lu, piv, np.eye(40), trans=True)


def test_errors_are_numpys():
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        LS._solve_impl(np.ones((40, 40)), np.ones((40, 1)))
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        LS._solve_impl(np.stack([np.eye(40), np.ones((40, 40))]), np.ones((2, 40, 1)))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        D._cholesky_impl(np.diag(np.r_[np.ones(39), -1.0]))
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        LS._trsolve_impl(np.diag(np.r_[np.ones(39), 0.0]), np.ones((40, 1)), lower=True,
                         transpose_a=False)


def test_nan_inputs_give_numpys_values():
    # potrf and getrf do not report a NaN as a failure; neither does numpy: same values
    m = np.eye(40)
    m[3, 3] = np.nan
    np.testing.assert_array_equal(D._cholesky_impl(m), np.linalg.cholesky(m))
    np.testing.assert_array_equal(LS._solve_impl(m, np.ones((40, 1)))[0],
                                  np.linalg.solve(m, np.ones((40, 1))))


def test_many_small_matrices_use_numpys_batched_code():
    a = _wc((50, 3, 3), np.float64)
    assert host.for_stack(a) is None and host.for_stack(a[:4]) is HOST
    x, lu, piv = LS._solve_impl(a, np.ones((50, 3, 1)))
    assert not piv.any()   # the empty cache: lu_solve solves with a itself
    assert_close(LS._lu_solve_impl(a, lu, piv, np.ones((50, 3, 1)), trans=True),
                 np.linalg.solve(np.swapaxes(a, -1, -2), np.ones((50, 3, 1))), 1e-12, 1e-12)


@pytest.mark.parametrize("mode", ["interpret", "tape"])
def test_gradients_with_and_without_host_routines(mode, no_host):
    # the benchmark's two objectives at n above every threshold: the numpy fallbacks (this
    # fixture) and the host routines give the same gradients, and both match differences
    from autodiff_jit.bench.objectives import OBJECTIVES
    for name, n in (("gp_nll", 70), ("lstsq_solve", 40)):
        obj = OBJECTIVES[name]
        args = obj.make_args({"n": n}, np.random.default_rng(3))
        f = obj.make_fn({"n": n})
        fallback = ad.grad(f, mode=mode)(*args)
        host._state.update(loaded=True, kernels=HOST)
        fast = ad.grad(f, mode=mode)(*args)
        host._state.update(loaded=True, kernels=None)
        assert_close(fast, fallback, 1e-9, 1e-9 * np.abs(fallback).max())
        if name == "gp_nll":
            assert_close(fast, numerical_grad(f, args, 0), 1e-5, 1e-6)
