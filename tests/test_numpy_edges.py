"""Regression tests for issue #11: numpy programs that used to give a silently wrong value,
dtype or gradient (or crash on valid numpy), checked in every mode against numpy and against
central finite differences."""
import functools

import numpy as np
import pytest

import autodiff_jit as ad

from helpers import numerical_grad

MODES = ["compiled", "interpret", "tape"]


def run(f, mode, args):
    """f's value in `mode`; tape mode runs it on Tensors made from the array arguments."""
    if mode != "tape":
        return ad.jit(f, mode=mode)(*args)
    out = f(*[ad.as_tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    data = lambda v: v.numpy() if hasattr(v, "numpy") else v  # noqa: E731
    return tuple(map(data, out)) if isinstance(out, tuple) else data(out)


def same_as_numpy(f, *args, modes=MODES, rtol=1e-12):
    """Value, dtype, shape, NaN positions and the sign of zeros/infinities as numpy's."""
    with np.errstate(all="ignore"):
        want = f(*args)
    for mode in modes:
        with np.errstate(all="ignore"):
            got = run(f, mode, args)
        if isinstance(want, tuple):
            assert isinstance(got, tuple) and len(got) == len(want), mode
        for g, w in zip(got if isinstance(want, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            g, w = np.asarray(g), np.asarray(w)
            assert g.dtype == w.dtype and g.shape == w.shape, (mode, g.dtype, w.dtype)
            np.testing.assert_allclose(g, w, rtol=rtol, atol=0, equal_nan=True,
                                       err_msg=f"mode={mode}")
            np.testing.assert_array_equal(np.signbit(g), np.signbit(w), err_msg=f"mode={mode}")


def grad_matches_fd(f, x, modes=MODES, rtol=1e-6, atol=1e-8):
    want = numerical_grad(f, [x], 0)
    for mode in modes:
        np.testing.assert_allclose(ad.grad(f, mode=mode)(x), want, rtol=rtol, atol=atol,
                                   err_msg=f"mode={mode}")


X = np.array([[1.0, -2.0, 0.5], [3.0, 4.0, -1.5], [0.25, 2.0, 5.0]])
W = np.array([1.0, 2.0, 3.0])


# -- statistics -------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [np.var, np.std, np.mean, np.sum])
def test_reductions_take_where(fn):
    mask = X > 0
    same_as_numpy(lambda x: fn(x, where=mask), X)
    same_as_numpy(lambda x: fn(x, axis=0, where=mask), X)
    same_as_numpy(lambda x: fn(x, axis=1, where=x > 0, keepdims=True), X)  # a traced mask
    grad_matches_fd(lambda x: np.sum(fn(x, axis=1, where=mask)), X)


def test_var_where_with_correction():
    same_as_numpy(lambda x: np.var(x, axis=0, where=X > 0, correction=1), X)


@pytest.mark.parametrize("kw", [dict(axis=0), dict(axis=1), dict(axis=0, keepdims=True)])
def test_average_weights_lie_along_axis(kw):
    # a square X: weighting the wrong axis gave a plausible, wrong answer
    same_as_numpy(lambda x: np.average(x, weights=W, **kw), X)
    same_as_numpy(lambda x: np.average(x, weights=W, returned=True, **kw), X)
    grad_matches_fd(lambda x: np.sum(np.average(x, weights=W, **kw) ** 2), X)


def test_average_returned_without_weights_and_full_weights():
    same_as_numpy(lambda x: np.average(x, returned=True), X)
    same_as_numpy(lambda x: np.average(x, axis=1, returned=True), X)
    same_as_numpy(lambda x: np.average(x, weights=X * X, returned=True), X)


def test_average_refuses_like_numpy():
    for mode in MODES:
        with pytest.raises(TypeError, match="Axis must be specified"):
            run(lambda x: np.average(x, weights=W), mode, (X,))


# -- indexing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode_", ["clip", "wrap"])
def test_take_modes(mode_):
    idx = np.array([-4, -1, 0, 2, 3, 7])
    same_as_numpy(lambda v: np.take(v, idx, mode=mode_), W)
    same_as_numpy(lambda x: np.take(x, idx, axis=1, mode=mode_), X)
    grad_matches_fd(lambda v: np.sum(np.take(v, idx, mode=mode_) ** 2), W)


@pytest.mark.parametrize("mode_", ["clip", "wrap"])
def test_take_modes_with_traced_indices(mode_):
    def f(v, i):
        return np.take(v, i, mode=mode_)
    i = np.array([-4, -1, 0, 2, 3, 7])
    for mode in ["compiled", "interpret"]:
        np.testing.assert_array_equal(ad.jit(f, mode=mode)(W, i), f(W, i))


# -- norms ------------------------------------------------------------------------------------

A = np.array([[1.0, -2.0], [3.0, 4.5]])
B = np.arange(24.0).reshape(2, 3, 4) - 11.5


@pytest.mark.parametrize("ord_", [1, -1, np.inf, -np.inf, "fro", None])
def test_matrix_norms(ord_):
    same_as_numpy(lambda a: np.linalg.norm(a, ord=ord_), A)
    same_as_numpy(lambda a: np.linalg.norm(a, ord=ord_, axis=(0, 1)), A)
    same_as_numpy(lambda a: np.linalg.norm(a, ord=ord_, axis=(1, 0)), A)
    same_as_numpy(lambda b: np.linalg.norm(b, ord=ord_, axis=(2, 0), keepdims=True), B)
    grad_matches_fd(lambda a: np.linalg.norm(a, ord=ord_, axis=(0, 1)), A)


@pytest.mark.parametrize("ord_", [None, 1, 2, 3, 0.5, 0, np.inf, -np.inf, -1])
def test_vector_norms(ord_):
    same_as_numpy(lambda v: np.linalg.norm(v, ord=ord_), W - 1.5, rtol=1e-12)
    same_as_numpy(lambda b: np.linalg.norm(b, ord=ord_, axis=1), B)


@pytest.mark.parametrize("ord_", [2, -2, "nuc"])
def test_singular_value_norms(ord_):
    same_as_numpy(lambda a: np.linalg.norm(a, ord=ord_), A)
    same_as_numpy(lambda b: np.linalg.norm(b, ord=ord_, axis=(2, 0), keepdims=True), B)
    grad_matches_fd(lambda a: np.linalg.norm(a, ord=ord_), A)


# -- special values ---------------------------------------------------------------------------

def test_hypot_scales():
    a = np.array([1e300, 1e-300, 3.0, 0.0, np.inf, np.nan, -1e200, 0.0])
    b = np.array([1.0, 1e-300, -4.0, 0.0, np.nan, np.inf, 1e200, -0.0])
    same_as_numpy(np.hypot, a, b, rtol=1e-15)
    # d hypot(a, 1) / da = a / hypot(a, 1) = 1 at a = 1e200 (was 0: a*a overflowed)
    for mode in MODES:
        assert ad.grad(lambda a: np.hypot(a, 1.0), mode=mode)(1e200) == pytest.approx(1.0)
        g = ad.grad(lambda a, b: np.hypot(a, b), argnums=(0, 1), mode=mode)(3.0, 3.0)
        np.testing.assert_allclose(g, [2 ** -0.5] * 2)


def test_logaddexp_at_infinities():
    a = np.array([np.inf, -np.inf, -np.inf, np.inf, 1.0, np.nan, 800.0, -800.0])
    b = np.array([1.0, -np.inf, np.inf, np.inf, -np.inf, 0.0, 800.0, -801.0])
    same_as_numpy(np.logaddexp, a, b, rtol=1e-15)
    grad_matches_fd(lambda v: np.sum(np.logaddexp(v, 2.0 * v)), np.array([-1.0, 0.3, 2.0]))


def test_power_and_sign_special_values():
    x = np.array([-np.inf, np.inf, -0.0, 0.0, 4.0, np.nan])
    same_as_numpy(lambda v: v ** 0.5, x)          # numpy: sqrt for a scalar 0.5, nan at -inf
    same_as_numpy(lambda v: np.power(v, 0.5), x)
    same_as_numpy(lambda v: np.power(v, np.full(6, 0.5)), x)  # an array exponent: C's pow
    same_as_numpy(np.sign, np.array([-0.0, 0.0, -2.0, 3.0, np.nan, -np.inf]))
    tiny = np.array([1e154, 1e160, 3e161, 1e-154, 2.0, -3.0, np.inf, 0.0])
    for n in (-1, -2, -3):
        same_as_numpy(lambda v: v ** n, tiny, rtol=4e-16)  # subnormal results stay subnormal


def test_float_to_int_casts_match_numpy():
    x = np.array([np.nan, 1e20, -1e20, 3.7, -3.7, 2.0 ** 31, -2.0 ** 31, 2.0 ** 63, np.inf])
    for dt in (np.int32, np.int64):
        same_as_numpy(lambda v: v.astype(dt), x, modes=["compiled", "interpret"])
        same_as_numpy(lambda v: v.astype(dt), x.astype(np.float32),
                      modes=["compiled", "interpret"])


# -- dtypes -----------------------------------------------------------------------------------

def test_bool_and_int32_reductions_widen():
    bools = np.array([True, True, False, True])
    i32 = np.array([2, -3, 40000, 7], np.int32)
    for f in (np.cumsum, np.sum, np.prod):
        same_as_numpy(f, bools)
        same_as_numpy(f, i32)
    same_as_numpy(lambda v: np.cumsum(v, dtype=np.int32), bools)


def test_python_scalars_in_products_are_float64():
    x32 = np.ones(3, np.float32)
    same_as_numpy(lambda v: np.dot(v, 0.5), x32)
    same_as_numpy(lambda v: np.outer(v, 2.0), x32)
    same_as_numpy(lambda v: v * 0.5, x32)  # a ufunc: the Python float is weak, float32 stays


def test_python_float_arguments_are_float64_in_every_mode():
    for mode in MODES:
        v, g = ad.value_and_grad(lambda x: x * x, mode=mode)(1.5)
        assert np.asarray(v).dtype == np.float64 and np.asarray(g).dtype == np.float64, mode


def test_float32_sums_are_accurate():
    # numpy sums float32 pairwise (error ~ log2(n) eps); a running float32 sum is off by
    # ~n eps. Compiled float32 sums accumulate in float64: the bound below is numpy's.
    x = (np.random.default_rng(0).random(1_000_003) + 1.0).astype(np.float32)
    exact = np.sum(x.astype(np.float64))
    bound = np.log2(x.size) * np.finfo(np.float32).eps * exact
    for mode in ["compiled", "interpret"]:
        got = ad.jit(np.sum, mode=mode)(x)
        assert got.dtype == np.float32 and abs(float(got) - exact) <= bound, mode
        m = ad.jit(np.mean, mode=mode)(x)
        assert abs(float(m) - exact / x.size) <= bound / x.size, mode
        rows = ad.jit(lambda v: np.sum(v.reshape(8, -1), axis=1), mode=mode)(x[:-3])
        exact_rows = np.sum(x[:-3].reshape(8, -1).astype(np.float64), axis=1)
        assert np.all(np.abs(rows - exact_rows) <= bound), mode


# -- operators and calls that crashed on valid numpy -------------------------------------------

def test_reflected_logical_operators():
    x = np.array([-1.0, 2.0, 0.0])
    same_as_numpy(lambda v: True & (v > 0), x)
    same_as_numpy(lambda v: False | (v > 0), x)
    same_as_numpy(lambda v: True ^ (v > 0), x)
    same_as_numpy(lambda v: (v > 0) ^ (v < 1), x)


def test_reductions_of_a_reduction_take_axis_0():
    same_as_numpy(lambda v: np.sum(np.sum(v), axis=0), W)
    same_as_numpy(lambda v: np.max(np.sum(v), axis=-1), W)
    same_as_numpy(lambda v: np.prod(np.sum(v), axis=0), W)
    same_as_numpy(lambda v: np.cumsum(np.sum(v), axis=0), W)


def test_negating_a_bool_array_is_refused():
    for mode in MODES:
        with pytest.raises(TypeError, match="boolean negative"):
            run(lambda v: -(v > 0), mode, (W,))


def test_tape_forward_mode_negative_power_of_a_python_float():
    for mode in MODES:
        assert ad.jacfwd(lambda x: x ** -2, mode=mode)(1.5) == pytest.approx(-2 * 1.5 ** -3)


@pytest.mark.parametrize("jac", ["jacrev", "jacfwd", "hessian"])
def test_jacobians_of_empty_arrays(jac):
    x = np.zeros(0)
    f = (lambda v: np.sum(v * v)) if jac == "hessian" else (lambda v: 2.0 * v)
    for mode in MODES:
        got = getattr(ad, jac)(f, mode=mode)(x)
        assert np.shape(got) == (0, 0)


# -- custom_vjp -------------------------------------------------------------------------------

def test_custom_vjp_wrong_shape_cotangent_raises():
    @ad.custom_vjp
    def f(x):
        return np.sum(x * x)
    f.defvjp(lambda x: (f(x), x), lambda x, g: (np.sum(2 * x * g),))  # () for a (3,) argument
    for mode in ["compiled", "interpret"]:
        with pytest.raises(ValueError, match="shape"):
            ad.grad(f, mode=mode)(np.ones(3))


def test_custom_vjp_nondiff_argnums():
    @functools.partial(ad.custom_vjp, nondiff_argnums=(0,))
    def f(k, x):
        return np.sum(x ** k)

    def fwd(k, x):
        return f(k, x), x

    def bwd(k, x, g):  # deliberately 10x the true derivative, to see the rule is used
        return (10.0 * k * x ** (k - 1) * g,)
    f.defvjp(fwd, bwd)
    x = np.array([1.0, 2.0])
    for mode in MODES:
        assert ad.jit(lambda x: f(3, x), mode=mode)(x) == pytest.approx(9.0)
        np.testing.assert_allclose(ad.grad(lambda x: f(3, x), mode=mode)(x), [30.0, 120.0])
    with pytest.raises(TypeError, match="nondiff_argnums"):
        ad.grad(lambda x: f(x, x))(x)
