"""Lists and tuples of traced values given to numpy (numpy/lists.py): np.array([x[1], -x[0]]),
np.mean([a, b]), np.sin([a, b]), np.full(shape, a), np.r_[...], np.int64(x), np.float32(a), in
compiled, interpret and tape mode; gradients
against central differences, values/dtypes/shapes against numpy, ragged lists refused as
numpy does, the routing gone after a trace (also after an exception) and per thread."""
from __future__ import annotations

import pickle
import threading
import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.errors import TracingError
from autodiff_jit.numpy import lists
from tests.helpers import numerical_grad

MODES = ("compiled", "interpret", "tape")
X = np.array([0.3, -1.2, 2.0])

# each: f(x) -> array, built from lists/tuples of traced values, floats and ndarrays
CASES = {
    "vector_field": lambda x: np.array([x[1], -x[0]]),
    "asarray": lambda x: np.asarray([x[1], 2.0, x[0]]),
    "asanyarray": lambda x: np.asanyarray((x[2], x[0])),
    "ascontiguous": lambda x: np.ascontiguousarray([x, x ** 2]),
    "same_arrays": lambda x: np.array([x, x]),
    "nested": lambda x: np.array([[x[0], 1], [2.0, x[1] * x[2]]]),
    "nested_arrays": lambda x: np.array([[x, 2 * x], [np.ones(3), x + 1]]),
    "tuple_of_lists": lambda x: np.array(([x[0], x[1]], (x[2], 5.0))),
    "scalar": lambda x: np.array(x[0]),
    "ndmin": lambda x: np.array([x[0], x[1]], ndmin=3),
    "mean": lambda x: np.mean([x, x + 2]),
    "mean_axis": lambda x: np.mean([x, x ** 2], axis=0),
    "std": lambda x: np.std((x, x + 2 * x ** 2)),
    "var": lambda x: np.var([x, np.cos(x)], axis=1),
    "max": lambda x: np.max(np.array([x, 2 * x])),
    "sum_list": lambda x: np.sum([x[0], x[1] * x[2], 3.0]),
    "append": lambda x: np.append([x[0], 1.0], x),
    "concat_nested": lambda x: np.concatenate([[x[0], x[1]], x]),
    "r_": lambda x: np.r_[x, 1.0, x[:2]],
    "r_slice": lambda x: np.r_[x, 0:3],
    "c_": lambda x: np.c_[x, x ** 2, np.ones(3)],
    "c_2d": lambda x: np.c_[np.outer(x, x), x],
    "dot_list": lambda x: np.dot([x[0], x[1]], [x[2], 2.0]),
    "where_list": lambda x: np.where([True, False], [x[0], x[1]], x[2]),
    # ufuncs and their methods
    "sin_list": lambda x: np.sin([x[0], x[1]]),
    "add_list_scalar": lambda x: np.add([x[0], x[1]], 1),
    "maximum_list": lambda x: np.maximum([x[0], x[1]], 0),   # x[0] > 0 > x[1]: no tie
    "arctan2_lists": lambda x: np.arctan2([x[0], 1.0], (x[1], x[2])),
    "multiply_nested": lambda x: np.multiply([[x[0], 2.0], [x[1], x[2]]], x[:2]),
    "add_reduce": lambda x: np.add.reduce([x[0], x[1] * x[2]]),
    "maximum_reduce": lambda x: np.maximum.reduce([x, 2 * x], axis=0),
    "multiply_accumulate": lambda x: np.multiply.accumulate([x[0], x[1], x[2]]),
    "subtract_outer": lambda x: np.subtract.outer([x[0], x[1]], x),
    # np.full / np.full_like with a traced fill value
    "full": lambda x: np.full((2, 3), x[0]),
    "full_int_shape": lambda x: np.full(4, x[1] * x[2]),
    "full_list": lambda x: np.full((2, 2), [x[0], x[1]]),
    "full_row": lambda x: np.full((2, 3), x),
    "full_like_constant": lambda x: np.full_like(np.zeros((2, 2)), x[2]),
    "full_like_traced": lambda x: np.full_like(x, x[0] ** 2),
    # float casts: the gradient flows (JAX's jnp.float64(x))
    "float64_0d": lambda x: np.float64(x[0]) * x[1],
    "float64_array": lambda x: np.float64(x) ** 2,
    "float64_list": lambda x: np.float64([x[0], x[2]]),
    "double": lambda x: np.double(x[1]),
}


def _value(f, x):
    """f's value as numpy computes it on plain numbers (the reference)."""
    return np.asarray(f(x))


def _weighted(names):
    """sum_k <sin(case_k(x)), w_k> over the named cases: one scalar function."""
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(_value(CASES[n], X).shape) for n in names]

    def scalar(x):
        return sum(np.sum(np.sin(CASES[n](x)) * w) for n, w in zip(names, ws))
    return scalar


def _check_gradient(names, mode):
    scalar = _weighted(names)
    g = ad.grad(scalar, mode=mode)(X)
    np.testing.assert_allclose(g, numerical_grad(scalar, [X], 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_differences(name):
    _check_gradient([name], "interpret")


@pytest.mark.parametrize("mode", ("compiled", "tape"))
def test_gradient_of_all_cases_matches_differences(mode):
    # every case in one function: one trace and compilation per mode (the default suite's
    # time); the per-case variants below are opt-in
    _check_gradient(sorted(CASES), mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ("compiled", "tape"))
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_differences_per_mode(name, mode):
    _check_gradient([name], mode)


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_dtype_shape_match_numpy(name):
    f = CASES[name]
    want = _value(f, X)
    got = ad.jit(f, mode="interpret")(X)
    assert np.shape(got) == want.shape and np.asarray(got).dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-15)


def test_values_of_all_cases_compiled():
    names = sorted(CASES)
    got = ad.jit(lambda x: tuple(CASES[n](x) for n in names))(X)
    for n, g in zip(names, got):
        want = _value(CASES[n], X)
        assert np.shape(g) == want.shape and np.asarray(g).dtype == want.dtype, n
        np.testing.assert_allclose(g, want, rtol=1e-15, err_msg=n)


@pytest.mark.parametrize("mode", ("compiled", "interpret"))
@pytest.mark.parametrize("build, args", [
    (lambda x, i: np.array([x, i]), (np.float32(1.5), 3)),          # float32 + int
    (lambda x, i: np.array([x, 2]), (np.float32(1.5), 3)),           # float32 + Python int
    (lambda x, i: np.array([x, 2.5]), (np.float32(1.5), 3)),         # float32 + Python float
    (lambda x, i: np.array([i, 2]), (np.float32(1.5), np.int32(3))),  # int32 + Python int
    (lambda x, i: np.array([i, 2.5]), (np.float32(1.5), np.int32(3))),
    (lambda x, i: np.array([x, i], dtype=np.float32), (1.5, 3)),      # dtype= casts
    (lambda x, i: np.array([[x, x], [i, i]], dtype=int), (1.5, 3)),
])
def test_promotion_follows_numpy(build, args, mode):
    x, i = args
    want = np.asarray(build(np.asarray(x), np.asarray(i)))  # arguments arrive as 0-d arrays
    got = ad.jit(build, mode=mode)(x, i)
    assert np.asarray(got).dtype == want.dtype and np.shape(got) == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ("compiled", "interpret"))
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("build", [
    lambda x: np.r_[x, 1.0, x[:1]],            # a Python float stays weak: float32 stays
    lambda x: np.r_[x[0], 2],
    lambda x: np.r_[x, np.float64(2.0)],        # a numpy scalar is strong
    lambda x: np.r_[x, 1:3],                    # a slice is an int64 range
    lambda x: np.c_[x, 2.0 * np.ones(2, np.float32)],
])
def test_concatenators_promote_as_numpy(build, dtype, mode):
    x = np.array([1.5, -2.0], dtype=dtype)
    want, got = build(x), np.asarray(ad.jit(build, mode=mode)(x))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_ragged_list_refused_as_numpy(mode):
    f = lambda x: np.sum(np.array([x, x[:2]]))  # noqa: E731
    with pytest.raises(ValueError) as ours:
        ad.grad(f, mode=mode)(X)
    with pytest.raises(ValueError) as theirs:
        np.array([X, X[:2]])
    assert str(theirs.value).split(".")[0] in str(ours.value)


@pytest.mark.parametrize("mode", MODES)
def test_integer_casts_have_zero_gradient(mode):
    # autograd's test_cast_to_int: indices cut out of a float argument
    def f(w):
        idx = np.int64(w[:, -1])
        assert idx.dtype == np.int64
        return np.sum(w[:, :-1][idx]) + np.sum(w.astype(int) * 1.0)

    w = np.random.default_rng(1).standard_normal((5, 4))
    w[:, -1] = [0.4, 1.3, 2.6, 1.5, 0.2]  # int() truncates them; away from the jumps
    g = ad.grad(f, mode=mode)(w)
    np.testing.assert_allclose(g, numerical_grad(f, [w], 0), atol=1e-7)
    assert np.all(g[:, -1] == 0)


@pytest.mark.parametrize("mode", ("compiled", "interpret"))
@pytest.mark.parametrize("convert", [int, float])
def test_python_number_of_traced_value_is_a_clear_error(convert, mode):
    with pytest.raises(TracingError, match=r"x\.astype\(" + convert.__name__):
        ad.grad(lambda x: convert(x) * x, mode=mode)(1.5)


@pytest.mark.parametrize("mode", ("compiled", "interpret"))
def test_bypassing_the_numpy_module_says_what_to_write(mode):
    from numpy import array

    with pytest.raises(TracingError, match=r"import numpy as np.*np\.stack"):
        ad.grad(lambda x: np.sum(array([x, x])), mode=mode)(1.0)


def test_tape_tensor_outside_a_grad_call_keeps_pytorchs_error():
    t = ad.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy"):
        np.array([t[0], t[1]])


def _originals():
    return (np.array, np.asarray, np.mean, np.r_, np.int64, np.linalg.norm, np.sin, np.add,
            np.full, np.full_like, np.float64, np.float32)


def test_routing_is_gone_after_the_trace_and_after_an_exception():
    before = _originals()
    ad.grad(lambda x: np.sum(np.array([x, x])), mode="interpret")(1.0)
    assert _originals() == before and not lists.routed_now()

    def fails(x):
        assert lists.routed_now() and np.array is not before[0]
        raise ValueError("boom")

    for mode in MODES:
        with pytest.raises(ValueError, match="boom"):
            ad.grad(fails, mode=mode)(1.0)
        assert _originals() == before and not lists.routed_now()
    assert type(np.int64(3)) is np.int64


def test_plain_numpy_unchanged_while_routed():
    big = [float(i) for i in range(1000)]
    with lists.routing_lists():
        a = np.array(big)
        b = np.asarray([[1, 2], [3, 4]], dtype=np.float32)
        m = np.mean([1, 2, 4])
        r = np.r_[1:4, [7, 8]]
        i = np.int64(7)
        with pytest.raises(ValueError):
            np.array([[1.0], [1.0, 2.0]])
        assert np.dtype(np.int64) == np.int64 and np.zeros(2, np.int64).dtype == np.int64
        assert isinstance(i, np.int64) and issubclass(type(i), np.int64)
        assert isinstance(np.arange(2)[0], np.int64) and np.issubdtype(np.int64, np.integer)
    np.testing.assert_array_equal(a, np.array(big))
    assert b.dtype == np.float32 and m == np.mean([1, 2, 4])
    np.testing.assert_array_equal(r, np.r_[1:4, [7, 8]])
    assert type(i) is np.int64 and i == 7


def test_routed_ufuncs_and_float_types_answer_as_numpys():
    originals = {"sin": np.sin, "add": np.add, "float64": np.float64, "float32": np.float32}
    with lists.routing_lists():
        assert np.sin is not originals["sin"]  # routed, and yet numpy's in every answer:
        assert isinstance(np.sin, np.ufunc) and np.sin == originals["sin"]
        assert hash(np.add) == hash(originals["add"]) and {originals["add"]: 1}[np.add] == 1
        assert np.add.nin == 2 and np.add.__name__ == "add" and repr(np.add) == "<ufunc 'add'>"
        assert np.add.reduce([1, 2, 3]) == 6 and np.sin([0.0])[0] == 0.0
        np.testing.assert_array_equal(np.add.outer([1, 2], [10, 20]), [[11, 21], [12, 22]])
        assert pickle.loads(pickle.dumps(np.add)) == originals["add"]
        v = np.float64(2.5)
        assert type(v) is originals["float64"] and isinstance(v, np.float64) and v == 2.5
        assert np.double is np.float64 and np.dtype(np.float32) == np.float32
        assert np.zeros(2, dtype=np.float32).dtype == np.float32
        assert np.issubdtype(np.zeros(1).dtype, np.float64) and np.finfo(np.float64).bits == 64
        np.testing.assert_array_equal(np.full((2,), 3.0), [3.0, 3.0])
        assert np.full_like(np.zeros(2, np.float32), 1).dtype == np.float32
    assert np.sin is originals["sin"] and np.float64 is originals["float64"]


@pytest.mark.parametrize("mode", MODES)
def test_float_casts_keep_the_gradient(mode):
    def f(x):
        y = np.float32(x[0])
        assert y.dtype == np.float32
        return np.float64(y) * 3.0 + np.float64(x[1] ** 2)

    x = np.array([0.25, 1.5])  # float32-exact values: the cast does not round them
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x), [3.0, 3.0], rtol=1e-15)
    assert np.asarray(ad.jit(lambda x: np.float32(x), mode=mode)(x)).dtype == np.float32


@pytest.mark.parametrize("mode", ("compiled", "interpret"))
@pytest.mark.parametrize("build", [
    lambda x: np.full((2, 2), x[0], dtype=np.float32),
    lambda x: np.full((3,), x[0], dtype=int),
    lambda x: np.full_like(np.zeros(3, np.float32), x[1]),
    lambda x: np.full_like(np.zeros(2, int), x[1]),
    lambda x: np.float32([x[0], 2.0]),
    lambda x: np.sin([x[0], np.float32(1.0)]),
])
def test_fill_and_cast_dtypes_follow_numpy(build, mode):
    x = np.array([1.5, -2.25])
    want, got = np.asarray(build(x)), np.asarray(ad.jit(build, mode=mode)(x))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _warns_at_user_line(x):
    bad = np.log(np.array([-1.0]))            # numpy warns here (a routed ufunc)
    np.asarray([1e300], dtype=np.float32)    # and here (a routed function: overflow in cast)
    return np.sum(x) + 0 * np.sum(np.nan_to_num(bad))


@pytest.mark.parametrize("mode", MODES)
def test_numpy_warnings_inside_a_trace_name_the_users_line(mode):
    import inspect

    first = inspect.getsourcelines(_warns_at_user_line)[1]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ad.grad(_warns_at_user_line, mode=mode)(np.ones(2))
    runtime = [w for w in seen if issubclass(w.category, RuntimeWarning)]
    assert [(w.filename, w.lineno) for w in runtime] == \
        [(__file__, first + 1), (__file__, first + 2)], [str(w) for w in runtime]


def test_routed_warnings_follow_the_filters():
    def f(x):
        np.log(np.array([-1.0]))
        return np.sum(x)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="invalid value encountered in log"):
            ad.grad(f, mode="tape")(np.ones(2))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("ignore")
        ad.grad(f, mode="tape")(np.ones(2))
    assert not seen
    with warnings.catch_warnings(record=True) as seen:  # "default": once per user line
        warnings.simplefilter("default")
        for _ in range(3):
            ad.grad(f, mode="tape")(np.ones(2))
    assert len(seen) == 1 and seen[0].filename == __file__
    assert warnings._showwarnmsg is not lists._showwarnmsg


def test_threads_share_one_installation_and_restore_it():
    before = _originals()
    errors, start = [], threading.Barrier(4)

    def work(k):
        try:
            start.wait()
            for _ in range(5):
                x = np.array([0.5 + k, -1.0])
                g = ad.grad(lambda x: np.sum(np.array([x[1], x[0]]) ** 2), mode="interpret")(x)
                np.testing.assert_allclose(g, 2 * x)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert _originals() == before and not lists.routed_now()


def test_a_thread_that_is_not_tracing_keeps_numpys_behaviour():
    # while another thread traces (numpy's attributes routed), this one's requires-grad
    # Tensor still refuses np.array as PyTorch does
    t = ad.tensor([1.0, 2.0], requires_grad=True)
    with lists.routing_lists():
        seen = []
        th = threading.Thread(target=lambda: seen.append(_try_array(t)))
        th.start()
        th.join()
    assert seen == ["RuntimeError"]


def _try_array(t):
    try:
        np.array([t[0], t[1]])
    except RuntimeError:
        return "RuntimeError"
    return "no error"


def test_routing_never_writes_numpys_module_dict():
    # the swap is the module's type (numpy/lists.py _routed_type): numpy's own objects stay in
    # its dict, the module's type comes back on exit, and a write made while routed is kept
    before = dict(vars(np)), dict(vars(np.linalg)), type(np), type(np.linalg)
    with lists.routing_lists():
        assert np.sum is not before[0]["sum"] and np.linalg.norm is not before[1]["norm"]
        assert vars(np)["sum"] is before[0]["sum"] and isinstance(np, before[2])
        np.sum = "patched"          # a write while routed goes to numpy's dict ...
        assert np.sum is not "patched"  # noqa: F632 - ... while the routed name shadows it
        np.sum = before[0]["sum"]
        del np.mean                 # a delete likewise
        np.mean = before[0]["mean"]
    assert type(np) is before[2] and type(np.linalg) is before[3]
    assert dict(vars(np)) == before[0] and dict(vars(np.linalg)) == before[1]


def test_a_patch_made_outside_routing_survives_it():
    # (a dict swap would put numpy's original back over the user's patch on exit)
    with lists.routing_lists():   # routing set up before the patch
        pass
    orig = np.vdot
    mine = lambda a, b: "mine"  # noqa: E731
    np.vdot = mine
    try:
        with lists.routing_lists():
            pass
        assert np.vdot is mine
    finally:
        np.vdot = orig
