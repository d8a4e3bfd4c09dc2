"""Errors found while code runs raise the same exception in every mode (backend/status.py).

Out-of-bounds traced indices raise numpy's IndexError (the interpreter and tape mode run numpy's
take; compiled code flags the index and the call path replays the interpreter); a differentiated
while_loop past max_steps raises the interpreter's RuntimeError; LAPACK failures LinAlgError.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit import while_loop

MODES = ("compiled", "interpret", "tape")
X = np.array([1.0, 2.0, 3.0])


def _numpy_error(f, *args):
    with pytest.raises(IndexError) as e:
        f(*args)
    return str(e.value)


def _jit(f, mode):
    return ad.jit(f, mode=mode) if mode != "tape" else \
        (lambda *a: f(*[ad.as_tensor(v) if v.dtype.kind == "f" else v for v in a]))


def _gather(x, i):
    return np.sin(x[i]) * 2.0


def _gather2(a, i, j):
    return a[i, j] * 1.0


def _take_along(a, i):
    return np.take_along_axis(a, i, axis=1) * 1.0


def _np_take(x, i):
    return np.take(x, i) + 1.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("idx", [[0, 5], [-4, 1], [1, 3, 7], [[0, 1], [2, -9]]])
def test_traced_index_out_of_bounds_raises_numpys_error(mode, idx):
    idx = np.array(idx)
    want = _numpy_error(_gather, X, idx)
    for f in (_gather, _np_take):
        with pytest.raises(IndexError) as e:
            _jit(f, mode)(X, idx)
        assert str(e.value) == want, (f.__name__, mode)
    with pytest.raises(IndexError) as e:
        ad.grad(lambda x, i: np.sum(_gather(x, i)), mode=mode)(X, idx)
    assert str(e.value) == want


@pytest.mark.parametrize("mode", MODES)
def test_in_bounds_traced_indices_still_work(mode):
    idx = np.array([0, -1, 2, -3, 1])
    np.testing.assert_allclose(_jit(_gather, mode)(X, idx), _gather(X, idx), rtol=1e-15)
    g = ad.grad(lambda x, i: np.sum(_gather(x, i)), mode=mode)(X, idx)
    want = np.zeros(3)
    np.add.at(want, idx, 2.0 * np.cos(X[idx]))
    np.testing.assert_allclose(g, want, rtol=1e-14)
    # the next good call after an error is not affected by it
    with pytest.raises(IndexError):
        _jit(_gather, mode)(X, np.array([3]))
    np.testing.assert_allclose(_jit(_gather, mode)(X, idx), _gather(X, idx), rtol=1e-15)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, args", [
    # a wrong column index must not land on a valid flat position (row i, column j = 3 is
    # row i + 1, column 0 of the flattened matrix)
    (_gather2, (np.arange(6.0).reshape(2, 3), np.array([0]), np.array([3]))),
    (_gather2, (np.arange(6.0).reshape(2, 3), np.array([-3]), np.array([0]))),
    (_take_along, (np.arange(6.0).reshape(2, 3), np.array([[0], [3]]))),
])
def test_combined_indices_are_checked_one_by_one(mode, f, args):
    want = _numpy_error(f, *args)
    with pytest.raises(IndexError) as e:
        _jit(f, mode)(*args)
    assert str(e.value) == want


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_traced_scalar_setitem_index_out_of_bounds(mode):
    def f(x, i):
        y = x * 1.0
        y[i] = 0.0
        return y
    np.testing.assert_array_equal(ad.jit(f, mode=mode)(X, np.int64(-1)), [1.0, 2.0, 0.0])
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        ad.jit(f, mode=mode)(X, np.int64(3))


def test_integer_results_take_the_ctypes_path_and_raise_too():
    f = ad.jit(lambda x, i: x[i] * 2)
    assert f.specialize(np.arange(10, 13), np.array([0])).executable.method == "ctypes"
    np.testing.assert_array_equal(f(np.arange(10, 13), np.array([0, 2])), [20, 24])
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        f(np.arange(10, 13), np.array([3]))


@pytest.mark.parametrize("mode", MODES)
def test_constant_index_is_checked_at_trace_time(mode):
    want = _numpy_error(lambda x: x[np.array([1, 5, 7])], X)
    assert want == "index 5 is out of bounds for axis 0 with size 3"
    with pytest.raises(IndexError) as e:
        _jit(lambda x: x[np.array([1, 5, 7])], mode)(X)
    assert str(e.value).startswith(want)   # (a trace-time error also names the user's line)


def test_only_traced_gathers_take_the_status_words():
    const = ad.jit(lambda x: x[np.array([0, 2, -1])] * 2.0).llvm_ir(X)
    traced = ad.jit(_gather).llvm_ir(X, np.array([0, 1]))
    entry = [ln for ln in traced.splitlines() if ln.startswith("define") and "_body" not in ln]
    assert "adj_" in traced and "store i64 5" in traced        # INDEX_OUT_OF_BOUNDS
    assert "store i64 5" not in const
    assert len(entry) >= 1


def test_errors_in_one_thread_do_not_leak_into_another():
    f = ad.jit(_gather)
    good, bad = np.array([0, 1, 2] * 1000), np.array([0, 1, 3] * 1000)
    f(X, good)
    errors = {"good": 0, "bad": 0}

    def run(idx, key, n=300):
        for _ in range(n):
            try:
                f(X, idx)
            except IndexError:
                errors[key] += 1
    ts = [threading.Thread(target=run, args=(good, "good")),
          threading.Thread(target=run, args=(bad, "bad"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == {"good": 0, "bad": 300}


def test_disk_cached_function_still_raises(tmp_path):
    f = lambda x, i: np.sum(x[i] ** 2)  # noqa: E731
    for _ in range(2):   # a miss, then a hit
        g = ad.grad(f, cache=tmp_path)
        np.testing.assert_allclose(g(X, np.array([2])), [0.0, 0.0, 6.0])
        with pytest.raises(IndexError, match="index 4 is out of bounds for axis 0 with size 3"):
            g(X, np.array([4]))


def test_while_loop_with_out_of_bounds_index_stops():
    # numpy raises at the first bad index; compiled code must not spin on a clamped value
    def f(x, i):
        return while_loop(lambda c: c[1] < 100.0, lambda c: (c[0] + 1, c[1] + x[c[0]] * 0.0),
                          (i, 0.0))[1]
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        ad.jit(f)(X, np.int64(0))


# ---------------------------------------------------------------------------------------------
# while_loop past max_steps in reverse mode

def _loop(a):
    return while_loop(lambda c: c[0] < a, lambda c: (c[0] + 1.0, c[1] * 1.01), (0.0, a),
                      max_steps=10)[1]


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_while_past_max_steps_raises_in_every_mode(mode):
    assert np.isclose(ad.grad(_loop, mode=mode)(5.0), 1.01 ** 5)
    with pytest.raises(RuntimeError) as e:
        ad.grad(_loop, mode="interpret")(50.0)
    want = str(e.value)
    assert "max_steps=10" in want
    with pytest.raises(RuntimeError) as e:
        ad.grad(_loop, mode=mode)(50.0)
    assert str(e.value) == want
    assert np.isclose(ad.grad(_loop, mode=mode)(5.0), 1.01 ** 5)   # and recovers
    # the forward pass alone is unbounded
    assert np.isclose(ad.jit(_loop, mode=mode)(50.0), 50 * 1.01 ** 50)


def test_while_past_max_steps_tape_mode_is_unbounded():
    # tape mode records each iteration on the tape as it runs: no static buffer, no limit
    assert np.isclose(ad.grad(_loop, mode="tape")(50.0), 1.01 ** 50, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# LAPACK failures use the same channel

@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_singular_solve_raises_linalg_error(mode):
    f = ad.jit(np.linalg.inv, mode=mode)
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        f(np.zeros((2, 2)))
    np.testing.assert_allclose(f(np.eye(2) * 2.0), np.eye(2) * 0.5)


NAN_MATRIX = np.array([[1.0, np.nan], [0.0, 1.0]])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f", [lambda a: np.linalg.svd(a, compute_uv=False),
                               lambda a: np.linalg.pinv(a),
                               lambda a: np.linalg.lstsq(a, np.ones(2))[0]])
def test_svd_of_a_nan_matrix_raises_as_numpy(mode, f):
    # LAPACK's gesdd returns info = -4 for a NaN entry; numpy raises on any nonzero info
    # (compiled code used to test info > 0 only, and answered zeros)
    with pytest.raises(np.linalg.LinAlgError):
        f(NAN_MATRIX)
    with pytest.raises(np.linalg.LinAlgError, match="SVD did not converge"):
        _jit(f, mode)(NAN_MATRIX)
