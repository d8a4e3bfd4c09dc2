"""Result dtypes of float32 (and integer) inputs as numpy's, in every mode: the cases where
benchmarks/probe_numpy.py --float32 found autodiff_jit's dtype differing from numpy's (numpy
keeps float32 for some and promotes to float64 for others)."""
import numpy as np
import pytest

from table import check_value

X = np.array([0.31, 0.47, 0.58, 0.72, 0.86], np.float32)
Y = np.array([0.55, 0.23, 0.81, 0.39, 0.64], np.float32)
NANS = np.array([[0.3, np.nan, 0.8, 0.5], [1.1, 0.4, -0.7, 0.9]], np.float32)
I = np.array([3, 1, 4, 1, 5])

CASES = {
    # float32 stays float32
    "linspace": lambda x, y: np.linspace(x[0], x[1], 5),
    "linspace_python_start": lambda x, y: np.linspace(0.5, x[1], 4),
    "logspace": lambda x, y: np.logspace(x[0], x[1], 4),
    "gradient": lambda x, y: np.gradient(x, 0.5),
    "gradient_edge_order_2": lambda x, y: np.gradient(x, edge_order=2),
    "poly": lambda x, y: np.poly(x[:3]),
    "nanmean": lambda x, y: np.nanmean(NANS * x[0], axis=1),
    "nanvar": lambda x, y: np.nanvar(NANS * x[0], axis=1, ddof=1),
    "nanstd": lambda x, y: np.nanstd(NANS * x[0]),
    "quantile_scalar": lambda x, y: np.quantile(x, 0.3),
    "percentile_scalar": lambda x, y: np.percentile(x, 30),
    "histogram_bin_edges": lambda x, y: np.histogram_bin_edges(x, 3, range=(0, 1)),
    "histogram_edges": lambda x, y: np.histogram(x, 3)[1],
    # promoted to float64 by numpy
    "quantile_list": lambda x, y: np.quantile(x, [0.2, 0.7]),
    "percentile_list": lambda x, y: np.percentile(x, [20, 70]),
    "nanquantile_list": lambda x, y: np.nanquantile(x, [0.2]),
    "cov": lambda x, y: np.cov(x, y),
    "corrcoef": lambda x, y: np.corrcoef(x, y),
    "bincount_weights": lambda x, y: np.bincount(I, weights=x),
    "histogram2d": lambda x, y: np.histogram2d(x, y, 2, weights=x)[0],
    "histogramdd": lambda x, y: np.histogramdd([x, y], 2)[0],
    "vander": lambda x, y: np.vander(x, 3),
    "polyfit": lambda x, y: np.polyfit(x, y, 2),
    # integers: an element keeps the integer dtype
    "quantile_lower_ints": lambda x, y: np.quantile(I, 0.3, method="lower") * x[0],
    "poly_ints": lambda x, y: np.poly(I[:3]) * x[0],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_result_dtype_is_numpys(name):
    # float32 rounding: numpy's and autodiff_jit's algorithms may round differently
    check_value(CASES[name], [X, Y], rtol=2e-5, atol=1e-6, zero_signs=False)
