"""numpy's functions that write into their first argument, as statements on a local numpy
array (`y = np.zeros(5); np.add.at(y, i, x)`, np.put, np.put_along_axis, np.putmask,
np.place, np.copyto, np.fill_diagonal, `f(..., out=y)`), inside grad/jit (issue #12): the
source rewrite replaces y by a traced copy where nothing else can see it (convert/writes.py,
as for `y[k] = v`), refuses with the fix where something can, and leaves numpy's in-place
write alone where nothing is traced."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.errors import TracingError

from helpers import numerical_grad

MODES = ("compiled", "interpret", "tape")
X = np.array([0.7, -1.3, 2.1, 0.4, 1.6])
MASK = np.array([True, False, True, True, False])


def add_at_repeated(x):
    y = np.zeros(5)
    np.add.at(y, [0, 1, 1, 4, 1], x)          # index 1 three times: all three are added
    return np.sum(y ** 2 * np.arange(1.0, 6.0))


def add_at_scalar_and_2d(x):
    m = np.ones((2, 3))
    np.add.at(m, ([0, 1, 1], [2, 0, 0]), x[:3])
    np.add.at(m, (0, [1, 1]), x[3] * x[4])     # a traced scalar, broadcast, repeated
    return np.sum(np.sin(m))


def subtract_and_multiply_at(x):
    y = np.ones(4)
    np.subtract.at(y, [3, 3, 0], x[:3])
    np.multiply.at(y, [1, 1, 2], x[2:5])       # y[1] = x2 * x3: applied once per index
    return np.sum(y * np.arange(1.0, 5.0))


def maximum_minimum_at(x):
    y = np.full(3, 0.5)
    np.maximum.at(y, [0, 0, 1], x[:3])         # no ties at X
    np.minimum.at(y, [2, 2], x[3:5])
    return np.sum(y * np.array([1.0, 2.0, 3.0]))


def put_last_wins(x):
    y = np.zeros(5)
    np.put(y, [0, 3, 3], x[:3])                # index 3 twice: the last value stays
    return np.sum(y ** 2 * np.arange(1.0, 6.0))


def put_along_axis_rows(x):
    m = np.zeros((2, 3))
    np.put_along_axis(m, np.array([[2], [0]]), x[:2, None], axis=1)
    return np.sum(m * np.arange(6.0).reshape(2, 3)) + np.sum(m ** 3)


def putmask_and_place(x):
    y = np.zeros(5)
    np.putmask(y, MASK, x ** 2)                # y.flat[i] = v.flat[i] where the mask is True
    z = np.ones(5)
    np.place(z, MASK, x[:2])                   # the True slots take x0, x1, x0 in turn
    return np.sum(y * z)


def putmask_at_a_traced_mask(x):
    y = np.zeros(5)
    np.putmask(y, x > 1.0, 3.0)                # constant value, traced mask: y is traced too
    return np.sum(y * x)


def copyto_where(x):
    y = np.full(5, 2.0)
    np.copyto(y, x * 3.0, where=MASK)
    return np.sum(y ** 2)


def copyto_at_a_traced_where(x):
    y = np.full(5, 2.0)
    np.copyto(y, x ** 2, where=x < 1.0)
    return np.sum(y * x)


def fill_diagonal_values(x):
    m = np.ones((3, 3))
    np.fill_diagonal(m, x[:3])
    return np.linalg.det(m)


def fill_diagonal_scalar(x):
    m = np.eye(3) * 0.5
    np.fill_diagonal(m, x[0] * x[1])
    return np.sum(m ** 2) + m[0, 0]


def out_keyword(x):
    y = np.zeros(5)
    np.multiply(x, 2.0, out=y)
    np.add(y, x ** 2, out=y)                   # y is also an input: it reads the old values
    np.negative(y, out=y)      # (sin would need its overwritten input: tape mode's error)
    return np.sum(y * x)


def out_reads_the_numpy_array(x):
    y = np.full(5, 1.5)
    np.add(y, x, out=y)                        # y is numpy here: an input and the output
    return np.sum(y ** 2)


def fill_and_put_methods(x):
    y = np.zeros(5)
    y.fill(x[0] * x[1])
    y.put([1, 3, 3], x[2:])
    return np.sum(y ** 2 * np.arange(1.0, 6.0))


def list_of_traced_values(x):
    y = np.zeros(3)
    np.add.at(y, [0, 2, 0], [x[0] * x[1], x[2], x[3]])
    return np.sum(y ** 2)


def in_a_python_loop(x):
    y = np.zeros(5)
    for i in range(4):
        np.add.at(y, [i, i + 1], x[i] * (i + 1))
    return np.sum(y ** 2)


def _scatter(idx, v):
    out = np.zeros(4)
    np.add.at(out, idx, v)
    return out


def through_a_helper(x):
    return np.sum(_scatter([0, 0, 3], x[:3]) * x[1:])


CASES = [add_at_repeated, add_at_scalar_and_2d, subtract_and_multiply_at, maximum_minimum_at,
         put_last_wins, put_along_axis_rows, putmask_and_place, putmask_at_a_traced_mask,
         copyto_where, copyto_at_a_traced_where, fill_diagonal_values, fill_diagonal_scalar,
         out_keyword, out_reads_the_numpy_array, fill_and_put_methods, list_of_traced_values,
         in_a_python_loop, through_a_helper]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_numpy_writers_into_a_fresh_numpy_array_are_differentiated(f, mode):
    value, grad = ad.value_and_grad(f, mode=mode)(X)
    np.testing.assert_allclose(value, f(X.copy()), rtol=1e-13)
    np.testing.assert_allclose(grad, numerical_grad(f, (X,), 0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_the_issues_example(mode):
    def f(x):
        y = np.zeros(5)
        np.add.at(y, [0, 1, 1], x)
        return np.sum(y ** 2)
    x = np.array([1.0, 2.0, 3.0])
    # y = [x0, x1 + x2, 0, 0, 0]: d/dx = [2 x0, 2 (x1 + x2), 2 (x1 + x2)]
    np.testing.assert_array_equal(ad.grad(f, mode=mode)(x), [2.0, 10.0, 10.0])
    np.testing.assert_array_equal(ad.jit(lambda x: f(x) * 1.0, mode=mode)(x), f(x))


@pytest.mark.parametrize("mode", MODES)
def test_the_array_keeps_its_dtype_and_other_values(mode):
    def f(x):
        y = np.full(4, -0.0, np.float32)
        np.add.at(y, [1, 1], x[0])
        np.put(y, [2], np.inf)
        return y
    got = ad.jit(f, mode=mode)(np.array([2.5]))
    want = f(np.array([2.5]))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[0]) and np.signbit(got[3])


@pytest.mark.parametrize("mode", MODES)
def test_with_nothing_traced_numpy_writes_in_place(mode):
    seen = {}

    def f(x):
        y = np.zeros(5)
        z, r = y, y[1:3]                       # other names and views see numpy's write
        np.add.at(y, [1, 1, 4], 2.0)
        np.put(y, [0], 7.0)
        np.copyto(r, 3.0, where=np.array([False, True]))
        np.multiply(y, 2.0, out=y)
        r.put([0], r[0] + 1.0)
        seen.update(y=y, z=z, r=r)
        return x @ z + float(r[0])             # still concrete: float() works
    g = ad.grad(f, mode=mode)(X)
    want = np.array([14.0, 9.0, 6.0, 0.0, 4.0])
    assert type(seen["y"]) is np.ndarray and seen["y"] is seen["z"]
    np.testing.assert_array_equal(seen["z"], want)
    np.testing.assert_array_equal(seen["r"], want[1:3])
    np.testing.assert_array_equal(g, want)


def alias_name(x):
    y = np.zeros(5)
    z = y
    np.add.at(y, [0, 1], x[:2])
    return np.sum(z) + y[0]


def view_before(x):
    y = np.zeros(5)
    r = y[:2]
    np.put(y, [0], x[0])
    return np.sum(r) + np.sum(y)


def held_by_list(x):
    y = np.zeros(5)
    keep = [y]
    np.copyto(y, x)
    return np.sum(keep[0]) + y[0]


def view_of_a_buffer(x):
    y = np.zeros(8)[:5]
    np.putmask(y, MASK, x)
    return np.sum(y)


def out_seen_elsewhere(x):
    y = np.zeros(5)
    z = y
    np.multiply(x, 2.0, out=y)
    return np.sum(z)


def view_in_a_loop(x):
    y = np.zeros(5)
    for i in range(2):
        r = y[:1]
        np.add.at(y, [i], x[i])
    return np.sum(r) + np.sum(y)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [alias_name, view_before, held_by_list, view_of_a_buffer,
                               out_seen_elsewhere, view_in_a_loop], ids=lambda f: f.__name__)
def test_arrays_seen_elsewhere_are_refused_not_answered_wrong(f, mode):
    # numpy would update every other reference too; a traced copy cannot
    with pytest.raises(TracingError, match=r"np\.\w+(\.at)?\(.*\) writes a traced value into "
                                           r"a numpy array.*np\.zeros_like") as info:
        ad.grad(f, mode=mode)(X)
    if mode != "tape":  # tape mode raises from the user's line itself
        assert "test_writes_by_numpy_calls.py" in str(info.value)


BUFFER = np.zeros(5)


def into_a_global(x):
    np.add.at(BUFFER, [0, 1], x[:2])
    return np.sum(BUFFER)


class _Holder:
    def __init__(self):
        self.buf = np.zeros(5)

    def __call__(self, x):
        np.put(self.buf, [0, 1], x[:2])        # an attribute: not a local name
        return np.sum(self.buf)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", [lambda: into_a_global, _Holder], ids=["global", "attribute"])
def test_arrays_the_rewrite_does_not_reach_are_refused_with_the_fix(make, mode):
    with pytest.raises((TypeError, NotImplementedError),
                       match=r"writes into its first argument, a numpy array here.*local"
                             r".*np\.zeros_like"):
        ad.grad(make(), mode=mode)(X)
    np.testing.assert_array_equal(BUFFER, 0.0)


def test_the_reference_counts_of_write_calls_were_measured_on_this_python():
    from autodiff_jit.convert import writes
    assert writes._CALL_BODIES_COUNTED
    assert writes._CALL_BASE_REFS >= 2


def test_conversion_off_refuses_with_the_fix():
    with pytest.raises(TypeError, match="conversion is off"):
        ad.grad(add_at_repeated, convert=False)(X)


def method_seen_elsewhere(x):
    y = np.zeros(5)
    keep = (y,)
    y.fill(x[0])
    return np.sum(keep[0]) + np.sum(y)


@pytest.mark.parametrize("mode", MODES)
def test_a_method_write_into_an_array_seen_elsewhere_is_refused(mode):
    with pytest.raises(TracingError, match=r"y\.fill\(\.\.\.\) writes a traced value into a "
                                           r"numpy array.*np\.zeros_like"):
        ad.grad(method_seen_elsewhere, mode=mode)(X)


def test_only_numpys_writers_are_treated_as_writers():
    # a user's function named like one is called (and converted) as any other call
    calls = []

    def put(y, v):
        calls.append(type(y))
        return None
    np.testing.assert_array_equal(
        ad.grad(lambda x: _calls_put(put, x))(X), np.ones(5))
    assert calls == [np.ndarray]


def _calls_put(put, x):
    y = np.zeros(3)
    put(y, x)
    return np.sum(x) + np.sum(y)


# ---------------------------------------------------------------------------------------------
# inside `if`s and loops whose condition is traced: the written array is carried through the
# branch or loop as `y[k] = v` is (tests/test_writes_in_branches.py)

# each point takes a different branch of the functions below (none on a branch boundary)
POINTS = [np.array([0.5, 1.2, -0.7, 0.9]), np.array([-0.4, 0.8, 1.3, -1.1])]


def branch_traced_values(x):
    y = np.zeros(4)
    if x[0] > 0:
        np.add.at(y, [0, 1, 1], x[1:])
    else:
        np.put(y, [2, 2], x[:2])
    return np.sum(y * x)


def branch_plain_values(x):
    y = np.ones(4)
    if x[0] > 0:
        np.add.at(y, [2, 2], 1.5)              # constants into the array from before the `if`
        np.multiply(y, 2.0, out=y)
    else:
        np.copyto(y, 3.0, where=np.array([True, False, False, True]))
    return np.sum(y * x)


def branch_one_side_and_masks(x):
    y = np.zeros(4)
    if x[1] > 1.0:
        np.putmask(y, x > 0.6, x ** 2)         # a traced mask inside a traced branch
    return np.sum(y * x) + y[0]


def branch_fill_diagonal(x):
    m = np.ones((2, 2))
    if x[0] > 0:
        np.fill_diagonal(m, x[1] * x[2])
    else:
        np.fill_diagonal(m, 2.0)
    return np.sum(m * x.reshape(2, 2))


def traced_for(x):
    y = np.zeros(4)
    n = np.argmax(x) + 1                       # a traced range bound
    for i in range(n):
        np.add.at(y, [0, 0, 3], x[1:] * 0.5)
        np.multiply(y, 0.9, out=y)
    return np.sum(y * x)


def traced_while(x):
    y = np.full(4, 0.25)
    i = 0
    while i < x[1] * 3:                        # a traced test
        np.add(y, x, out=y)
        np.maximum.at(y, [1, 1], 0.5)
        i += 1
    return np.sum(y * x)


def branch_in_a_loop(x):
    y = np.zeros(4)
    for k in range(2):
        if x[k] > 0:
            np.subtract.at(y, [k, k + 1], x[2:] * x[k])
        else:
            np.copyto(y, x * x[k])
    return np.sum(y * x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [branch_traced_values, branch_plain_values,
                               branch_one_side_and_masks, branch_fill_diagonal, traced_for,
                               traced_while,
                               branch_in_a_loop], ids=lambda f: f.__name__)
def test_writes_in_traced_branches_and_loops(f, mode):
    for x in POINTS:
        value, grad = ad.value_and_grad(f, mode=mode)(x)
        np.testing.assert_allclose(value, f(x.copy()), rtol=1e-13)
        np.testing.assert_allclose(grad, numerical_grad(f, (x,), 0), rtol=1e-6, atol=1e-8)


def branch_write_seen_elsewhere(x):
    y = np.zeros(4)
    z = y
    if x[0] > 0:
        np.add.at(y, [0], 1.0)                 # a constant: z would have to see it on one path
    return np.sum(y * x) + np.sum(z)


def loop_write_seen_elsewhere(x):
    y = np.zeros(4)
    z = y
    i = 0
    while i < x[1] * 3:
        np.put(y, [0], x[0])
        i += 1
    return np.sum(y * x) + np.sum(z)


@pytest.mark.parametrize("mode", ("compiled", "interpret"))   # tape mode runs them in Python
@pytest.mark.parametrize("f", [branch_write_seen_elsewhere, loop_write_seen_elsewhere],
                         ids=lambda f: f.__name__)
def test_writes_in_traced_branches_into_arrays_seen_elsewhere_are_refused(f, mode):
    with pytest.raises(TracingError, match=r"(np\.\w+(\.at)?\(y, \.\.\.\)|y\[key\]).*numpy "
                                           r"array.*np\.zeros_like"):
        ad.grad(f, mode=mode)(POINTS[0])


@pytest.mark.parametrize("mode", ("compiled", "interpret"))
def test_a_write_in_a_traced_branch_names_the_branch(mode):
    with pytest.raises(TracingError, match=r"np\.add\.at\(y, \.\.\.\), in a branch of an `if` "
                                           r"whose condition is traced, writes into a numpy "
                                           r"array from before it"):
        ad.grad(branch_write_seen_elsewhere, mode=mode)(POINTS[0])


class _Bag:
    def __init__(self):
        self.items = []

    def put(self, v):                          # named as ndarray.put: called as any method
        self.items.append(v * 2.0)


def _uses_a_bag(x):
    bag = _Bag()
    bag.put(x[0])
    return bag.items[0] + np.sum(x[1:])


@pytest.mark.parametrize("mode", MODES)
def test_a_users_method_named_like_a_writer_is_called_as_written(mode):
    np.testing.assert_array_equal(ad.grad(_uses_a_bag, mode=mode)(X), [2.0, 1, 1, 1, 1])


def test_the_rewrite_of_writer_statements():
    import ast
    import textwrap
    from autodiff_jit.convert.transformer import convert_function_def, convert_writes_def
    src = textwrap.dedent('''
        def f(x, idx):
            y = np.zeros(3)
            np.add.at(y, idx, x)
            np.put(G, idx, x)
            y.put(idx, x)
            np.multiply(x, 2.0, out=y)
            r = np.multiply(x, 2.0, out=y)
            return y
    ''')
    fn = ast.parse(src).body[0]
    text = ast.unparse(convert_function_def(fn, "f.py"))
    assert "y = __ad.write_call(np.add.at, y, __ad.call, idx, x)" in text
    assert "__ad.call(np.put, G, idx, x)" in text                  # G: not the function's own
    assert "y = __ad.write_method('put', y, __ad.call, idx, x)" in text
    assert "y = __ad.write_out(np.multiply, y, __ad.call, x, 2.0)" in text
    assert "r = __ad.call(np.multiply, x, 2.0, out=y)" in text     # not a statement of its own
    text = ast.unparse(convert_writes_def(fn, lambda name: False, lambda name: name == "np"))
    assert "y = __ad.write_call(np.add.at, y, __ad.call_writes, idx, x)" in text
    assert "np.put(G, idx, x)" in text
