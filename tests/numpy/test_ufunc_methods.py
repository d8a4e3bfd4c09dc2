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
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ufunc_methods(name):
    f, args = CASES[name]
    # logaddexp's accumulate adds in another order than numpy's sequential loop
    check_case(f, args, rtol=1e-13, modes=ALL_MODES[:2] if name == "add_at" else ALL_MODES)


def test_unsupported_method_names_the_ufunc():
    with pytest.raises(NotImplementedError, match=r"np\.power\.reduce"):
        ad.jit(lambda a: np.power.reduce(a))(V)
