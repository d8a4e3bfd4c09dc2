"""reshape/ravel/flatten with order='F', and np.diff's prepend=/append=, every mode: values
and views as numpy, gradients against central differences; layout orders are refused."""
import numpy as np
import pytest

import autodiff_jit as ad

from helpers import numerical_grad

MODES = ["compiled", "interpret", "tape"]
X = np.array([[0.31, 1.73, 2.41], [3.62, 4.17, 5.89]])
W = np.arange(1.0, 7.0)


def _write_through(y, view):
    view[1] = 9.0     # a view (1-d F ravel) writes into y; a copy (2-d F reshape) does not
    return np.sum(y * W.reshape(y.shape))


CASES = {
    "reshape": lambda x: np.sum(x.reshape(3, 2, order="F") * W.reshape(3, 2)),
    "np.reshape 3-d": lambda x: np.sum(np.reshape(x, (1, 3, 2), order="F") * W.reshape(1, 3, 2)),
    "reshape -1 of a transpose": lambda x: np.sum(x.T.reshape(-1, 2, order="F") * W.reshape(3, 2)),
    "ravel": lambda x: np.sum(x.ravel(order="F") * W),
    "np.ravel": lambda x: np.sum(np.ravel(x, "F") * W),
    "flatten": lambda x: np.sum(x.flatten("F") * W),
    "F reshape is a copy": lambda x: (lambda y: _write_through(y, y.reshape(-1, order="F")))(x * 1.0),
    "1-d F ravel is a view": lambda x: (lambda y: _write_through(y, y.ravel("F")))(x.ravel() * 1.0),
    "diff prepend scalar": lambda x: np.sum(np.diff(x, prepend=1.0) * W.reshape(2, 3)),
    "diff append array axis 0": lambda x: np.sum(np.diff(x, axis=0, append=x[:1] ** 2)
                                                 * W.reshape(2, 3)),
    "diff both, n=2": lambda x: np.sum(np.diff(x, n=2, prepend=0.5, append=x[:, -1:])
                                       * W.reshape(2, 3)),
    "diff traced scalar": lambda x: np.sum(np.diff(x, prepend=x[0, 0] * 3) * W.reshape(2, 3)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CASES)
def test_values_and_gradients(mode, name):
    f = CASES[name]
    value, grad = ad.value_and_grad(f, mode=mode)(X.copy())
    assert value == pytest.approx(f(X.copy()), rel=1e-13)
    np.testing.assert_allclose(grad, numerical_grad(f, [X], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", ["A", "K"])
def test_layout_orders_are_refused(mode, order):
    with pytest.raises(NotImplementedError, match=f"order='{order}'.*order='F'"):
        ad.grad(lambda x: np.sum(x.ravel(order) * W), mode=mode)(X.copy())


@pytest.mark.parametrize("mode", MODES)
def test_diff_argument_errors_are_numpys(mode):
    with pytest.raises(ValueError, match="non-negative"):
        ad.grad(lambda x: np.sum(np.diff(x, n=-1)), mode=mode)(X.copy())
    with pytest.raises(ValueError, match="at least one dimensional"):
        ad.grad(lambda x: np.diff(np.sum(x)), mode=mode)(X.copy())
