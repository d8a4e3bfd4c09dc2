"""numpy/sorting.py: the argsort primitive (compiled kernel: merge sort of (key, index) pairs) and
sort/argsort/partition/argpartition/lexsort/searchsorted/digitize; value vs numpy and
gradient (through the permutation) vs finite differences, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad
from table import ALL_MODES, check_case, check_value

_r = np.random.default_rng(19)
A = _r.permutation(24).reshape(4, 6) * 0.37 - 3.0 + _r.uniform(0, 0.01, (4, 6))  # no ties
V = A[0].copy()
BINS = np.array([-2.0, -0.5, 0.3, 1.1, 2.5])


def _method_sort(a):
    b = a * 1.0
    b.sort(axis=0)
    return b


CASES = {
    "sort": (np.sort, [A]), "sort_axis0": (lambda a: np.sort(a, axis=0), [A]),
    "sort_flat": (lambda a: np.sort(a, axis=None), [A]),
    "sort_desc": (lambda a: -np.sort(-a), [A]),
    "sort_f32": (lambda a: np.sort(a.astype(np.float32)).astype(np.float64), [A]),
    "argsort": (lambda a: np.argsort(a, axis=1), [A]),
    "argsort_gather": (lambda a: a[0][np.argsort(a[1])], [A]),
    "method_argsort": (lambda a: a.argsort(0), [A]),
    "method_sort": (_method_sort, [A]),
    "sort_then_take": (lambda a: np.sort(a)[:, -2:] * 3.0, [A]),
    # a tuple of keys: numpy dispatches lexsort on a tuple's items, not on a list's
    "lexsort": (lambda a: np.lexsort((np.round(a[0]), np.round(a[1]))), [A]),
    "searchsorted": (lambda v: np.searchsorted(BINS, v), [V]),
    "searchsorted_right": (lambda v: np.searchsorted(np.sort(v), BINS, side="right"), [V]),
    "digitize": (lambda v: np.digitize(v, BINS), [V]),
    "digitize_right_decreasing": (lambda v: np.digitize(v, BINS[::-1], right=True), [V]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sorting(name):
    f, args = CASES[name]
    # float32 finite differences are too coarse: sort_f32 checks values only
    check_case(f, args, modes=ALL_MODES[:2] if name == "method_sort" else ALL_MODES,
               grad=name != "sort_f32")


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_sort_special_values_and_ties(mode):
    x = np.array([3.0, np.nan, -0.0, 0.0, -np.inf, 1.0, np.nan, 1.0, np.inf, -2.0])
    got = ad.jit(np.sort, mode=mode)(x)
    np.testing.assert_array_equal(got, np.sort(x))
    # stable order of ties (numpy's kind="stable")
    np.testing.assert_array_equal(ad.jit(np.argsort, mode=mode)(x), np.argsort(x, kind="stable"))
    ints = np.array([5, -3, 2, 5, 0, -3, 9], np.int64)
    np.testing.assert_array_equal(ad.jit(np.argsort, mode=mode)(ints),
                                  np.argsort(ints, kind="stable"))


@pytest.mark.parametrize("mode", ALL_MODES)
def test_partition_contract(mode):
    got = ad.jit(lambda a: np.partition(a, 2, axis=1), mode=mode)(A)
    np.testing.assert_array_equal(got[:, 2], np.partition(A, 2, axis=1)[:, 2])
    assert np.all(got[:, :2] <= got[:, 2:3]) and np.all(got[:, 3:] >= got[:, 2:3])
    idx = ad.jit(lambda a: np.argpartition(a, 3), mode=mode)(V)
    assert V[idx][3] == np.sort(V)[3]


def test_sort_gradient_follows_the_permutation():
    x = np.array([0.3, -1.2, 2.5, 0.9])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    for mode in ALL_MODES:
        g = ad.grad(lambda x: np.sum(np.sort(x) * w), mode=mode)(x)
        np.testing.assert_array_equal(g, w[np.argsort(np.argsort(x))])


def test_argsort_kernel_large_rows():
    x = _r.standard_normal((3, 5000))
    check_value(lambda a: np.sort(a, axis=1), [x], modes=("compiled",))
