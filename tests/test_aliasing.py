"""numpy's aliasing under in-place assignment: copying operations give a new array, views
write through to their base and see its later writes -- in values and in gradients."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.numpy import ArrayOps
from autodiff_jit.trace import Tracer

from helpers import numerical_grad

TRACED = ["compiled", "interpret"]
MODES = TRACED + ["tape"]
COPIES = {
    "copy": lambda v: v.copy(),
    "np.copy": np.copy,
    "astype same dtype": lambda v: v.astype(v.dtype),
    "flatten": lambda v: v.flatten(),
    "+x": lambda v: +v,
    "np.positive": np.positive,
    "concatenate([x])": lambda v: np.concatenate([v]),
    "sum axis=()": lambda v: np.sum(v, axis=()),
    "x * 1 ": lambda v: v * 1.0,
}


@pytest.mark.parametrize("mode", TRACED)
@pytest.mark.parametrize("name", COPIES)
def test_writing_a_copy_leaves_the_original(mode, name):
    def f(x):
        y = COPIES[name](x)
        y[0] = 2.0
        return np.sum(x * y)
    x = np.array([1.0, 3.0])
    assert ad.jit(f, mode=mode)(x) == pytest.approx(f(x.copy()))
    # the example: d/dx sum(x * y) with y = copy of x, y[0] = 2 -> [2, 6]
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x), [2.0, 6.0])


@pytest.mark.parametrize("mode", MODES)
def test_copy_method_in_every_mode(mode):
    def f(x):
        y = x.copy()
        y[0] = 2.0
        return np.sum(x * y)
    np.testing.assert_allclose(ad.grad(f, mode=mode)(np.array([1.0, 3.0])), [2.0, 6.0])


def _views(x):
    y = x[1:]              # a view: writes land in x
    y[0] = 7.0
    x[3] = x[3] * 10.0     # a later write to x is seen through y
    z = y[::2]             # a view of a view
    z[:] = z * 3.0
    w = x.reshape(2, 3)    # reshape of a contiguous array: a view
    w[1, 1] = -1.0
    t = x.reshape(2, 3).T  # transpose: a view, not contiguous...
    u = t.reshape(-1)      # ...so numpy's reshape of it is a copy
    u[0] = 99.0
    s = x[np.array([0, 2])]  # an advanced index: a copy
    s[0] = 50.0
    return x * 1.0, y * 1.0, z * 1.0, u * 1.0, s * 1.0


@pytest.mark.parametrize("mode", TRACED)
def test_views_write_through_as_in_numpy(mode):
    x = np.arange(1.0, 7.0)
    want = _views(x.copy())
    got = ad.jit(_views, mode=mode)(x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("mode", TRACED)
def test_gradient_through_a_view_write(mode):
    def f(x):
        y = x[1:]
        y[0] = x[0] ** 2       # x[1] = x[0]**2
        v = x.T                # a view of a 1-d array
        v[2] = np.sin(x[1])
        return np.sum(x * x) + np.sum(y)
    x = np.array([0.7, 2.0, 3.0, -1.5])
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x), numerical_grad(f, [x], 0),
                               rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", TRACED)
def test_broadcast_view_is_read_only(mode):
    def f(x):
        y = np.broadcast_to(x, (2, 3))
        y[0, 0] = 1.0
        return y
    with pytest.raises(ValueError, match="read-only"):
        f(np.zeros(3))
    with pytest.raises(ValueError, match="read-only"):
        ad.jit(f, mode=mode)(np.zeros(3))


SHARED = {   # numpy hands back the argument itself (or a view of it): writes reach x
    "x.astype(copy=False)": lambda v: v.astype(v.dtype, copy=False),
    "np.astype(copy=False)": lambda v: np.astype(v, v.dtype, copy=False),
    "np.array(copy=False)": lambda v: np.array(v, copy=False),
    "np.array(copy=None)": lambda v: np.array(v, copy=None),
    "np.array(ndmin=2, copy=None)": lambda v: np.array(v, ndmin=2, copy=None)[0],
    "np.asarray": lambda v: np.asarray(v),
}
COPIED = {   # and these copy: writes leave x alone
    "np.astype": lambda v: np.astype(v, v.dtype),
    "np.array": lambda v: np.array(v),
    "np.array(ndmin=2)": lambda v: np.array(v, ndmin=2)[0],
    "np.asarray(copy=True)": lambda v: np.asarray(v, copy=True),
    "x.astype(float32, copy=False)": lambda v: v.astype(np.float32, copy=False),
}


@pytest.mark.parametrize("mode", TRACED)
@pytest.mark.parametrize("name", sorted(SHARED) + sorted(COPIED))
def test_copy_keyword_decides_sharing_as_in_numpy(mode, name):
    make = SHARED.get(name) or COPIED[name]

    def f(x):
        y = make(x)
        y[0] = 5.0
        return x * 1.0
    want = f(np.zeros(2))
    np.testing.assert_array_equal(want, [5.0, 0.0] if name in SHARED else [0.0, 0.0])
    np.testing.assert_array_equal(ad.jit(f, mode=mode)(np.zeros(2)), want)


def test_no_tracer_attribute_shadows_an_ndarray_name():
    # x.var() used to call the tracer's IR variable (`Tracer.var`): internal names are private
    public = {n for n in dir(np.ndarray) if not n.startswith("_")}
    assert not public & set(Tracer.__slots__)
    for n in public & set(vars(Tracer)):  # a method stays a method, an attribute an attribute
        assert callable(getattr(np.ndarray, n)) == callable(vars(Tracer)[n]), n


def test_every_ndarray_method_we_implement_is_callable_on_a_tracer():
    names = sorted(n for n in dir(np.ndarray) if not n.startswith("_")
                   and callable(getattr(np.ndarray, n)) and hasattr(ArrayOps, n))
    assert {"var", "std", "sum", "copy", "reshape"} <= set(names)
    seen = []

    def f(x):
        for n in names:
            assert callable(getattr(x, n)), n
            seen.append(n)
        return x.var() + x.std() + x.sum()
    x = np.array([[1.0, 2.0], [4.0, 8.0]])
    assert ad.jit(f)(x) == pytest.approx(x.var() + x.std() + x.sum())
    assert seen == names


def _inplace(x):
    z = x * 1.0
    alias = z              # another name for the same array
    y = z[1:]              # a view of it
    z += 1.0               # in place: alias and y see it
    y *= 2.0               # in place through the view: z sees it
    z[:2] += 10.0
    w = z.T
    w -= 0.5
    return z, alias * 1.0, y * 1.0


@pytest.mark.parametrize("mode", TRACED)
def test_augmented_assignment_is_in_place(mode):
    x = np.arange(4.0)
    for got, want in zip(ad.jit(_inplace, mode=mode)(x), _inplace(x.copy())):
        np.testing.assert_array_equal(got, want)
    f = lambda x: sum(np.sum(v ** 2) for v in _inplace(x))  # noqa: E731
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x), numerical_grad(f, [x], 0), rtol=1e-7)


@pytest.mark.parametrize("mode", TRACED)
def test_augmented_assignment_keeps_numpy_casting(mode):
    def f(x):
        i = np.arange(3) * (x[:3] > 0)
        i += x[0]          # float into int: numpy refuses (casting='same_kind')
        return i
    with pytest.raises(TypeError):
        f(np.ones(3))
    with pytest.raises(TypeError, match="same_kind"):
        ad.jit(f, mode=mode)(np.ones(3))


def _written_after_the_view(x):
    y = x * 1.0
    v = y[0]               # a view taken before each write below: it sees every one
    w = v[1:]
    t = y.T
    c = y[[0, 1]]          # an advanced index: a copy, it keeps the old value
    y[...] = y + x ** 2
    y[1, 1] = x[0, 0] ** 3
    y *= x
    t[2, 0] = np.sin(x[1, 2])
    return v, w, t, c, y


def _weighted(outputs):
    # one scalar of every output, each element weighted differently (a stale value shows)
    return sum(np.sum(o * np.arange(1.0, o.size + 1.0).reshape(o.shape) * (k + 1))
               for k, o in enumerate(outputs))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("program", [_views, _inplace, _written_after_the_view])
def test_views_see_later_writes_in_every_mode(mode, program):
    # tape mode used to give a view taken before a write into its base the old value
    x = (np.arange(1.0, 7.0) * 0.37 + 0.1).reshape(2, 3)
    if program is not _written_after_the_view:
        x = x.ravel()
    f = lambda x: _weighted(program(x))  # noqa: E731
    value, grad = ad.value_and_grad(f, mode=mode)(x.copy())
    assert value == pytest.approx(f(x.copy()), rel=1e-12)
    np.testing.assert_allclose(grad, numerical_grad(f, [x], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", TRACED)
def test_numpy_array_written_between_two_uses(mode):
    # the trace kept one constant per numpy array: the second use saw the first's values
    def f(x):
        m = np.ones(3)
        y = x * m
        m[1] = 5.0         # numpy: the next use sees 5, the one above keeps 1
        z = x * m
        m[2] = -2.0
        return np.sum(y + z) + np.sum(x * m)
    x = np.array([1.0, 2.0, 3.0])
    value, grad = ad.value_and_grad(f, mode=mode)(x)
    assert value == pytest.approx(f(x))
    np.testing.assert_allclose(grad, [3.0, 11.0, 0.0])


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_augmented_assignment_of_a_scalar_rebinds_it(mode):
    # numpy's x[0], np.sum(x), np.argmax(x) are scalars, which are immutable: s += v makes a
    # new value, other names keep the old one, and an int scalar += 1.5 becomes a float
    def f(x):
        s = x[0]
        z = s
        s += 1.0
        t = np.sum(x)
        u = t
        t *= 2.0
        i = np.argmax(x)
        j = i
        i += 1.5
        return z + 10 * s + 100 * u + 1000 * t + x[j] * i
    x = np.array([1.0, 2.0, 3.0])
    assert ad.jit(f, mode=mode)(x) == f(x.copy())
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x), [11.0 + 2100.0, 2100.0, 2100.0 + 3.5])
