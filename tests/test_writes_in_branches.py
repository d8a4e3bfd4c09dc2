"""Writes into arrays inside `if`/`while`/`for` on traced values (issue #12): the written array
is carried through the branch or loop like any other variable, and numpy's answer is kept --
values, dtypes, and what other names and views of the array see -- or the write is refused
with the fix, never answered wrong."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.errors import TracingError

from helpers import numerical_grad

MODES = ("compiled", "interpret", "tape")
TRACED = ("compiled", "interpret")
# each point takes a different branch of the functions below (none on a branch boundary)
POINTS = [np.array([0.5, 1.2, -0.7, 0.9]), np.array([-0.4, 0.8, 1.3, -1.1])]


def issue_example(x):
    y = np.zeros(3)
    if x[0] > 0:
        y[0] = x[1] * 2
    else:
        y[1] = x[2]
    return np.sum(y * x[:3])


def write_on_one_path(x):
    y = np.ones(4)
    if x[0] > 0:
        y[1:3] = x[1:3] ** 2
    return np.sum(y * x)


def plain_values_in_both(x):
    y = np.zeros(4)
    if x[0] > 0:
        y[0] = 1.0
        y[2] += 3.0
    else:
        y[1] = 2.0
    return np.sum(y * x)


def augmented_name(x):
    y = np.zeros(4)
    if x[1] > 1.0:
        y += 1.0
    else:
        y -= 2.0
    return np.sum(y * x)


def read_then_write(x):
    y = np.full(4, 0.5)
    if x[0] > 0:
        s = np.sum(y * x)       # a constant of the branch's trace, then a write
        y[0] = x[1] * s
    else:
        s = np.sum(y * x[3])    # the other branch read it too
        y[3] = s * x[2]
    return np.sum(y * x) + s


@pytest.mark.parametrize("mode", TRACED)  # tape mode: a Tensor op keeps y for its gradient,
@pytest.mark.parametrize("point", range(len(POINTS)))   # so a write after it is refused
def test_an_array_read_in_a_branch_can_be_written_after(point, mode):
    x = POINTS[point]
    value, grad = ad.value_and_grad(read_then_write, mode=mode)(x)
    np.testing.assert_allclose(value, read_then_write(x.copy()), rtol=1e-13)
    np.testing.assert_allclose(grad, numerical_grad(read_then_write, (x,), 0), rtol=1e-6,
                               atol=1e-8)


def nested(x):
    y = np.zeros(4)
    if x[0] > 0:
        if x[3] > 0:
            y[0] = x[1] ** 2
        else:
            y[1] = np.sin(x[2])
    else:
        y[2] = x[0] * x[3]
    return np.sum(y * x)


def in_a_static_loop(x):
    y = np.zeros(4)
    for i in range(4):
        if x[i] > 0:
            y[i] = x[i] ** 2
        else:
            y[i] = -x[i] * 3
    return np.sum(y * np.cos(x))


def traced_trip_count(x):
    n = np.argmax(x) + 1           # traced: the loop is one while op
    y = np.zeros(4)
    for i in range(n):
        y[i] = x[i] ** 2
    return np.sum(y * x)


def traced_while(x):
    y = np.zeros(4)
    i = 0
    while x[i] < 1.0 and i < 3:    # traced test
        y[i] = np.exp(x[i])
        i += 1
    return np.sum(y * x)


def traced_array_in_branch(x):
    y = x * 2.0
    if x[0] > 0:
        y[3] = x[1] * x[2]
    return np.sum(y ** 2)


def other_name_of_a_traced_array(x):
    y = x * 1.0
    z = y
    if x[0] > 0:
        y[0] = x[1] * 5.0
    else:
        y += x[2]
    return np.sum(z * x)           # z is y: it sees the writes, as in numpy


def view_of_a_traced_array(x):
    y = x * 1.0
    r = y[:2]
    if x[0] > 0:
        y[0] = x[1] * 5.0
        s = np.sum(r)              # the view sees the write inside the branch too
    else:
        r[1] = x[3]                # a write through the view reaches y
        s = y[1] * 2.0
    return np.sum(r * x[:2]) + np.sum(y) + s


def other_name_in_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = x * 1.0
    z = y
    r = y[1:]
    for i in range(n):
        y[i] = x[i] ** 2
    return np.sum(z) + np.sum(r * x[1:])


def traced_loop_in_a_branch(x):
    y = np.zeros(4)
    z = x * 1.0
    if x[1] > 1.0:
        n = np.argmax(x) + 1
        for i in range(n):
            y[i] = x[i] ** 2       # a numpy array from before the `if`
            z[i] = z[i] * y[i]     # a traced one
            z = z + 1.0            # ... then rebound: nothing else sees z
    return np.sum(y * x) + np.sum(z * x)


def branch_in_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = np.zeros(4)
    z = x * 1.0
    for i in range(n):
        if x[i] > 0.6:
            z[i] = y[i] + x[i] ** 3
            y[i] = z[i] * 2
    return np.sum(y * x) + np.sum(z)


FUNCTIONS = [traced_loop_in_a_branch, branch_in_a_traced_loop, issue_example, write_on_one_path, plain_values_in_both, augmented_name, nested, in_a_static_loop, traced_trip_count, traced_while,
             traced_array_in_branch, other_name_of_a_traced_array, view_of_a_traced_array,
             other_name_in_a_traced_loop]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("point", range(len(POINTS)))
@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
def test_values_and_gradients_are_numpys(f, point, mode):
    _agrees_with_numpy(f, mode, POINTS[point])


def _agrees_with_numpy(f, mode, x):
    """numpy's value (f run on a copy) and central differences' gradient."""
    value, grad = ad.value_and_grad(f, mode=mode)(x)
    np.testing.assert_allclose(value, f(x.copy()), rtol=1e-13)
    np.testing.assert_allclose(grad, numerical_grad(f, (x,), 0), rtol=1e-6, atol=1e-8)


def test_the_issues_gradient_is_the_analytic_one():
    # x0 > 0: sum(y * x) = 2 x1 x0 -> [2 x1, 2 x0, 0]; else x2 x1 -> [0, x2, x1]
    for mode in MODES:
        x = POINTS[0][:3]
        np.testing.assert_allclose(ad.grad(issue_example, mode=mode)(x),
                                   [2 * x[1], 2 * x[0], 0.0], rtol=1e-15)
        x = POINTS[1][:3]
        np.testing.assert_allclose(ad.grad(issue_example, mode=mode)(x),
                                   [0.0, x[2], x[1]], rtol=1e-15)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.float64])
def test_the_array_keeps_its_dtype_as_in_numpy(dtype, mode):
    def f(x):
        y = np.zeros(3, dtype)
        if x[0] > 0:
            y[0] = x[1] * 3        # a float into an int array: numpy casts, the array stays int
        else:
            y[1] = 7
        y[2] = -0.0 if dtype != np.int64 else 0
        return y
    for x in POINTS:
        got, want = ad.jit(f, mode=mode)(x), f(x)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_array_equal(got, want)
        assert np.signbit(got[2]) == np.signbit(want[2])


@pytest.mark.parametrize("mode", MODES)
def test_an_int_array_passes_no_gradient_through_its_cast(mode):
    def f(x):
        y = np.zeros(2, np.int64)
        if x[0] > 0:
            y[0] = x[1] * 3
        return np.sum(y) * x[2]
    for x in POINTS:
        np.testing.assert_array_equal(ad.grad(f, mode=mode)(x), [0.0, 0.0, np.sum(
            np.trunc([x[1] * 3]) if x[0] > 0 else 0.0), 0.0])


# numpy arrays that something else sees: numpy would change every reference; a traced copy
# cannot, so these are refused

def view_before_the_branch(x):
    y = np.zeros(3)
    r = y[:2]
    if x[0] > 0:
        y[0] = x[1]
    return np.sum(r) + np.sum(y)


def other_name_before_the_branch(x):
    y = np.zeros(3)
    z = y
    if x[0] > 0:
        y[0] = x[1]
    else:
        y[1] = x[2]
    return np.sum(z) + np.sum(y * x[:3])


def view_before_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = np.zeros(4)
    r = y[:2]
    for i in range(n):
        y[i] = x[i] ** 2
    return np.sum(r) + np.sum(y)


def other_name_before_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = np.zeros(4)
    z = y
    for i in range(n):
        y[i] = x[i] ** 2
    return np.sum(z) + np.sum(y)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [view_before_the_branch, other_name_before_the_branch,
                               view_before_a_traced_loop, other_name_before_a_traced_loop],
                         ids=lambda f: f.__name__)
def test_arrays_seen_elsewhere_are_refused(f, mode):
    for x in POINTS:
        if mode == "tape" and f is view_before_the_branch and x[0] <= 0:
            # tape mode runs the `if` in Python: on the path without a write, nothing to refuse
            np.testing.assert_allclose(ad.grad(f, mode=mode)(x), numerical_grad(f, (x,), 0))
            continue
        with pytest.raises(TracingError, match=r"y\[key\] = v .*numpy array.*another name|"
                                               r"y\[key\] = v .*numpy array.*a view") as info:
            ad.grad(f, mode=mode)(x)
        if mode != "tape":
            assert "test_writes_in_branches.py" in str(info.value)


def plain_write_seen_by_a_view(x):
    y = np.zeros(3)
    r = y[1:]
    if x[0] > 0:
        y[1] = 4.0
    return np.sum(r * x[:2])


def plain_augmented_write_seen_by_another_name(x):
    y = np.zeros(2)
    z = y
    if x[0] > 0:
        y += 1.0
    return np.sum(z * x[:2])


def _set_first(a):
    a[0] = 1.0                     # into the caller's array, as numpy does
    return a


def helper_writing_its_argument(x):
    y = np.zeros(3)
    if x[0] > 0:
        _set_first(y)
    return np.sum(y * x[:3])


@pytest.mark.parametrize("f", [plain_write_seen_by_a_view,
                               plain_augmented_write_seen_by_another_name,
                               helper_writing_its_argument],
                         ids=lambda f: f.__name__)
def test_plain_writes_under_a_traced_condition_seen_elsewhere(f):
    # tape mode runs the `if` in Python: numpy's own in-place write, seen by every reference
    for x in POINTS:
        np.testing.assert_allclose(ad.grad(f, mode="tape")(x), numerical_grad(f, (x,), 0),
                                   atol=1e-8)
        for mode in TRACED:   # both branches are traced on the one array: refused
            with pytest.raises(TracingError, match=r"in a branch of an `if` whose condition "
                                                   r"is traced, writes into a numpy array"):
                ad.grad(f, mode=mode)(x)


@pytest.mark.parametrize("mode", TRACED)
def test_the_array_from_before_the_branch_is_left_alone(mode):
    seen = []

    def f(x):
        y = np.zeros(3)
        if x[0] > 0:
            y[0] = 1.0
        else:
            y[1] = x[1]
        seen.append(y)
        return np.sum(y * x[:3])
    ad.grad(f, mode=mode)(POINTS[0])
    z = [a for a in seen if type(a) is np.ndarray]
    assert all(not a.any() for a in z)   # no branch changed the numpy array in place


def write_then_rebind_in_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = x * 1.0
    z = y
    for i in range(n):
        y[i] = x[i] ** 2           # z sees this on the first pass only
        y = y * 2
    return np.sum(z) + np.sum(y)


@pytest.mark.parametrize("mode", TRACED)
def test_a_traced_loop_writing_then_rebinding_an_array_others_see_is_refused(mode):
    np.testing.assert_allclose(
        ad.grad(write_then_rebind_in_a_traced_loop, mode="tape")(POINTS[0]),
        numerical_grad(write_then_rebind_in_a_traced_loop, (POINTS[0],), 0), rtol=1e-6)
    with pytest.raises(TracingError, match=r"changes the array 'y' in place .* then binds 'y' "
                                           r"to another array.*y = y.copy\(\)"):
        ad.grad(write_then_rebind_in_a_traced_loop, mode=mode)(POINTS[0])


def scalar_other_name_in_a_branch(x):
    s = x[0]                       # a numpy scalar: immutable, `s += v` binds a new one
    z = s
    if x[1] > 1.0:
        s += x[2]
    return z * s


def scalar_other_name_in_a_traced_loop(x):
    s = x[0]
    z = s
    n = np.argmax(x) + 1
    for i in range(n):
        s += x[i]
    return z * s


@pytest.mark.parametrize("mode", MODES)   # tape mode too: grad(f, mode="tape") runs numpy code
@pytest.mark.parametrize("f", [scalar_other_name_in_a_branch,
                               scalar_other_name_in_a_traced_loop], ids=lambda f: f.__name__)
def test_a_traced_scalar_changed_in_place_leaves_its_other_names(f, mode):
    for x in POINTS:
        _agrees_with_numpy(f, mode, x)


def view_read_inside_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = x * 1.0
    r = y[:2]                      # inside the loop, numpy's r sees each pass's write
    s = 0.0
    for i in range(n):
        y[0] = y[0] + x[i]
        s = s + np.sum(r)
    return s


def other_name_read_inside_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = x * 1.0
    z = y
    s = 0.0
    for i in range(n):
        y[0] = y[0] + x[i]
        s = s + np.sum(z) * x[1]
    return s


def other_name_of_a_rebound_array_read_inside_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = x * 1.0
    z = y
    s = 0.0
    for i in range(n):
        y = y + x[i]               # rebound, not changed: z keeps the array from before
        s = s + np.sum(z * y)
    return s


@pytest.mark.parametrize("mode", TRACED)
@pytest.mark.parametrize("f", [view_read_inside_a_traced_loop,
                               other_name_read_inside_a_traced_loop], ids=lambda f: f.__name__)
def test_a_traced_loop_reading_its_array_through_another_name_is_refused(f, mode):
    x = POINTS[0]
    np.testing.assert_allclose(ad.grad(f, mode="tape")(x), numerical_grad(f, (x,), 0),
                               rtol=1e-6)
    with pytest.raises(TracingError, match=r"changes the array 'y' in place .*through another "
                                           r"name or a view"):
        ad.grad(f, mode=mode)(x)


@pytest.mark.parametrize("mode", MODES)
def test_a_traced_loop_may_read_the_old_array_of_a_rebound_name(mode):
    f = other_name_of_a_rebound_array_read_inside_a_traced_loop
    for x in POINTS:
        _agrees_with_numpy(f, mode, x)


def two_names_written_in_a_traced_loop(x):
    n = np.argmax(x) + 1
    y = x * 1.0
    z = y
    for i in range(n):
        y[0] = y[0] + x[i]
        z[1] = z[1] * x[i]
    return np.sum(y * x)


@pytest.mark.parametrize("mode", TRACED)
def test_a_traced_loop_changing_one_array_through_two_names_is_refused(mode):
    f = two_names_written_in_a_traced_loop
    np.testing.assert_allclose(ad.grad(f, mode="tape")(POINTS[0]),
                               numerical_grad(f, (POINTS[0],), 0), rtol=1e-6)
    with pytest.raises(TracingError, match=r"its variables 'y', 'z' all refer to"):
        ad.grad(f, mode=mode)(POINTS[0])


# after a traced `if` (or loop) that rebinds a name on one path only, the name is the array
# from before on the other path: a later write in place would have to reach the array's other
# names on that path only

def write_after_one_path_rebinds(x):
    y = x * 1.0
    r = y[1:3]
    if x[1] > 0.1:
        y = y * 2.0
    y[2] = x[3] * 1.5              # numpy: r sees it when the branch was not taken
    return np.sum(y * x) + np.sum(r)


def write_through_the_other_name_after_one_path_rebinds(x):
    y = x * 1.0
    z = y
    if x[1] > 0.1:
        z[1] = x[3]
        y = y * 2.0
    z[0] = x[2] * 3.0              # numpy: y sees it when the branch was not taken
    return np.sum(y * x) + np.sum(z * x)


def write_after_a_traced_loop_that_rebinds(x):
    n = np.argmax(x) - 1           # may be 0: then y is still the array r views
    y = x * 1.0
    r = y[1:3]
    for i in range(n):
        y = y * 2.0
    y[1] = x[0]
    return np.sum(y * x) + np.sum(r)


def rebinding_without_others_then_writing(x):
    y = x * 1.0
    if x[1] > 0.1:
        y = y * 2.0
    y[2] = x[3] * 1.5              # nothing else sees the array from before: fine
    return np.sum(y * x)


@pytest.mark.parametrize("mode", TRACED)
@pytest.mark.parametrize("f", [write_after_one_path_rebinds,
                               write_through_the_other_name_after_one_path_rebinds,
                               write_after_a_traced_loop_that_rebinds], ids=lambda f: f.__name__)
def test_a_write_after_a_name_was_rebound_on_one_path_only_is_refused(f, mode):
    for x in POINTS:
        with pytest.raises(TracingError, match=r"the array it was bound to before on one path "
                                               r"and a new array on another"):
            ad.grad(f, mode=mode)(x)


@pytest.mark.parametrize("mode", MODES)
def test_a_write_after_a_rebinding_nothing_else_sees_works(mode):
    f = rebinding_without_others_then_writing
    for x in POINTS:
        _agrees_with_numpy(f, mode, x)


# ---------------------------------------------------------------------------------------------
# in-place changes that are not `y[key] = v` / `y op= v` statements (nor numpy's writers on
# a name: np.copyto(y, ...), f(..., out=y), tests/test_writes_by_numpy_calls.py) happen while
# the code is traced (both branches are traced): refused, with the array put back, never a
# wrong value

def _copyto_view_in_branch(x):
    y = np.zeros(3)
    if x[0] > 0:
        np.copyto(y[:2], 1.0)      # into a view: not a name the rewrite can rebind
    return np.sum(y * x)


def _fill_view_in_branch(x):
    y = np.zeros(3)
    if x[0] > 0:
        y[1:].fill(2.0)
    return np.sum(y * x)


def _out_view_in_branch(x):
    y = np.zeros(3)
    if x[0] > 0:
        np.add(y[1:], 1.0, out=y[1:])
    return np.sum(y * x)


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
@pytest.mark.parametrize("f", [_copyto_view_in_branch, _fill_view_in_branch,
                               _out_view_in_branch])
def test_other_in_place_changes_in_a_traced_branch_are_refused(f, mode):
    with pytest.raises(TracingError, match="changes a numpy array from before it in place"):
        ad.grad(f, mode=mode)(np.array([-1.0, 2.0, 3.0]))


def _copyto_in_branch(x):
    y = np.zeros(3)
    if x[0] > 0:
        np.copyto(y, 1.0)          # rewritten: y = __ad.write_call(np.copyto, y, ...)
    return np.sum(y * x)


def _out_in_branch(x):
    y = np.zeros(3)
    if x[0] > 0:
        np.add(y, 1.0, out=y)      # rewritten: y = __ad.write_out(np.add, y, ...)
    return np.sum(y * x)


def _fill_in_branch(x):
    y = np.zeros(3)
    if x[0] > 0:
        y.fill(2.0)                # rewritten: y = __ad.write_method("fill", y, ...)
    return np.sum(y * x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [_copyto_in_branch, _out_in_branch, _fill_in_branch])
def test_numpys_writers_on_a_name_in_a_traced_branch_work(f, mode):
    for x in (np.array([-1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])):
        _agrees_with_numpy(f, mode, x)


def _out_view_in_traced_loop(x):
    y = np.zeros(3)
    i = 0
    while i < x[0]:                # traced: the body is traced once
        np.add(y[:], 1.0, out=y[:])    # a view: y is only read by the loop, not assigned
        i += 1
    return np.sum(y * x)


def _out_in_traced_loop(x):
    y = np.zeros(3)
    i = 0
    while i < x[0]:
        np.add(y, 1.0, out=y)      # rewritten: y is carried by the loop
        i += 1
    return np.sum(y * x)


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_other_in_place_changes_in_a_traced_loop_are_refused(mode):
    with pytest.raises(TracingError, match="traced once, and changes a numpy array"):
        ad.grad(_out_view_in_traced_loop, mode=mode)(np.array([3.0, 2.0, 1.0]))
    # tape mode runs the loop in Python: numpy's value
    np.testing.assert_array_equal(ad.grad(_out_view_in_traced_loop, mode="tape")(
        np.array([3.0, 2.0, 1.0])), [3.0, 3.0, 3.0])


@pytest.mark.parametrize("mode", MODES)
def test_out_on_a_name_in_a_traced_loop_is_carried(mode):
    np.testing.assert_array_equal(ad.grad(_out_in_traced_loop, mode=mode)(
        np.array([3.0, 2.0, 1.0])), [3.0, 3.0, 3.0])
