"""Programs that LLVM once compiled wrongly for this project's targets, run in compiled mode
against the interpreter. Each names the cause and what the backend does about it."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad


def _max_of_two_scalars(x):
    return np.maximum(x[0] * 1.0, x[1] * 0.5)


def _min_of_two_scalars(x):
    return np.minimum(x[0] * 2.0, x[1] * 0.5) + np.maximum(x[2], x[3] * 3.0)


def _max_chain(x):
    a = np.maximum(x[0] * 1.0, x[1] * 0.5) - 0.62
    return a + 2.0 * x[1] * 0.5


# The tie rule of max/min (half to each operand at a tie) is two nested selects per operand;
# SLP vectorization made one 2-lane select, shuffle and select of them, which LLVM 22's x86
# back end with AVX-512 folded into a masked permute with the lanes' conditions crossed: the
# gradient came out halved. The backend runs no SLP vectorization (engine.optimize).
@pytest.mark.parametrize("f", [_max_of_two_scalars, _min_of_two_scalars, _max_chain],
                         ids=lambda f: f.__name__)
def test_tie_rules_of_scalar_max_and_min(f):
    for x in (np.array([0.713, -0.327, 1.129, 0.437]), np.array([-0.9, -0.3, 1.0, 0.4]),
              np.array([0.25, 0.5, 0.3, 0.1])):   # the last: a tie in the first max
        want = ad.grad(f, mode="interpret")(x)
        np.testing.assert_array_equal(ad.grad(f)(x), want)
        np.testing.assert_array_equal(ad.grad(f, mode="tape")(x), want)
