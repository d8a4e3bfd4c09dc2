"""A tape-mode grad whose function closes over a traced value of an enclosing transform
(jvp, jit, grad in another mode): the gradient is recorded into that trace, not refused."""
import numpy as np
import pytest

import autodiff_jit as ad


def outer(x):
    inner = lambda y: np.sin(y * x)  # noqa: E731  (closes over x)
    return x * ad.grad(inner, mode="tape")(2.0)


def d_outer(x):  # d/dx [x * x cos(2x)]
    return 2 * x * np.cos(2 * x) - 2 * x * x * np.sin(2 * x)


@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
def test_tape_grad_closing_over_an_outer_traced_value(mode):
    x = 0.7
    assert np.isclose(ad.jit(outer, mode=mode)(x), x * x * np.cos(2 * x), rtol=1e-14)
    assert np.isclose(ad.grad(outer, mode=mode)(x), d_outer(x), rtol=1e-13)
    _, tangent = ad.jvp(outer, (x,), (1.0,), mode=mode)
    assert np.isclose(tangent, d_outer(x), rtol=1e-13)
