"""The reductions numpy/reductions.py and numpy/nanfunctions.py add: any/all/count_nonzero,
ptp, cumprod (a primitive; exact gradients at zeros), where=/initial=, the nan family, and
numpy's axis=0 of a 0-d value; value vs numpy and gradient vs finite differences, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad
from table import ALL_MODES, check_case

_r = np.random.default_rng(11)
A = _r.standard_normal((3, 4))
W = np.array([[True, False, True, True], [False, True, True, False], [True, True, False, True]])
N = A.copy()
N[0, 1] = N[2, 3] = np.nan
Z1 = np.array([1.5, -0.7, 0.0, 2.0, 1.3])          # one zero
Z2 = np.array([[1.5, 0.0, 0.8, 0.0, 1.1], [0.9, 1.2, -1.3, 0.7, 2.0]])  # two zeros; none

CASES = {
    "any": (lambda a: np.any(a > 1.0, axis=1), [A]), "all": (lambda a: np.all(a > -2, 0), [A]),
    "any_where": (lambda a: np.any(a > 1.0, where=W), [A]),
    "count_nonzero": (lambda a: np.count_nonzero(a > 0, axis=0), [A]),
    "ptp": (lambda a: np.ptp(a, axis=1), [A]),
    "cumprod": (lambda a: np.cumprod(a, axis=1), [A]),
    "cumprod_flat": (np.cumprod, [A]),
    "cumprod_one_zero": (np.cumprod, [Z1]),
    "cumprod_two_zeros": (lambda a: np.cumprod(a, axis=1), [Z2]),
    "cumprod_axis0": (lambda a: np.cumprod(a, axis=0), [Z2]),
    "cumulative_sum": (lambda a: np.cumulative_sum(a, axis=1, include_initial=True), [A]),
    "cumulative_prod": (lambda a: np.cumulative_prod(a, axis=0), [A]),
    "sum_where": (lambda a: np.sum(a, axis=1, where=W), [A]),
    "sum_initial": (lambda a: np.sum(a, initial=2.5), [A]),
    "prod_where": (lambda a: np.prod(a, axis=0, where=W, initial=1.5), [A]),
    "mean_where": (lambda a: np.mean(a, axis=1, where=W), [A]),
    "max_where": (lambda a: np.max(a, axis=1, where=W, initial=-5.0), [A]),
    "min_initial": (lambda a: np.min(a, axis=0, initial=-0.1), [A]),
    "nansum": (lambda a: np.nansum(a, axis=0), [N]), "nanprod": (np.nanprod, [N]),
    "nanmean": (lambda a: np.nanmean(a, axis=1), [N]),
    "nanmax": (lambda a: np.nanmax(a, axis=1), [N]), "nanmin": (np.nanmin, [N]),
    "nanvar": (lambda a: np.nanvar(a, axis=1, ddof=1), [N]), "nanstd": (np.nanstd, [N]),
    "nancumsum": (lambda a: np.nancumsum(a, axis=1), [N]),
    "nancumprod": (lambda a: np.nancumprod(a, axis=1), [N]),
    "nanargmax": (lambda a: np.nanargmax(a, axis=1), [N]),
    "nanargmin": (np.nanargmin, [N]),
    "sum_0d_axis0": (lambda a: np.sum(a[0, 0], axis=0) + np.max(a[0, 1], axis=-1), [A]),
    "cumsum_0d": (lambda a: np.cumsum(a[1, 1], axis=0) * np.cumprod(a[0, 2], axis=0), [A]),
    "argmax_0d": (lambda a: np.argmax(a[1, 1], axis=0), [A]),
    "method_cumprod": (lambda a: a.cumprod(1) + a.cumprod(axis=0), [A]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reductions(name):
    f, args = CASES[name]
    check_case(f, args, rtol=1e-14)


def test_cumprod_gradient_at_zeros_is_exact():
    # y = cumprod([a, 0, c]): d(sum y)/d(a, 0, c) = (1, a + a c, 0)
    a, c = 1.7, -0.6
    for mode in ALL_MODES:
        g = ad.grad(lambda x: np.sum(np.cumprod(x)), mode=mode)(np.array([a, 0.0, c]))
        np.testing.assert_allclose(g, [1.0, a + a * c, 0.0], rtol=1e-15)


def test_cumprod_jvp_at_zeros():
    x = np.array([1.7, 0.0, -0.6, 0.0, 2.0])
    v = np.array([0.3, -1.1, 0.5, 0.7, 0.2])
    jac = ad.jacfwd(np.cumprod)(x)
    eps = 1e-7
    fd = (np.cumprod(x + eps * v) - np.cumprod(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(jac @ v, fd, rtol=1e-7, atol=1e-9)


def test_where_without_initial_on_an_empty_slice_is_refused():
    with pytest.raises(ValueError, match="initial"):
        ad.jit(lambda a: np.max(a, axis=1, where=W & False))(A)


@pytest.mark.parametrize("f", [
    lambda x: np.var(x, dtype=np.float64), lambda x: np.std(x, axis=0, dtype=np.float64, ddof=1),
    lambda x: np.var(x.astype(np.float64), axis=1, dtype=np.float32)])
def test_var_std_dtype(f):
    """dtype= is the accumulation dtype (it was ignored: float32 in, float32 out)."""
    from table import check_value
    x = A.astype(np.float32)
    # float32 results: a float32 sum of 4-12 terms, bounded by (n + 2) roundings
    check_value(f, [x], rtol=14 * 6e-8)
    check_case(lambda x: f(x.astype(np.float32)) * 1.0, [A], grad=False, rtol=14 * 6e-8)
    import autodiff_jit as ad
    for mode in ("compiled", "interpret", "tape"):
        g = ad.grad(lambda x: np.sum(f(x)), mode=mode)(A)
        assert g.dtype == np.float64 and np.all(np.isfinite(g))
    check_case(lambda x: np.var(x, dtype=np.float64), [A])


def test_var_integer_dtype_is_refused():
    import autodiff_jit as ad
    with pytest.raises(NotImplementedError, match="dtype=int64"):
        ad.jit(lambda x: np.var(x, dtype=np.int64))(A)


# the compiled scan kernel: along the innermost axis it scans SCAN_TILE rows together (a
# last partial tile when the row count is not a multiple); along an outer axis, column-wise
@pytest.mark.parametrize("shape,axis", [((1,), 0), ((7,), 0), ((8, 5), 1), ((9, 5), 1),
                                        ((17, 3, 4), 2), ((5, 3, 1), 1), ((4, 6), 0),
                                        ((2, 9, 3), 1)])
def test_scan_kernel_tiles(shape, axis):
    from autodiff_jit.backend.emitters import SCAN_TILE
    assert SCAN_TILE > 1
    r = np.random.default_rng(len(shape) * 10 + axis)
    x = r.uniform(0.5, 1.5, shape)
    n = shape[axis]
    tol = 4 * n * np.finfo(np.float64).eps   # n rounded operations per element
    for fn in (np.cumsum, np.cumprod):
        np.testing.assert_allclose(ad.jit(lambda a: fn(a, axis=axis))(x), fn(x, axis=axis),
                                   rtol=tol)
    for xi in (r.integers(-50, 50, shape), r.random(shape) < 0.5,
               r.integers(-5, 5, shape).astype(np.int32)):
        np.testing.assert_array_equal(ad.jit(lambda a: np.cumsum(a, axis=axis))(xi),
                                      np.cumsum(xi, axis=axis))
    xf = x.astype(np.float32)
    np.testing.assert_allclose(ad.jit(lambda a: np.cumsum(a, axis=axis))(xf),
                               np.cumsum(xf, axis=axis), rtol=4 * n * np.finfo(np.float32).eps)
    # the gradient runs the reverse scan: d sum(cumsum(x) * w) / dx = reversed cumsum of w
    w = r.standard_normal(shape)
    g = ad.grad(lambda a: np.sum(np.cumsum(a, axis=axis) * w))(x)
    want = np.flip(np.cumsum(np.flip(w, axis), axis=axis), axis)
    np.testing.assert_allclose(g, want, rtol=tol, atol=tol * np.abs(w).sum())
    check_case(lambda a: np.cumprod(a, axis=axis), [x], modes=("compiled",))


@pytest.mark.parametrize("f", [
    lambda x: np.nanmean(x, axis=1), lambda x: np.nanvar(x, ddof=1), np.nanstd,
    lambda x: np.nanvar(x.astype(np.float64), axis=0, dtype=np.float32),
    lambda x: np.nanstd(x, dtype=np.float64)])
def test_nan_reductions_keep_numpys_dtype(f):
    """float32 in, float32 out (nanmean/nanvar/nanstd gave float64), and nanvar/nanstd's
    dtype= (it was ignored)."""
    from table import check_value
    # float32 results: a float32 sum of 4-12 terms, bounded by (n + 2) roundings
    check_value(f, [N.astype(np.float32)], rtol=14 * 6e-8)


@pytest.mark.parametrize("axis", [0, 1, None])
def test_cumsum_keeps_negative_zeros(axis):
    """numpy's running sum starts from the first element: -0.0 stays -0.0 (the compiled scan
    started from +0.0, and -0.0 + 0.0 is +0.0)."""
    from table import check_value
    x = np.full((9, 5), -0.0)
    x[2, 3], x[7, 1] = 1.5, np.nan
    check_value(lambda a: np.cumsum(a, axis), [x])
    check_value(lambda a: np.cumsum(a.astype(np.float32), axis), [x])
