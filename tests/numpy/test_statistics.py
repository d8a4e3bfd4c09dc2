"""numpy/statistics.py: value vs numpy and gradient vs finite differences, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad

from table import check_case

_r = np.random.default_rng(23)
A = _r.permutation(30).reshape(5, 6) * 0.41 - 4.0 + _r.uniform(0, 0.01, (5, 6))  # no ties
N = A.copy()
N[1, 2] = N[3, 0] = np.nan
X = _r.standard_normal(20)
W = _r.uniform(0.5, 2.0, 20)

CASES = {
    "median": (np.median, [A]), "median_axis": (lambda a: np.median(a, axis=0), [A]),
    "median_odd": (lambda a: np.median(a[:, :5], axis=1, keepdims=True), [A]),
    "median_nan": (lambda a: np.median(a, axis=1), [N]),
    "percentile": (lambda a: np.percentile(a, [10, 50, 97.5], axis=1), [A]),
    "percentile_scalar": (lambda a: np.percentile(a, 33.3), [A]),
    "quantile": (lambda a: np.quantile(a, 0.7, axis=0, keepdims=True), [A]),
    "quantile_multi_axes": (lambda a: np.quantile(a[None], [0.2, 0.9], axis=(1, 2)), [A]),
    "quantile_lower": (lambda a: np.quantile(a, 0.3, axis=1, method="lower"), [A]),
    "quantile_higher": (lambda a: np.quantile(a, 0.3, axis=1, method="higher"), [A]),
    "quantile_nearest": (lambda a: np.quantile(a, 0.3, axis=1, method="nearest"), [A]),
    "quantile_midpoint": (lambda a: np.quantile(a, 0.3, axis=1, method="midpoint"), [A]),
    "nanmedian": (lambda a: np.nanmedian(a, axis=1), [N]),
    "nanpercentile": (lambda a: np.nanpercentile(a, [25, 60], axis=0), [N]),
    "nanquantile": (lambda a: np.nanquantile(a, 0.4), [N]),
    "cov": (np.cov, [A]), "cov_cols_bias": (lambda a: np.cov(a, rowvar=False, bias=True), [A]),
    "cov_xy": (lambda a: np.cov(a[0], a[1], ddof=0), [A]),
    "corrcoef": (np.corrcoef, [A]), "corrcoef_xy": (lambda a: np.corrcoef(a[0], a[2]), [A]),
    "bincount": (lambda w: np.bincount(np.array([0, 1, 1, 3, 0, 5, 3] * 2 + [2] * 6), w), [W]),
    "histogram_weights": (lambda x, w: np.histogram(x, 5, weights=w)[0] * 1.0, [X, W]),
    "histogram_edges": (lambda x: np.histogram(x, 4), [X]),
    "histogram_range_density": (lambda x, w: np.histogram(x, 6, range=(-2, 2), weights=w,
                                                            density=True)[0], [X, W]),
    "histogram_bin_edges": (lambda x: np.histogram_bin_edges(x, 5), [X]),
    "histogram_bin_edges_range": (lambda x: np.histogram_bin_edges(x, 3, range=(-1, 2)), [X]),
    "histogram2d_weights": (lambda x, w: np.histogram2d(x, w, 3, weights=x * w), [X, W]),
    "histogram2d_bins_range": (lambda x, w: np.histogram2d(x, w, [2, 4], [[-2, 2], [0, 2.5]],
                                                          weights=w)[0], [X, W]),
    "histogram2d_density": (lambda x, w: np.histogram2d(x, w, 3, density=True), [X, W]),
    "histogram2d_counts": (lambda x, w: np.histogram2d(x, w, np.linspace(-2, 2, 5))[0] * x[0],
                           [X, W]),
    "histogramdd": (lambda x, w: np.histogramdd(np.stack([x, w, x * w], 1), (2, 3, 2),
                                                weights=w ** 2)[0], [X, W]),
    "histogramdd_edges": (lambda x, w: tuple(np.histogramdd(np.stack([x, w, x * w], 1),
                                                            (2, 3, 2))[1]), [X, W]),
    "histogramdd_list_density": (lambda x, w: np.histogramdd([x, w], 2, density=True)[0],
                                 [X, W]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_statistics(name):
    f, args = CASES[name]
    # median_nan's output holds NaN: its finite differences are NaN, so values only
    check_case(f, args, rtol=1e-13, grad=name != "median_nan")


# every numpy quantile method; the q list hits integer virtual indices (midpoint's q = 0 took
# the mean of the first two elements once), both ends, and indices in between
_QS = [0, 1, 0.0, 1.0, 0.01, 0.1, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 0.99, 1 / 3, 2 / 3,
       [0.2, 0.5, 0.8]]


def _methods():
    from autodiff_jit.numpy.statistics import QUANTILE_METHODS
    return QUANTILE_METHODS


def test_every_numpy_quantile_method_is_known():
    import inspect
    doc = inspect.getdoc(np.quantile)
    for m in _methods():
        assert f"'{m}'" in doc
    with pytest.raises(ValueError, match="not a valid method"):
        ad.jit(lambda a: np.quantile(a, 0.5, method="nope"))(X)


_FLOAT_QS = [q for q in _QS if not isinstance(q, (int, list))]


@pytest.mark.parametrize("method", _methods())
@pytest.mark.parametrize("n, mode", [(1, "compiled"), (2, "interpret"), (3, "interpret"),
                                     (4, "interpret"), (6, "compiled"), (10, "interpret")])
def test_quantile_methods_match_numpy_exactly(method, n, mode):
    # every q in one call per input kind (one compile each): a list of q, the integer q of
    # numpy's element-taking path, and the weak Python-float q of float32 percentiles
    rng = np.random.default_rng(n)
    x, rows, ints = rng.standard_normal(n), rng.standard_normal((3, n)), rng.integers(-5, 5, n)
    f32 = rng.standard_normal(n).astype(np.float32)
    qs = _FLOAT_QS + [0.2, 0.5, 0.8]
    checks = [(lambda a: np.quantile(a, qs, method=method), x),
              (lambda a: np.quantile(a, qs, axis=1, method=method), rows),
              (lambda a: np.percentile(a, np.multiply(qs, 100), method=method), x),
              (lambda a: np.quantile(a, qs, method=method), ints),
              (lambda a: (np.quantile(a, 0, method=method), np.quantile(a, 1, method=method)), x),
              (lambda a: tuple(np.percentile(a, q * 100, method=method) for q in _FLOAT_QS), f32),
              (lambda a: tuple(np.quantile(a, q, method=method) for q in _FLOAT_QS), ints)]
    for f, a in checks:
        want, got = f(a), ad.jit(f, mode=mode)(a)
        for w, g in zip(want if isinstance(want, tuple) else [want],
                        got if isinstance(got, tuple) else [got]):
            assert np.asarray(g).dtype == np.asarray(w).dtype, a.dtype
            np.testing.assert_array_equal(g, w, err_msg=f"{a.dtype}")


@pytest.mark.parametrize("method", _methods())
def test_quantile_methods_gradients(method):
    check_case(lambda a: np.quantile(a, [0.0, 0.3, 0.55, 1.0], axis=1, method=method), [A],
               rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_nanquantile_matches_numpy_exactly(dtype, n):
    # b - a in the elements' dtype, the weight rounded after 1 - t, as numpy (float32 rows
    # were a unit in the last place off). Row 0 keeps values: numpy's result dtype follows
    # the first row's (an all-NaN first row makes it float32 even for a list of q)
    x = np.random.default_rng(n).standard_normal((3, n)).astype(dtype)
    x[1, 0] = x[2, -1] = np.nan
    for q in (0, 1, 0.3, 0.5, [0.1, 0.9]):
        pct = np.multiply(q, 100) if isinstance(q, list) else q * 100
        for f in (lambda a: np.nanquantile(a, q, axis=1),
                  lambda a: np.nanpercentile(a, pct, axis=1)):
            want, got = f(x), ad.jit(f)(x)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"q={q}")
