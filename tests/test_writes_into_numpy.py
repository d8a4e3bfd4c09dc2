"""`y = np.zeros(n); y[i] = traced` inside grad/jit: the source rewrite turns the numpy array
into a traced one where nothing else can see it (convert/writes.py), and refuses clearly where
something can (a view, another name, a container, a global)."""
import types

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.convert import writes
from autodiff_jit.errors import TracingError

from helpers import numerical_grad

X = np.linspace(0.3, 2.1, 6)
MODES = ("compiled", "interpret", "tape")


def straight(x):
    y = np.zeros(4)
    y[0] = x[0]
    y[1:3] = x[1:3] ** 2
    y[3] += x[5] * 2
    return np.sum(y * y)


def vector_field(x):
    v = np.empty(2)
    v[0] = x[1]
    v[1] = -x[0]
    return v @ v + np.sum(x)


def loop(x):
    out = np.zeros(3)
    for i in range(3):
        out[i] = np.sin(x[i]) * i
    return np.sum(out ** 2)


def nested_loops(x):
    m = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            m[i, j] = x[i] * x[j] + (i == j)
    return np.linalg.slogdet(m)[1]


def plain_branch(x):
    y = np.zeros(3)
    if x.shape[0] > 2:
        y[2] = x[2] ** 3
    return np.sum(y) + x[0]


def two_dims_and_aug(x):
    y = np.ones((2, 2))
    y[0, :] = x[:2]
    y[:, 1] *= x[3]
    return np.linalg.det(y)


def list_value(x):
    y = np.zeros(3)
    y[:2] = [x[0] * x[1], x[2]]
    return np.sum(y ** 2)


def int_array(x):
    y = np.zeros(3, dtype=np.int64)
    y[0] = x[0] * 3            # cast to int as numpy does: no gradient through it
    return np.sum(y) * x[1]


def _rhs(x):
    v = np.zeros(2)
    v[0] = x[1]
    v[1] = -x[0] * x[1]
    return v


def through_a_helper(x):
    # compiled mode converts the helpers it calls; tape mode rewrites calls of the user's own
    # functions by name
    return np.sum(_rhs(x[:2]) ** 2 * x[2:4])


def aug_at_traced_index(x):
    y = np.zeros(6)
    y[np.argmax(x)] += x[0] * 2      # numpy could not even read y at a traced index
    return np.sum(y * x)


def aug_at_masks(x):
    y = x * 1.0
    v = y[1:]                               # a view: sees the writes
    y[x > 0.5] *= 3.0                       # a scalar
    y[x < 0.8] += x[0]                      # a traced scalar
    return np.sum(y * np.cos(np.arange(6.0))) + np.sum(v ** 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [straight, vector_field, loop, nested_loops, plain_branch,
                               two_dims_and_aug, list_value, int_array, through_a_helper,
                               aug_at_traced_index, aug_at_masks], ids=lambda f: f.__name__)
def test_writes_into_a_fresh_numpy_array_are_differentiated(f, mode):
    value, grad = ad.value_and_grad(f, mode=mode)(X)
    np.testing.assert_allclose(value, f(X), rtol=1e-13)
    np.testing.assert_allclose(grad, numerical_grad(f, (X,), 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_the_array_keeps_its_other_values_and_dtype(mode):
    def f(x):
        y = np.full(4, -0.0, np.float32)
        y[1] = x[0]
        y[2] = np.inf
        return y
    got = ad.jit(f, mode=mode)(np.array([2.5]))
    want = f(np.array([2.5]))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[0]) and np.signbit(got[3])


def test_constant_writes_leave_a_numpy_array():
    seen = []

    def f(x):
        w = np.zeros(3)
        w[0] = 1.0
        for i in range(3):
            w[i] += i
        seen.append(type(w))
        return x @ w + float(w[2])      # still concrete: float() works
    np.testing.assert_allclose(ad.grad(f)(X[:3]), [1.0, 1.0, 2.0])
    assert seen[-1] is np.ndarray


def view_before(x):
    y = np.zeros(4)
    r = y[:2]
    y[0] = x[0]
    return np.sum(r) + np.sum(y)


def alias_name(x):
    y = np.zeros(3)
    z = y
    y[0] = x[0]
    return np.sum(z) + y[0]


def held_by_list(x):
    y = np.zeros(3)
    keep = [y]
    y[0] = x[0]
    return np.sum(keep[0]) + y[0]


def view_in_loop(x):
    y = np.zeros(3)
    for i in range(2):
        r = y[:1]
        y[i] = x[i]
    return np.sum(r) + np.sum(y)


def view_made_in_earlier_iteration(x):
    y = np.zeros(3)
    for i in range(2):
        if i == 0:
            y = np.zeros(3)
            r = y[:1]
        else:
            y[0] = x[0]
    return np.sum(r) + np.sum(y)


def view_of_a_buffer(x):
    y = np.zeros(8)[:4]
    y[0] = x[0]
    return np.sum(y)


BUFFER = np.zeros(3)


def into_a_global(x):
    BUFFER[0] = x[0]
    return np.sum(BUFFER)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [view_before, alias_name, held_by_list, view_in_loop,
                               view_made_in_earlier_iteration, view_of_a_buffer, into_a_global],
                         ids=lambda f: f.__name__)
def test_arrays_seen_elsewhere_are_refused_not_answered_wrong(f, mode):
    # numpy would update every other reference too; a traced copy cannot
    with pytest.raises(TracingError, match=r"y\[key\] = v writes a traced value into a numpy "
                                           r"array.*np.zeros_like") as info:
        ad.grad(f, mode=mode)(X)
    if mode != "tape":  # tape mode raises from the user's line itself
        assert "test_writes_into_numpy.py" in str(info.value)


def test_the_reference_counts_were_measured_on_this_python():
    # calibrated at import; if a Python version holds other references in loop bodies, writes
    # there are refused (and this test names it) rather than risked
    assert writes._BODIES_COUNTED
    assert writes._BASE_REFS >= 2


def test_conversion_off_gives_the_explanation():
    with pytest.raises(TracingError, match="cannot hold one"):
        ad.grad(vector_field, convert=False)(X)


@pytest.mark.parametrize("mode", MODES)
def test_a_traced_key_makes_the_array_traced_too(mode):
    def f(x):
        y = np.zeros(6)
        y[x > 1.0] = 2.0                 # constant value, traced mask
        return np.sum(y * x)
    value, grad = ad.value_and_grad(f, mode=mode)(X)
    np.testing.assert_allclose(value, f(X), rtol=1e-13)
    np.testing.assert_array_equal(grad, np.where(X > 1.0, 2.0, 0.0))


@pytest.mark.parametrize("mode", MODES)
def test_augmented_writes_at_traced_masks_keep_numpys_rules(mode):
    def needs_count(x):
        y = x * 1.0
        y[x > 0.5] += x[:2]                 # numpy needs exactly count(x > 0.5) values
        return np.sum(y)

    def int_target(x):
        y = np.zeros(6, np.int64)
        y[x > 0.5] += 1.5                   # numpy's same_kind error
        return np.sum(y * x)
    if mode != "tape":  # tape mode knows the count
        with pytest.raises(NotImplementedError, match="does not depend on how many"):
            ad.grad(needs_count, mode=mode)(X)
    with pytest.raises(TypeError, match="Cannot cast ufunc"):
        ad.grad(int_target, mode=mode)(X)


# helpers called as attributes: `self.helper(x)`, `obj.method(x)`, `module.fn(x)` (tape mode
# rewrites them when they run: the object is not known before)

class _Model:
    def helper(self, x):
        y = np.zeros(2)
        y[0] = x[0]
        return y

    def __call__(self, x):
        return np.sum(self.helper(x) * x[:2])

    def method(self, x):
        return np.sum(self.helper(x) * x[:2])


_NAMESPACE = types.SimpleNamespace(rhs=_rhs)
_MODULE = types.ModuleType("user_helpers")
_MODULE.rhs = _rhs


def through_an_object_attribute(x):
    return np.sum(_NAMESPACE.rhs(x[:2]) ** 2 * x[2:4])


def through_a_module_attribute(x):
    return np.sum(_MODULE.rhs(x[:2]) ** 2 * x[2:4])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", [lambda: _Model(), lambda: _Model().method,
                                  lambda: through_an_object_attribute,
                                  lambda: through_a_module_attribute],
                         ids=["callable instance", "bound method", "object attribute",
                              "module attribute"])
def test_writes_in_helpers_called_as_attributes(make, mode):
    f = make()
    value, grad = ad.value_and_grad(f, mode=mode)(X)
    np.testing.assert_allclose(value, f(X), rtol=1e-13)
    np.testing.assert_allclose(grad, numerical_grad(f, (X,), 0), rtol=1e-6, atol=1e-8)
    if isinstance(f, _Model) or getattr(f, "__self__", None) is not None:
        np.testing.assert_array_equal(grad, [2 * X[0], 0, 0, 0, 0, 0])


def test_the_writes_only_rewrite_leaves_library_attribute_calls_alone():
    import ast
    import textwrap
    from autodiff_jit.convert.transformer import convert_writes_def
    src = textwrap.dedent('''
        def f(x, obj):
            a = np.linalg.norm(x) + np.sum(x)
            return obj.helper(x) + x.sum() + a
    ''')
    fn = convert_writes_def(ast.parse(src).body[0], lambda name: False,
                            lambda name: name == "np")
    text = ast.unparse(fn)
    assert "np.linalg.norm(x)" in text and "np.sum(x)" in text
    assert "__ad.writes_target(obj.helper)(x)" in text
    assert "__ad.writes_target(x.sum)()" in text
