"""cumprod's VJP as one primitive (cumprod_grad; compiled: backend/cumprod_kernels.py): the
kernel equals the composite zero-safe rule (its numpy implementation) on zeros, signed zeros,
inf, nan and negative values; gradients equal finite differences in every mode; and the
primitive's own rules make gradients of gradients exact, at zeros too."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.primitives import bind
from autodiff_jit.primitives.cumulative import cumprod_grad_p
from table import ALL_MODES

_r = np.random.default_rng(5)


def _special_rows(n):
    """Rows of length n: plain, one zero (first, middle, last), two zeros, -0.0, inf, nan."""
    rows = [_r.uniform(-1.5, 1.5, n) for _ in range(9)]
    rows[1][0] = 0.0
    rows[2][n // 2] = 0.0
    rows[3][-1] = 0.0
    rows[4][[0, -1]] = 0.0
    rows[5][n // 3] = -0.0
    rows[6][n // 2] = np.inf
    rows[7][n // 2] = np.nan
    rows[8][[0, n // 2]] = [np.inf, 0.0]  # inf * 0: nan downstream
    return np.array(rows)


@pytest.mark.parametrize("n", (1, 2, 3, 8, 33))
def test_kernel_equals_the_composite_rule(n):
    x = _special_rows(n)
    g = _r.standard_normal(x.shape)
    with np.errstate(all="ignore"):
        y = np.cumprod(x, axis=1)
        want = bind(cumprod_grad_p, g, y, x, axis=1)  # numpy: the composite rule
    got = ad.jit(lambda g, y, x: bind(cumprod_grad_p, g, y, x, axis=1))(g, y, x)
    # same formulas, same sequential order; a fused multiply-add may round once less
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300, equal_nan=True)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    # the other axis (rows strided), and float32
    got0 = ad.jit(lambda g, y, x: bind(cumprod_grad_p, g, y, x, axis=0))(g.T.copy(), y.T.copy(),
                                                                          x.T.copy())
    np.testing.assert_allclose(got0, want.T, rtol=1e-13, atol=1e-300, equal_nan=True)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    with np.errstate(all="ignore"):
        y32 = np.cumprod(x32, axis=1)
        want32 = bind(cumprod_grad_p, g32, y32, x32, axis=1)
    got32 = ad.jit(lambda g, y, x: bind(cumprod_grad_p, g, y, x, axis=1))(g32, y32, x32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want32, rtol=n * 4e-7, atol=1e-30, equal_nan=True)


def _fd(fun, x, h=1e-6):
    out = np.zeros(np.shape(fun(x)) + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[(Ellipsis,) + i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return out


X = _r.uniform(-1.5, 1.5, (5, 6))
X[1, 2] = 0.0
X[2, [1, 4]] = 0.0
X[3, 0] = -0.0
X[4, 5] = 0.0
W = _r.standard_normal((5, 6))
V = _r.standard_normal((5, 6))


def _loss(x):
    return np.sum(np.cumprod(x, axis=1) * W)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_gradient_vs_finite_differences_at_zeros(mode):
    # cumprod is a polynomial: central differences are exact up to rounding, at zeros too
    np.testing.assert_allclose(ad.grad(_loss, mode=mode)(X), _fd(_loss, X), atol=1e-8)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_gradient_of_gradient_at_zeros(mode):
    """The composite rule gave F_k = 0 after the first zero z as a constant, dropping
    dF_k/dx_z; cumprod_grad's rules keep it."""
    def inner(x):
        return np.sum(ad.grad(_loss, mode="interpret")(x) * V)
    want = _fd(inner, X)
    got = ad.grad(lambda x: np.sum(ad.grad(_loss)(x) * V), mode=mode)(X)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_hessian_at_zeros(mode):
    H = ad.hessian(_loss, mode=mode)(X).reshape(30, 30)
    np.testing.assert_allclose(H, _fd(ad.grad(_loss, mode="interpret"), X).reshape(30, 30),
                               atol=1e-6)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def test_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="cumprod_grad"):
        ad.jit(lambda g, x: bind(cumprod_grad_p, g, x, x, axis=0))(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("row", [[-1.5, 0.0, 2.0, 4.0], [0.0, 2.0, -3.0], [2.0, -0.0, 0.0],
                                 [-2.0, -3.0, 0.5], [0.0], [-0.0, -1.0], [3.0, -0.0]])
@pytest.mark.parametrize("c", [0.0, -0.0, -1.0, 1.0])
def test_signed_zeros_of_the_gradient_agree_across_modes(row, c):
    # the compiled kernel sums as the composite rule does: its reverse sums from their first
    # term (numpy's cumsum), the sum at the first zero from +0.0 (numpy's reduce_sum)
    x = np.array([row, row[::-1]])

    def f(x):
        return np.sum(np.full(x.shape, c) * np.cumprod(x, axis=1))
    want = ad.grad(f, mode="interpret")(x)
    for mode in ("compiled", "tape"):
        got = ad.grad(f, mode=mode)(x)
        assert np.array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want)), mode
