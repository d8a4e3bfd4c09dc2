"""numpy/statistics.py: value vs numpy and gradient vs finite differences, every mode."""
import numpy as np
import pytest

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
