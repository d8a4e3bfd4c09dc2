"""In-place writes as numpy code makes them, in every mode: into the function's own argument,
into copies, and into a value that earlier operations already used (their gradient must flow to
the value before the write)."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad

MODES = ("compiled", "interpret", "tape")


def _write_argument(x):
    w = x * 3.0          # recorded before the writes: sees x's entry value
    x[0] = 5.0
    x *= 2.0
    return np.sum(w) + np.sum(x * x)


def _write_used_value(x):
    z = x * 1.0
    w = z * 3.0
    z[0] = 5.0
    return np.sum(w) + np.sum(z * z)


COPIES = {"astype": lambda v: v.astype(v.dtype), "flatten": lambda v: v.flatten(),
          "pos": lambda v: +v, "positive": np.positive, "concat1": lambda v: np.concatenate([v]),
          "sum_axis_()": lambda v: np.sum(v, axis=()), "copy": lambda v: v.copy()}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f, want", [
    # 3 + 2 * (2 * 2x1) at x1 (x0 is overwritten: only w sees it)
    (_write_argument, lambda x: np.array([3.0, 3.0 + 8.0 * x[1]])),
    (_write_used_value, lambda x: np.array([3.0, 3.0 + 2.0 * x[1]])),
])
def test_write_into_argument_and_used_values(mode, f, want):
    x = np.array([1.0, 2.0])
    keep = x.copy()
    np.testing.assert_array_equal(ad.grad(f, mode=mode)(x), want(keep))
    np.testing.assert_array_equal(x, keep)   # the caller's array is not written
    v, g = ad.value_and_grad(f, mode=mode)(x)
    assert v == f(keep.copy())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(COPIES))
def test_writes_into_copies_leave_the_original(mode, name):
    def f(x):
        y = COPIES[name](x)
        y[0] = 2.0
        return np.sum(x * y)
    x = np.array([1.0, 3.0])
    np.testing.assert_array_equal(ad.grad(f, mode=mode)(x), [2.0, 6.0])


def test_tape_api_leaf_writes_still_refused():
    # torch-style code: a user-made leaf that requires grad refuses in-place writes (PyTorch)
    t = ad.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        t[0] = 3.0


VIEWS = {"v[1:]": lambda v: v[1:], "v[::2]": lambda v: v[::2], "v[:]": lambda v: v[:],
         "v.T": lambda v: v.T, "reshape": lambda v: v.reshape(-1),
         "v[..., ::-1]": lambda v: v[..., ::-1], "v[1]": lambda v: v[1],
         "np.transpose": np.transpose, "T.reshape (a copy)": lambda v: v.T.reshape(-1)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(VIEWS))
@pytest.mark.parametrize("how", ["setitem", "iadd"])
def test_writes_through_views_reach_the_base(mode, name, how):
    def f(x):
        v = x * 1.0
        w = VIEWS[name](v)
        if how == "iadd":
            w += x[0, 0]
        else:
            w[(0,) * np.ndim(w)] = w[(0,) * np.ndim(w)] * 2.0 + x[1, 2]
        return np.sum(w * 1.0) + np.sum(v * v)
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    want = f(x.copy())
    got = ad.jit(f, mode=mode)(x) if mode != "tape" else f(ad.as_tensor(x)).item()
    assert got == want
    gi = ad.grad(f, mode="interpret")(x)
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x), gi, rtol=1e-14)
    eps = 1e-6
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        fd[i] = (f(x + e) - f(x - e)) / (2 * eps)
    np.testing.assert_allclose(gi, fd, rtol=1e-6, atol=1e-6)
