"""numpy/functional.py (apply_along_axis, apply_over_axes) and the inputs numpy accepts:
byte-swapped arrays are converted; float16 is refused with a clear message."""
import numpy as np
import pytest

import autodiff_jit as ad
from table import check_case

_r = np.random.default_rng(37)
A = _r.standard_normal((3, 4))
T = _r.standard_normal((2, 3, 4))

CASES = {
    "apply_along_axis": (lambda a: np.apply_along_axis(lambda v: np.sum(v ** 2), 1, a), [A]),
    "apply_along_axis_vec": (lambda t: np.apply_along_axis(lambda v: v[::-1] * v[0], 1, t), [T]),
    "apply_along_axis_extra": (lambda a: np.apply_along_axis(lambda v, s: np.cumsum(v) * s, 0, a, 2.0), [A]),
    "apply_over_axes": (lambda t: np.apply_over_axes(np.sum, t, [0, 2]), [T]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_functional(name):
    f, args = CASES[name]
    check_case(f, args, rtol=1e-13)


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_byte_swapped_input_is_converted(mode):
    x = A.astype(">f8")
    f = lambda x: np.sum(np.sin(x) * x)  # noqa: E731
    np.testing.assert_allclose(ad.jit(f, mode=mode)(x), f(A), rtol=1e-14)
    g = ad.grad(f, mode=mode)
    for _ in range(2):  # the second call takes the cached path
        np.testing.assert_allclose(g(x), np.cos(A) * A + np.sin(A), rtol=1e-14)


@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
def test_float16_is_refused_clearly(mode):
    with pytest.raises(TypeError, match="float16.*float32.*astype"):
        ad.grad(lambda x: np.sum(x), mode=mode)(A.astype(np.float16))
