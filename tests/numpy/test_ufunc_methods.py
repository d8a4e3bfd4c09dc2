"""numpy/ufunc_methods.py: np.<ufunc>.reduce/accumulate/outer/at/reduceat; value vs numpy
and gradient vs finite differences, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad
from table import ALL_MODES, check_case

_r = np.random.default_rng(31)
A = _r.permutation(20).reshape(4, 5) * 0.3 - 2.9 + _r.uniform(0, 0.01, (4, 5))
V = A[1].copy()


def _add_at(a, v):
    a = a * 1.0
    np.add.at(a, [0, 2, 0, 4], v[:4])
    return a


def _at(uf, idx, n=None):
    """f(a, v): a copy of a updated by uf.at(copy, idx, v[:n]) (no operand when n is None)."""
    def f(a, v):
        a = a * 1.0
        uf.at(a, idx) if n is None else uf.at(a, idx, v[:n])
        return a
    return f


CASES = {
    "add_reduce": (lambda a: np.add.reduce(a), [A]),
    "add_reduce_axis1": (lambda a: np.add.reduce(a, axis=1, keepdims=True), [A]),
    "add_reduce_none": (lambda a: np.add.reduce(a, axis=None), [A]),
    "multiply_reduce": (lambda a: np.multiply.reduce(a, 1), [A]),
    "maximum_reduce": (lambda a: np.maximum.reduce(a, axis=0), [A]),
    "minimum_reduce": (lambda a: np.minimum.reduce(a, axis=1), [A]),
    "logaddexp_reduce": (lambda a: np.logaddexp.reduce(a, axis=1), [A]),
    "add_accumulate": (lambda a: np.add.accumulate(a, axis=1), [A]),
    "multiply_accumulate": (lambda a: np.multiply.accumulate(a), [A]),
    "maximum_accumulate": (lambda a: np.maximum.accumulate(a, axis=1), [A]),
    "logaddexp_accumulate": (lambda v: np.logaddexp.accumulate(v), [V]),
    "multiply_outer": (lambda v, a: np.multiply.outer(v, a[0]), [V, A]),
    "subtract_outer": (lambda v: np.subtract.outer(v, v), [V]),
    "add_at": (_add_at, [V, V]),
    "add_reduceat": (lambda v: np.add.reduceat(v, [0, 2, 2, 4]), [V]),
    "maximum_reduceat": (lambda a: np.maximum.reduceat(a, [0, 3, 1], axis=1), [A]),
    # numpy/lists.py routes np.subtract while tracing: .at must still subtract
    "subtract_at": (_at(np.subtract, [0, 2, 0, 4], 4), [V, V]),
    "maximum_at": (_at(np.maximum, [0, 2, 0, 4, 0], 5), [V, 1.3 * V[::-1] + 0.1]),  # no ties
    "multiply_at_2d": (_at(np.multiply, (np.array([0, 3, 0]), np.array([1, 2, 1])), 3), [A, V]),
    "power_at": (_at(np.power, [1, 1, 3], 3), [np.abs(V) + 0.5, V]),
    "negative_at": (_at(np.negative, [2, 2, 2, 0]), [V, V]),
    "fmax_reduce": (lambda a: np.fmax.reduce(a, axis=1), [A]),
    "fmin_reduce_keepdims": (lambda a: np.fmin.reduce(a, axis=0, keepdims=True), [A]),
    "hypot_reduce_none": (lambda a: np.hypot.reduce(a, axis=None), [A]),
    "logaddexp2_reduce": (lambda a: np.logaddexp2.reduce(a[:3], axis=1), [A]),
    "logical_xor_reduce": (lambda a: np.logical_xor.reduce(a > 0, axis=1) * a[0, :4], [A]),
    "logical_xor_accumulate": (lambda a: np.logical_xor.accumulate(a, axis=1), [A]),
    "logical_and_accumulate": (lambda a: np.logical_and.accumulate(a.round(), axis=1), [A]),
    "hypot_reduceat": (lambda a: np.hypot.reduceat(a, [0, 2, 4], axis=1), [A]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ufunc_methods(name):
    f, args = CASES[name]
    # logaddexp's accumulate adds in another order than numpy's sequential loop
    check_case(f, args, rtol=1e-13, modes=ALL_MODES)


def test_unsupported_method_names_the_ufunc():
    with pytest.raises(NotImplementedError, match=r"np\.power\.reduce"):
        ad.jit(lambda a: np.power.reduce(a))(V)
