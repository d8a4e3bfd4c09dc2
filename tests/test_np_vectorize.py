"""ad.vectorize: numpy's np.vectorize interface on vmap, for traced values and tape Tensors:
values against np.vectorize, gradients against central differences, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad

from helpers import check_grads

MODES = ("compiled", "interpret", "tape")
_r = np.random.default_rng(11)
X = _r.standard_normal((2, 3))
Y = _r.standard_normal((3,))
M = _r.standard_normal((4, 3))


def scalar_fn(a, b):
    return np.sin(a) * b + np.exp(-a * a)


CASES = {
    "broadcast": (lambda x, y: ad.vectorize(scalar_fn)(x, y),
                  lambda x, y: np.vectorize(scalar_fn)(x, y), [X, Y]),
    "keyword_vectorized": (lambda x, y: ad.vectorize(scalar_fn)(x, b=y),
                           lambda x, y: np.vectorize(scalar_fn)(x, b=y), [X, Y]),
    "excluded_position": (lambda x: ad.vectorize(lambda a, p: a ** p, excluded={1})(x, 3),
                          lambda x: np.vectorize(lambda a, p: a ** p, excluded={1})(x, 3), [X]),
    "excluded_name": (lambda x: ad.vectorize(lambda a, scale=1.0: a * scale[0],
                                             excluded={"scale"})(x, scale=[2.5]),
                      lambda x: np.vectorize(lambda a, scale=1.0: a * scale[0],
                                             excluded={"scale"})(x, scale=[2.5]), [X]),
    "signature_dot": (lambda m, y: ad.vectorize(np.dot, signature="(n),(n)->()")(m, y),
                      lambda m, y: np.vectorize(np.dot, signature="(n),(n)->()")(m, y), [M, Y]),
    "signature_outer_core": (lambda m: ad.vectorize(lambda v: np.cumsum(v * v),
                                                    signature="(n)->(n)")(m),
                             lambda m: np.vectorize(lambda v: np.cumsum(v * v),
                                                    signature="(n)->(n)")(m), [M]),
    "two_outputs": (lambda x: ad.vectorize(lambda a: (a * a, np.cos(a)))(x),
                    lambda x: np.vectorize(lambda a: (a * a, np.cos(a)))(x), [X]),
    "zero_d": (lambda x: ad.vectorize(scalar_fn)(x[0, 0], 2.0),
               lambda x: np.vectorize(scalar_fn)(x[0, 0], 2.0), [X]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_vectorize_value_and_gradient(name):
    ours, theirs, args = CASES[name]
    expected = theirs(*args)
    for mode in MODES:
        got = ad.jit(ours, mode=mode)(*args)
        for g, e in zip(got if isinstance(got, tuple) else [got],
                        expected if isinstance(expected, tuple) else [expected]):
            assert np.shape(g) == np.shape(e) and np.asarray(g).dtype == np.asarray(e).dtype
            # the same operations on the same float64 numbers: a few roundings apart at most
            np.testing.assert_allclose(g, e, rtol=1e-14, atol=1e-15, err_msg=mode)

    def scalar(*a):
        out = ours(*a)
        outs = out if isinstance(out, tuple) else (out,)
        return sum(np.sum(o * np.cos(np.arange(np.size(o)).reshape(np.shape(o)) + k))
                   for k, o in enumerate(outs))

    check_grads(scalar, args, modes=MODES)


def test_vectorize_on_plain_arrays_and_otypes():
    got = ad.vectorize(lambda a: (a, a > 0), otypes=[np.float32, bool])(X)
    assert got[0].dtype == np.float32 and got[1].dtype == np.bool_
    np.testing.assert_array_equal(got[1], X > 0)
    assert ad.vectorize(scalar_fn, doc="d").__doc__ == "d"


@pytest.mark.parametrize("bad, exc, match", [
    (lambda: ad.vectorize(np.dot, signature="(n),(n)")(M, Y), ValueError, "signature"),
    (lambda: ad.vectorize(np.dot, signature="(n),(n)->()")(M, Y[:2]), ValueError,
     "core dimension"),
    (lambda: ad.vectorize(np.dot, signature="(n),(n)->()")(M), TypeError, "positional"),
    (lambda: ad.vectorize(np.sin)(np.zeros((0, 2))), NotImplementedError, "size-0"),
    (lambda: ad.vectorize(3), TypeError, "function"),
    (lambda: ad.vectorize(lambda a: a, otypes="ff")(X), ValueError, "otypes"),
])
def test_vectorize_errors(bad, exc, match):
    with pytest.raises(exc, match=match):
        bad()


def test_vectorize_on_a_tape_tensor_backward():
    x = ad.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    y = ad.vectorize(lambda a: np.sin(a) * a)(x)
    assert isinstance(y, ad.Tensor)
    y.sum().backward()
    v = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(v) * v + np.sin(v), rtol=1e-14)


# numpy's own np.vectorize objects, made outside any trace (as a decorator at import time):
# while grad/jit trace a function, their call on traced values goes to ad.vectorize
@np.vectorize
def ramp(a):
    if a > 0:           # a Python `if` on the element: rewritten as in grad
        return a * a
    return 0.5 * a


NP_VECTORIZED = {
    "decorator_with_if": lambda x: ramp(x),
    "otypes": lambda x: np.vectorize(scalar_fn, otypes=[np.float64])(x, 2.0),
    "excluded": lambda x: np.vectorize(lambda a, p: a ** p, excluded={1})(x, 3),
    "signature": lambda m: np.vectorize(np.dot, signature="(n),(n)->()")(m, Y),
    "two_outputs": lambda x: np.vectorize(lambda a: (a * a, np.sin(a)))(x)[1],
}


@pytest.mark.parametrize("name", sorted(NP_VECTORIZED))
def test_numpy_vectorize_objects_on_traced_values(name):
    f = NP_VECTORIZED[name]
    arg = M if name == "signature" else X
    expected = f(arg)
    for mode in MODES:
        got = ad.jit(f, mode=mode)(arg)
        assert np.asarray(got).dtype == expected.dtype and np.shape(got) == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-15, err_msg=mode)
    check_grads(lambda a: np.sum(f(a) * np.cos(np.arange(np.size(expected)).reshape(
        expected.shape))), [arg], modes=MODES)
    assert np.vectorize.__call__.__module__.startswith("numpy")  # numpy's again after the trace


def test_numpy_vectorize_of_constants_inside_a_trace_is_numpys():
    calls = []

    def counted(a):
        calls.append(a)
        return a + 1.0

    vf = np.vectorize(counted)
    out = ad.jit(lambda x: x * vf(np.array([1.0, 2.0])))(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(out, [6.0, 12.0])
    assert all(isinstance(c, float) for c in calls)   # numpy called it on Python floats
