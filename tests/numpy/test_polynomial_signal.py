"""numpy/polynomial.py and numpy/signal.py: value vs numpy and gradient vs finite
differences, every mode."""
import numpy as np
import pytest

from table import check_case

_r = np.random.default_rng(29)
P = np.array([1.3, -0.7, 2.1, 0.4])
Q = np.array([0.9, 0.25])
X = _r.standard_normal(7)
A = _r.standard_normal(12)
K = _r.standard_normal(4)
XP = np.sort(_r.uniform(-2, 2, 6))
FP = _r.standard_normal(6)
M = _r.standard_normal((5, 6))
PH = np.cumsum(_r.uniform(-3, 3, 10))

CASES = {
    "polyval": (np.polyval, [P, X]), "polyval_scalar": (lambda p: np.polyval(p, 0.7), [P]),
    "polyder": (lambda p: np.polyder(p, 2), [P]), "polyint": (lambda p: np.polyint(p, 2, 0.5), [P]),
    "polyadd": (np.polyadd, [P, Q]), "polysub": (np.polysub, [Q, P]),
    "polymul": (np.polymul, [P, Q]), "polydiv": (np.polydiv, [P, Q]),
    "poly": (np.poly, [Q]),
    "convolve_full": (np.convolve, [A, K]), "convolve_same": (lambda a, k: np.convolve(a, k, "same"), [A, K]),
    "convolve_valid": (lambda a, k: np.convolve(k, a, "valid"), [A, K]),
    "convolve_same_swapped": (lambda a, k: np.convolve(k, a, "same"), [A, K]),
    "correlate": (np.correlate, [A, K]), "correlate_full": (lambda a, k: np.correlate(a, k, "full"), [A, K]),
    "correlate_swapped_same": (lambda a, k: np.correlate(k, a, "same"), [A, K]),
    "interp": (lambda x, fp: np.interp(x, XP, fp), [X, FP]),
    "interp_left_right": (lambda x: np.interp(x * 3, XP, FP, left=-1.0, right=2.0), [X]),
    "gradient": (np.gradient, [A]), "gradient_2d": (lambda m: np.gradient(m, 0.5, 2.0), [M]),
    "gradient_axis_edge2": (lambda m: np.gradient(m, axis=1, edge_order=2), [M]),
    "trapezoid": (np.trapezoid, [A]), "trapezoid_x": (lambda y, x: np.trapezoid(y, np.sort(x)), [X, X]),
    "trapezoid_axis": (lambda m: np.trapezoid(m, dx=0.3, axis=0), [M]),
    "unwrap": (np.unwrap, [PH]), "unwrap_period": (lambda p: np.unwrap(p, period=4.0), [PH]),
    "ediff1d": (lambda a: np.ediff1d(a, to_end=[1.0, 2.0], to_begin=-3.0), [A]),
    "polyfit": (lambda x, y: np.polyfit(x, y, 3), [XP, FP]),
    "polyfit_w_2d": (lambda x, y, w: np.polyfit(x, np.stack([y, y * y], 1), 2, w=w),
                     [XP, FP, 1.0 + np.abs(X[:6])]),
    "polyfit_full": (lambda x, y: np.polyfit(x, y, 2, full=True)[:2], [XP, FP]),
    "polyfit_cov": (lambda x, y: np.polyfit(x, y, 2, cov=True), [XP, FP]),
    "polyfit_cov_unscaled_2d": (lambda x, y: np.polyfit(x, np.stack([y, -y], 1), 1,
                                                        cov="unscaled"), [XP, FP]),
    "polyfit_rcond_kept": (lambda x, y: np.polyfit(x, y, 5, rcond=1e-4), [XP, FP]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_polynomial_signal(name):
    f, args = CASES[name]
    check_case(f, args, rtol=1e-12)


def test_polyfit_full_rank_and_singular_values():
    import autodiff_jit as ad
    for mode in ("compiled", "interpret", "tape"):
        got = ad.jit(lambda x, y: np.polyfit(x, y, 2, full=True), mode=mode)(XP, FP)
        want = np.polyfit(XP, FP, 2, full=True)
        assert int(got[2]) == want[2] == 3 and got[4] == want[4]
        np.testing.assert_allclose(got[3], want[3], rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Polyfit may be poorly conditioned")
def test_polyfit_rcond_truncating_value():
    """rcond=1e-3 drops the smallest singular value (7e-4) of the scaled Vandermonde matrix:
    the values agree with numpy; the gradient there is pinv's constant-rank one
    (docs/linalg.md), which finite differences across the cutoff do not follow."""
    from table import check_value
    check_value(lambda x, y: np.polyfit(x, y, 5, rcond=1e-3), [XP, FP], rtol=1e-10)


@pytest.mark.filterwarnings("ignore:Polyfit may be poorly conditioned")
def test_polyfit_errors_as_numpy():
    import autodiff_jit as ad
    for bad, exc in [(lambda x: np.polyfit(x, x, -1), ValueError),
                     (lambda x: np.polyfit(x, x[:3], 1), TypeError),
                     (lambda x: np.polyfit(x, x, 6, cov=True), ValueError),
                     (lambda x: np.polyfit(x, x, 1, w=np.ones(2)), TypeError)]:
        with pytest.raises(exc):
            bad(XP)
        with pytest.raises(exc):
            ad.jit(bad)(XP)


_SPECIAL = np.array([np.inf, 1.0, -0.0, 2.0, np.nan, 3.0, -np.inf])


@pytest.mark.parametrize("f", [
    lambda a, v: np.convolve(a, v), lambda a, v: np.convolve(v, a, "same"),
    lambda a, v: np.correlate(a, v, "full"), lambda a, v: np.convolve(a[1:4], v[:2]),
    lambda a, v: np.convolve(np.full(4, -0.0) * a[1], v * 0 + 1),
    lambda a, v: np.polymul(a[1:4], v[1:] + 1.0)])
def test_convolution_of_special_values_is_numpys(f):
    """Only overlapping terms are summed (an inf at the edge stays inf: zero padding times
    inf gave NaN), and sums start at +0.0 as numpy's (all -0.0 terms give 0.0)."""
    from table import check_value
    check_value(f, [_SPECIAL, np.array([-0.0, 2.0, np.inf])], modes=("compiled", "interpret"))
