"""`x.flat` on traced values and tape Tensors: reading in C order whatever the layout, and
writing through to x's own elements (views write into their base), with numpy's repetition of
short values; checked against numpy's values and finite-difference gradients in every mode."""
import numpy as np
import pytest

import autodiff_jit as ad
from table import ALL_MODES, check_case

X = np.arange(1.0, 13.0).reshape(3, 4) / 7.0


def _write_scalar_and_fancy(x):
    y = x * 1.0
    y.flat[5] = x[0, 0] ** 3
    y.flat[[0, 11]] = x.flat[3:5]
    return y * y + x.flat[7]


def _write_through_a_transposed_view(x):
    y = x * 1.0
    v = y.T                          # C order of the view, not of y's memory
    v.flat[1] = 100.0 * x[0, 1]
    v.flat[2:6] = x[0, :2]           # two values repeated over four positions
    return y


def _assign_whole(x):
    y = x * 1.0
    y.flat = x[1]                    # cycled over all 12
    return y ** 2 + len(y.flat)


def _read(x):
    return np.sum(x.flat[x.size // 2:]) + sum(v for v in x[0].flat) + x.T.flat[-1]


def _boolean_key(x):
    y = x * 1.0
    y.flat[np.arange(12) % 5 == 0] = -x.flat[:3]
    return y


FLAT = {
    "write_scalar_and_fancy": (_write_scalar_and_fancy, [X]),
    "write_through_transposed_view": (_write_through_a_transposed_view, [X]),
    "assign_whole": (_assign_whole, [X]),
    "read": (_read, [X]),
    "boolean_key": (_boolean_key, [X]),
}


@pytest.mark.parametrize("name", sorted(FLAT))
def test_flat(name):
    f, args = FLAT[name]
    check_case(f, args)


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_a_traced_key_is_refused(mode):
    with pytest.raises(NotImplementedError, match=r"x\.flat\[key\] with a traced key"):
        ad.jit(lambda x: x.flat[np.argmax(x)], mode=mode)(X)
