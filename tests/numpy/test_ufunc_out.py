"""Ufuncs with out=: numpy writes the result into `out` and returns it; a traced `out` (or a
tape Tensor) takes it as out[...] = result, in values, views and gradients, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad

from helpers import numerical_grad

MODES = ["compiled", "interpret", "tape"]
X = np.array([[0.31, 1.73, 2.41], [3.62, 4.17, 5.89]])
W = np.arange(1.0, 7.0).reshape(2, 3)


def _returns_out(x):
    y = np.empty_like(x)
    r = np.multiply(x, 2.0, out=y)
    assert r is y
    return np.sum(y * W)


def _into_an_input_seen_by_a_view(x):
    y = x * 1.0
    v = y[0]                   # a view of y: it sees the write
    np.add(y, x ** 2, out=y)   # reads the old y, as numpy's loop does
    return np.sum(y * W) + np.sum(v * W[1])


def _where_keeps_old_values(x):
    y = np.full_like(x, 0.5) * x
    np.exp(x, out=y, where=x > 2.0)
    return np.sum(y * W)


def _two_outputs(x):
    q, r = np.empty_like(x), np.empty_like(x)
    a, b = np.divmod(x, 1.5, out=(q, r))
    assert a is q and b is r
    return np.sum(b * W) + np.sum(a)


def _one_of_two_outputs(x):
    q = np.empty_like(x)
    a, b = np.divmod(x, 1.5, out=(q, None))
    assert a is q
    return np.sum(b * W) + np.sum(a * W)


def _into_a_view(x):
    y = x * 1.0
    np.sin(x[1], out=y[0])
    return np.sum(y * W)


def _out_broadcasts_inputs(x):
    y = np.zeros_like(x)
    np.multiply(x[0], 3.0, out=y)   # (3,) into (2, 3): numpy broadcasts to out's shape
    return np.sum(y * W)


def _float32_out(x):
    y = np.zeros_like(x, dtype=np.float32)
    np.multiply(x, 3.0, out=y)      # float64 result, same kind: cast to float32
    return np.sum(y.astype(np.float64) * W)


PROGRAMS = [_returns_out, _into_an_input_seen_by_a_view, _where_keeps_old_values, _two_outputs,
            _one_of_two_outputs, _into_a_view, _out_broadcasts_inputs]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", PROGRAMS, ids=lambda f: f.__name__)
def test_out_values_and_gradients(mode, f):
    value, grad = ad.value_and_grad(f, mode=mode)(X.copy())
    assert value == pytest.approx(f(X.copy()), rel=1e-13)
    np.testing.assert_allclose(grad, numerical_grad(f, [X], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
def test_float32_out_is_cast_as_in_numpy(mode):
    value, grad = ad.value_and_grad(_float32_out, mode=mode)(X.copy())
    assert value == _float32_out(X.copy())   # the same float32 roundings
    np.testing.assert_allclose(grad, 3.0 * W)


@pytest.mark.parametrize("mode", MODES)
def test_out_that_cannot_take_the_dtype_raises_numpy_error(mode):
    def f(x):
        y = np.zeros_like(x, dtype=np.int64)
        np.multiply(x, 3.0, out=y)
        return np.sum(y)
    with pytest.raises(TypeError, match="same_kind"):
        f(X.copy())
    with pytest.raises(TypeError, match=r"Cannot cast ufunc 'multiply' output .*same_kind"):
        ad.grad(f, mode=mode)(X.copy())


@pytest.mark.parametrize("mode", MODES)
def test_numpy_array_out_for_a_traced_result_is_refused(mode):
    def f(x):
        y = np.empty(x.shape)
        r = np.sin(x, out=y)   # not a statement of its own: y is not rebound (writes.py)
        return np.sum(r)
    with pytest.raises(NotImplementedError, match=r"np\.sin\(\.\.\., out=a numpy array\).*"
                                                  r"np\.empty_like"):
        ad.grad(f, mode=mode)(X.copy())


@pytest.mark.parametrize("mode", MODES)
def test_numpy_array_out_as_a_statement_becomes_traced(mode):
    def f(x):
        y = np.empty(x.shape)  # the function's own array: the rewrite makes it traced
        np.sin(x, out=y)
        return np.sum(y * W)
    np.testing.assert_allclose(ad.grad(f, mode=mode)(X.copy()), np.cos(X) * W, rtol=1e-15)
