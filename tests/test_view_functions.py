"""numpy's views, function by function: every supported numpy function is called by numpy on
sample arguments, and wherever numpy answers with a view of the array (or the array itself),
a write into that view must reach the array in every mode, as in numpy (and a write into a
read-only view must raise numpy's ValueError). The list of such functions is numpy's answer,
not ours: a function that numpy makes a view but that autodiff_jit treats as a copy (a
silently wrong value after `v = f(x); v[0] = 1`) fails here. Functions that never share
memory with their argument must give new arrays: `y = np.sort(x); y[0] = 1` leaves x alone
(tests/test_fuzz_semantics.py covers those).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.numpy import FUNCTIONS
from autodiff_jit.numpy.array_ops import VIEW_FUNCTIONS

MODES = ("compiled", "interpret", "tape")
SHAPES = [(4,), (2, 4), (2, 2, 4), (4, 4)]
# extra arguments after the array: axes, counts, shapes, a second array
EXTRAS = [(), (0,), (1,), (2,), (-1,), (0, 1), (1, 0), (2, 1), ([1, 2],), ((1, 0),), (1, 2),
          ((4,),), ((2, 2),), ((2, 4),), ((1, 2, 4),), (np.ones(4),)]
SUBSCRIPTS = [("ij->ji",), ("ii->i",), ("i->i",), ("ijk->kji",)]   # np.einsum's


def _sample(shape):
    return np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)


def _outputs(r):
    return list(r) if isinstance(r, (list, tuple)) else [r]


_EINSUM = np.einsum   # numpy's own (while a trace runs, np.einsum is routed: numpy/lists.py)


def _args(func, x, extra):
    return (extra[0], x) if func is _EINSUM else (x,) + extra   # einsum: subscripts first


def _call(func, x, extra):
    return func(*_args(func, x, extra))


def _numpy_views():
    """(func, shape, extra, which outputs are views of x) wherever numpy shares memory."""
    found = []
    for func in FUNCTIONS:
        if isinstance(func, np.ufunc):
            continue
        for shape in SHAPES:
            for extra in SUBSCRIPTS if func is _EINSUM else EXTRAS:
                x = _sample(shape)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        outs = _outputs(_call(func, x, extra))
                    except Exception:   # noqa: BLE001 - numpy refuses these arguments
                        continue
                shared = tuple(i for i, o in enumerate(outs)
                               if isinstance(o, np.ndarray) and np.shares_memory(o, x))
                if shared:
                    found.append((func, shape, extra, shared))
    return found


VIEWS = _numpy_views()


def _name(func):
    return getattr(func, "__name__", str(func))


def _writer(func, extra, shared):
    """f(x): write into each view numpy makes of x, then into x; return x and the views."""
    def f(x):
        y = x * 1.0
        outs = _outputs(_call(func, y, extra))
        for k, i in enumerate(shared):
            o = outs[i]
            if o.size:
                o[(0,) * o.ndim] = 100.0 + k
        y[(-1,) * y.ndim] = -7.0
        return [y * 1.0] + [outs[i] * 1.0 for i in shared]
    return f


def _run(f, mode, x):
    if mode == "numpy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return f(x.copy())
    if mode == "tape":
        return [np.asarray(v.detach().numpy()) for v in f(ad.as_tensor(x))]
    return ad.jit(f, mode=mode)(x)


def test_numpy_makes_views_of_these_functions():
    # the sweep finds views (a sanity check of the sweep itself, so the test cannot pass empty)
    names = {_name(f) for f, *_ in VIEWS}
    assert {"reshape", "split", "atleast_2d", "diagonal", "real", "rot90"} <= names


def test_every_function_numpy_answers_with_a_view_is_tracked():
    missing = sorted({_name(f) for f, shape, extra, _ in VIEWS
                      if f not in VIEW_FUNCTIONS or
                      not VIEW_FUNCTIONS[f](_args(f, _sample(shape), extra), {})})
    assert not missing, (f"numpy returns views from {missing}: add them to "
                         f"numpy/array_ops.py VIEW_FUNCTIONS")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", VIEWS, ids=lambda c: f"{_name(c[0])}-{c[1]}-{c[2]}")
def test_writes_through_views_reach_the_array(case, mode):
    func, shape, extra, shared = case
    f = _writer(func, extra, shared)
    x = _sample(shape)
    try:
        want = _run(f, "numpy", x)
    except ValueError as e:
        assert "read-only" in str(e)
        with pytest.raises(ValueError, match="read-only"):
            _run(f, mode, x)
        return
    try:
        got = _run(f, mode, x)
    except (NotImplementedError, TypeError, ValueError) as e:   # refused: never a wrong value
        if "read-only" in str(e):
            raise
        pytest.skip(f"refused: {type(e).__name__}: {e}")
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# methods and the routed constructors: views where numpy makes them, copies where it copies
AS_ARRAY = {
    "x.view()": lambda y: y.view(),
    "x.diagonal()": lambda y: y.diagonal(),
    "np.array(x)": lambda y: np.array(y),
    "np.asarray(x)": lambda y: np.asarray(y),
    "np.asarray(x, order='F')": lambda y: np.asarray(y, order="F"),
    "np.ascontiguousarray(x)": lambda y: np.ascontiguousarray(y),
    "np.ascontiguousarray(x.T)": lambda y: np.ascontiguousarray(y.T),
    "np.asfortranarray(x)": lambda y: np.asfortranarray(y),
    "np.asfortranarray(x.T)": lambda y: np.asfortranarray(y.T),
    "np.asfortranarray(x[0])": lambda y: np.asfortranarray(y[0]),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(AS_ARRAY))
def test_methods_and_constructors_alias_as_numpy(name, mode):
    make = AS_ARRAY[name]

    def f(x):
        y = x * 1.0
        v = make(y)
        v[(0,) * v.ndim] = 100.0
        y[-1, -1] = -7.0
        return y * 1.0, v * 1.0
    x = _sample((3, 4))
    try:
        want = f(x.copy())
    except ValueError as e:   # a read-only view
        with pytest.raises(ValueError, match="read-only"):
            ad.jit(f, mode=mode)(x) if mode != "tape" else ad.grad(
                lambda x: np.sum(f(x)[0]), mode="tape")(x)
        assert "read-only" in str(e)
        return
    if mode == "tape":   # through a tape-mode grad, where numpy's constructors are routed
        got = [ad.grad(lambda x, i=i: np.sum(f(x)[i] * w), mode="tape")(x)
               for i, w in ((0, want[0] * 0 + 1.0), (1, want[1] * 0 + 1.0))]
        gj = [ad.grad(lambda x, i=i: np.sum(f(x)[i]), mode="interpret")(x) for i in (0, 1)]
        for g, e in zip(got, gj):
            np.testing.assert_array_equal(g, e)
        return
    for g, w in zip(ad.jit(f, mode=mode)(x), want):
        np.testing.assert_array_equal(g, w)


def test_tensor_to_numpy_array_copies_as_numpy_asks():
    t = ad.as_tensor(np.ones(3))
    a = np.array(t)
    a[0] = 5.0
    np.testing.assert_array_equal(t.numpy(), np.ones(3))   # np.array copies
    assert np.shares_memory(np.asarray(t), t.numpy())       # np.asarray shares, as torch's
    with pytest.raises(ValueError, match="avoid copy"):
        np.asarray(t, dtype=np.float32, copy=False)


# functions of several arrays: each output is a view of its own argument
SEVERAL = {
    "broadcast_arrays": (lambda a, b: np.broadcast_arrays(a, b), ((2, 3), (3,)), (0,)),
    "atleast_1d": (lambda a, b: np.atleast_1d(a, b), ((3,), (4,)), (0, 1)),
    "atleast_2d": (lambda a, b: np.atleast_2d(a, b), ((3,), (2, 4)), (0, 1)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(SEVERAL))
def test_views_of_several_arguments(name, mode):
    make, shapes, written = SEVERAL[name]

    def f(x, y):
        a, b = x * 1.0, y * 1.0
        outs = make(a, b)
        for k in written:
            outs[k][(0,) * outs[k].ndim] = 100.0 + k
        return a * 1.0, b * 1.0
    x, y = (_sample(s) for s in shapes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = f(x.copy(), y.copy())
    got = ad.jit(f, mode=mode)(x, y) if mode != "tape" else \
        [t.detach().numpy() for t in f(ad.as_tensor(x), ad.as_tensor(y))]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
