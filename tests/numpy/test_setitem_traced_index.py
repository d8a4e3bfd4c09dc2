"""`x[idx] = v` where the index array is a traced value (an argument, or computed from one:
argsort, argmax, arithmetic), and numpy's writers np.put / np.put_along_axis / np.putmask with
traced positions: numpy's values in every mode (a repeated index keeps its last write, the
array keeps its dtype, nan and -0.0 are written as they are), gradients against central
differences (only the last write to a position gets the gradient), out-of-bounds indices raise
numpy's IndexError when the code runs, and vmap, jvp and grad of grad go through the scatter.
"""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad
from tests.helpers import check_grads

MODES = ("compiled", "interpret", "tape")
X = np.array([0.3, -1.2, 2.5, 0.7, -0.4, 1.9])
M = np.arange(12.0).reshape(3, 4) * 0.25 - 1.0
DUP = np.array([4, -1, 0, 4, 2])           # 4 repeats (last write wins), -1 is position 5


def _run(f, mode, *args):
    return ad.jit(f, mode=mode)(*args) if mode != "tape" else \
        _tape_value(f, *args)


def _tape_value(f, *args):
    out = f(*[ad.as_tensor(a) for a in args])
    return np.asarray(out.detach().numpy() if hasattr(out, "detach") else out)


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape,
                                                                 want.dtype, want.shape)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))   # -0.0 written as -0.0


# (function, args): each writes into a copy of its first argument, or into an array it makes
def _set_1d(x, i):
    y = x * 1.0
    y[i] = x[:5] ** 2
    return y


def _set_scalar_value(x, i):
    y = x * 1.0
    y[i] = x[1]
    return y


def _add_1d(x, i):
    y = x * 1.0
    y[i] += x[:5] * 3.0       # numpy: y[i] = y[i] + v, so a repeated index adds once
    return y


def _rows(m, i):
    y = m * 1.0
    y[i] = m[0] * 2.0         # whole rows
    return y


def _cols(m, i):
    y = m * 1.0
    y[:, i] = m[:, :2] - 1.0  # columns, after a slice
    return y


def _pairs(m, i, j):
    y = m * 1.0
    y[i, j] = m[2, :3] ** 2   # two index arrays, broadcast together
    return y


def _mixed(m, i):
    y = m * 1.0
    y[i, 1:3] = np.sin(m[:2, :2])
    return y


def _ellipsis(m, i):
    y = m * 1.0
    y[..., i] = m[..., :2] * m[..., 1:3]
    return y


def _view(m, i):
    y = m * 1.0
    z = y[1:]                  # a view: the write lands in y
    z[:, i] = m[:2, :2] * 5.0
    return y * 1.0


def _chained_view(m, i):
    y = m * 1.0
    y[2][i] = m[0, :2] + 1.0
    return y


def _own_numpy_array(x, i):
    y = np.zeros(7)            # the function's own numpy array (the write makes it traced)
    y[i] = x[:3] * x[3:]
    return y


def _computed_index(x):
    y = x * 1.0
    y[np.argsort(x)[:2]] = x[2:4] * 10.0
    return y


def _argmax_index(x):
    y = x * 1.0
    y[np.stack([np.argmax(x), np.argmin(x)])] = 0.0
    return y


def _int_array(x, i):
    y = np.zeros(6, np.int64)
    y[i] = x[:5] * 1.7         # numpy casts the floats into the int array (truncation)
    return y * x


def _put(x, i, mode):
    y = x * 1.0
    np.put(y, i, x[:2] * 4.0, mode=mode)   # v repeats to the length of i
    return y


def _put_along(m):
    y = m * 1.0
    np.put_along_axis(y, np.argsort(m, axis=1)[:, :2], m[:, 2:] * 3.0, axis=1)
    return y


def _putmask(x):
    y = x * 1.0
    np.putmask(y, x > 0.5, x[::-1] * 2.0)
    return y


I2 = np.array([2, 0])
CASES = {
    "set_1d": (_set_1d, (X, DUP)),
    "set_scalar_value": (_set_scalar_value, (X, DUP)),
    "add_1d": (_add_1d, (X, DUP)),
    "rows": (_rows, (M, np.array([2, 0, 2]))),
    "cols": (_cols, (M, np.array([3, -3]))),
    "pairs": (_pairs, (M, np.array([[0], [1]]), np.array([[1, 3, 1]]))),
    "mixed": (_mixed, (M, I2)),
    "ellipsis": (_ellipsis, (M, np.array([1, 3]))),
    "view": (_view, (M, np.array([0, 0]))),
    "chained_view": (_chained_view, (M, np.array([3, 1]))),
    "own_numpy_array": (_own_numpy_array, (X, np.array([6, 0, 6]))),
    "computed_index": (_computed_index, (X,)),
    "argmax_index": (_argmax_index, (X,)),
    "int_array": (_int_array, (X, DUP)),
    "put_raise": (lambda x, i: _put(x, i, "raise"), (X, DUP)),
    "put_wrap": (lambda x, i: _put(x, i, "wrap"), (X, np.array([7, -8, 1]))),
    "put_clip": (lambda x, i: _put(x, i, "clip"), (X, np.array([9, -9, 3]))),
    "put_along_axis": (_put_along, (M,)),
    "putmask": (_putmask, (X,)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_are_numpys(name, mode):
    f, args = CASES[name]
    _same(_run(f, mode, *args), f(*[np.array(a) for a in args]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_against_central_differences(name):
    f, args = CASES[name]
    w = np.cos(np.arange(np.size(f(*args))) + 0.5).reshape(np.shape(f(*args)))
    check_grads(lambda *a: np.sum(f(*a) * w), args, modes=MODES)


def test_only_the_last_write_gets_the_gradient():
    def f(x, i):
        y = np.zeros(3)
        y[i] = x          # positions 1, 1, 0: x[0] is overwritten by x[1]
        return np.sum(y * np.array([1.0, 2.0, 3.0]))
    x, i = np.array([5.0, 6.0, 7.0]), np.array([1, 1, 0])
    for mode in MODES:
        np.testing.assert_array_equal(ad.grad(f, mode=mode)(x, i), [0.0, 2.0, 1.0])


def test_special_values_are_written_as_they_are():
    def f(x, i):
        y = x * 1.0
        y[i] = np.array([np.nan, -0.0, np.inf]) * x[:3]
        return y
    x, i = np.array([1.0, 1.0, 1.0, -2.0]), np.array([3, 0, 1])
    for mode in MODES:
        _same(_run(f, mode, x, i), f(x.copy(), i))


def test_float32_keeps_its_dtype():
    f, (x, i) = CASES["set_1d"]
    for mode in MODES:
        _same(_run(f, mode, x.astype(np.float32), i), f(x.astype(np.float32), i))


@pytest.mark.parametrize("mode", MODES)
def test_out_of_bounds_raises_numpys_index_error(mode):
    f = CASES["set_1d"][0]
    with pytest.raises(IndexError) as want:
        f(X.copy(), np.array([0, 1, 6, 2, 3]))
    with pytest.raises(IndexError) as got:
        _run(f, mode, X, np.array([0, 1, 6, 2, 3]))
    assert str(got.value) == str(want.value)
    with pytest.raises(IndexError):
        _run(lambda x, i: _put(x, i, "raise"), mode, X, np.array([-7]))


def test_vmap_over_values_and_indices():
    f = CASES["set_1d"][0]
    xs = np.stack([X, X[::-1], X * 2.0])
    idx = np.stack([DUP, DUP[::-1], np.array([0, 1, 2, 3, 4])])
    want = np.stack([f(x.copy(), i) for x, i in zip(xs, idx)])
    _same(ad.vmap(f)(xs, idx), want)
    _same(ad.vmap(f, in_axes=(0, None))(xs, DUP), np.stack([f(x.copy(), DUP) for x in xs]))
    _same(ad.vmap(f, in_axes=(None, 0))(X, idx), np.stack([f(X.copy(), i) for i in idx]))
    g = ad.vmap(ad.grad(lambda x, i: np.sum(f(x, i) ** 2)))(xs, idx)
    for x, i, gi in zip(xs, idx, g):
        np.testing.assert_allclose(gi, ad.grad(lambda x, i: np.sum(f(x, i) ** 2),
                                               mode="interpret")(x, i), rtol=1e-12)


def test_jvp_and_second_order():
    f, (x, i) = CASES["add_1d"]
    t = np.linspace(-1.0, 1.0, x.size)
    value, tangent = ad.jvp(lambda v: f(v, i), (x,), (t,))
    _same(value, f(x.copy(), i))
    np.testing.assert_allclose(tangent, (f(x + 1e-6 * t, i) - f(x - 1e-6 * t, i)) / 2e-6,
                               rtol=1e-6, atol=1e-8)
    check_grads(lambda v, i: np.sum(np.tanh(f(v, i)) ** 2), (x, i), modes=MODES, order=2)


# ---------------------------------------------------------------------------------------------
# random keys: ints, slices (any step), None, ... and traced index arrays, broadcast values

def _random_key(rng, shape):
    items = []
    for d in shape:
        r = rng.random()
        if r < 0.35:
            size = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(1, 3))))
            items.append(("array", rng.integers(-d, d, size=size)))
        elif r < 0.55:
            items.append(("value", int(rng.integers(-d, d))))
        else:
            items.append(("value", slice(int(rng.integers(-d, d)), int(rng.integers(-d - 1, d + 1)),
                                         int(rng.choice([1, 2, -1, 3])))))
        if rng.random() < 0.1:
            items.append(("value", None))
    if rng.random() < 0.3:
        items = items[:int(rng.integers(0, len(shape)))] + [("value", Ellipsis)]
    return items


def _check_random_keys(seed, trials):
    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(trials):
        shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        items = _random_key(rng, shape)
        arrays = [v for kind, v in items if kind == "array"]
        if not arrays:
            continue

        def key(traced):
            it = iter(traced)
            return tuple(next(it) if kind == "array" else v for kind, v in items)
        x = rng.standard_normal(shape)
        try:
            selected = x[key(arrays)]
        except IndexError:   # numpy refuses the key (arrays that do not broadcast)
            continue
        v = rng.standard_normal(selected.shape[int(rng.integers(0, selected.ndim + 1)):])

        def f(x, v, *traced):
            y = x * 1.0
            y[key(traced)] = v * 2.0
            return y
        want = f(x, v, *arrays)
        for mode in MODES:
            got = _run(f, mode, x, v, *arrays)
            assert got.shape == want.shape and np.array_equal(got, want), \
                (mode, shape, items, v.shape)
        checked += 1
    assert checked >= trials // 4


def test_random_keys_write_numpys_values():
    _check_random_keys(seed=0, trials=24)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 9))
def test_many_random_keys_write_numpys_values(seed):
    _check_random_keys(seed, trials=150)
