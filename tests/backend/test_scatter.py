"""The compiled row scatter-add (backend/scatter.py) behind take_add, the gradient of a row
gather: np.add.at's sums to the bit (repeated and negative indices, float32, signed zeros, nan
and inf, trailing axes, strided inputs), numpy's IndexError for an index out of range with
nothing written, numpy's path where the kernel does not apply, and gradients of X[idx] that
agree across modes."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import scatter
from autodiff_jit.primitives import host, indexing as I

rng = np.random.default_rng(5)
ROWS = host.scatter()
pytestmark = pytest.mark.skipif(ROWS is None or not scatter._kernels(),
                                reason="no compiled scatter kernel")


def _add_at(g, idx, size):
    out = np.zeros((size,) + g.shape[1:], g.dtype)
    np.add.at(out, idx, g)
    return out


def _same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,rest,size", [(8000, (11,), 50), (500, (3,), 2000), (300, (), 7),
                                         (200, (2, 3), 4), (64, (40,), 1), (1, (5,), 3)])
def test_rows_are_add_at_to_the_bit(n, rest, size, dtype):
    # magnitudes over many orders: any change in the order of the sums shows in the bits
    g = (rng.standard_normal((n,) + rest) * 10.0 ** rng.integers(-8, 8, (n,) + rest)
         ).astype(dtype)
    idx = rng.integers(-size, size, n)          # repeated, and negative from the end
    _same(scatter.take_add_rows(g, idx, size), _add_at(g, idx, size))


def test_special_values_and_signed_zeros():
    g = np.array([[-0.0, 1.0], [-0.0, np.inf], [np.nan, -np.inf], [-0.0, 2.0]] * 20)
    idx = np.tile([0, 1, 2, 1], 20)
    got = scatter.take_add_rows(g, idx, 4)
    _same(got, _add_at(g, idx, 4))
    assert not np.signbit(got[0, 0]) and not np.signbit(got[3, 0])   # from +0.0, as numpy


@pytest.mark.parametrize("idx_dtype", [np.int32, np.int16, np.uint8, np.uint32, np.int64])
def test_index_dtypes_and_strided_inputs(idx_dtype):
    big = rng.standard_normal((300, 8))
    g = big[::3, 1::2]                          # neither operand contiguous
    idx = rng.integers(0, 9, 200)[::2].astype(idx_dtype)
    _same(scatter.take_add_rows(g, idx, 9), _add_at(g, idx, 9))


def test_not_applicable_is_none():
    g = rng.standard_normal((100, 3))
    assert scatter.take_add_rows(g.astype(np.float16), np.zeros(100, int), 2) is None
    assert scatter.take_add_rows(np.ones((100, 0)), np.zeros(100, int), 2) is None
    assert scatter.take_add_rows(g, np.zeros(100, np.uint64), 2) is None
    out = scatter.take_add_rows(np.ones((0, 3)), np.zeros(0, int), 4)
    _same(out, np.zeros((4, 3)))


@pytest.mark.parametrize("bad", [5, 17, -6, -100])
def test_an_index_out_of_range_raises_numpys_error(bad):
    g = np.ones((100, 2))
    idx = np.zeros(100, np.int64)
    idx[37] = bad
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds for axis 0 with size 5"):
        scatter.take_add_rows(g, idx, 5)
    with pytest.raises(IndexError):
        np.add.at(np.zeros((5, 2)), idx, g)      # numpy refuses it too
    g2 = np.ones((2, 100))                       # through take_add on axis 1: that axis named
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds for axis 1 with size 5"):
        I._take_add_impl(g2, idx, axis=1, size=5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("g_shape,idx_shape,axis", [
    ((120, 4), (120,), 0), ((3, 120), (120,), 1), ((2, 3, 150, 2), (150,), 2),
    ((10, 12, 5), (10, 12), 0), ((4, 10, 12), (10, 12), 1), ((7, 70), (70,), 1)])
def test_take_add_impl_is_add_at_on_any_axis(g_shape, idx_shape, axis, dtype):
    g = (rng.standard_normal(g_shape) * 10.0 ** rng.integers(-6, 6, g_shape)).astype(dtype)
    idx = rng.integers(-6, 6, idx_shape)
    out_shape = g_shape[:axis] + (6,) + g_shape[axis + len(idx_shape):]
    want = np.zeros(out_shape, dtype)
    np.add.at(want, (slice(None),) * axis + (idx,), g)
    got = I._take_add_impl(g, idx, axis=axis, size=6)
    _same(got, want)
    assert got.flags.c_contiguous


def test_take_add_impl_without_the_kernel():
    g = rng.standard_normal((120, 4))
    idx = rng.integers(0, 6, 120)
    saved = dict(host._scatter_state)
    host.install_scatter(None)
    try:
        _same(I._take_add_impl(g, idx, axis=0, size=6), _add_at(g, idx, 6))
    finally:
        host._scatter_state.update(saved)


def test_threads_at_once():
    g = rng.standard_normal((4000, 7))
    idx = rng.integers(0, 30, 4000)
    want = _add_at(g, idx, 30)
    bad = []

    def work():
        for _ in range(50):
            if not np.array_equal(scatter.take_add_rows(g, idx, 30), want):
                bad.append(1)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_gather_gradient_agrees_across_modes():
    table = rng.standard_normal((40, 6))
    idx = rng.integers(-40, 40, 500)
    w = rng.standard_normal((500, 6))

    def f(t):
        return np.sum(np.tanh(t[idx]) * w)
    want = ad.grad(f, mode="interpret")(table)
    for mode in ("tape", "compiled"):
        got = ad.grad(f, mode=mode)(table)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    assert np.array_equal(ad.grad(f, mode="tape")(table), want)   # the same impl, the same bits
    # against the analytic gradient: (1 - tanh^2) w summed over each row's gathers
    ref = np.zeros_like(table)
    np.add.at(ref, idx, (1 - np.tanh(table[idx]) ** 2) * w)
    np.testing.assert_allclose(want, ref, rtol=1e-13, atol=1e-13)


_COLD = """
import json, sys
import numpy as np
import autodiff_jit as ad
from autodiff_jit.backend import cache, scatter
idx = np.arange(300) % 7
g = ad.grad(lambda t: np.sum(t[idx] ** 2), mode="interpret")(np.ones((7, 3)))
print(json.dumps({"ok": bool(np.all(g == 2.0 * np.bincount(idx)[:, None])),
                  "kernel": bool(scatter._kernels()), "stats": cache.stats(),
                  "llvm": "llvmlite.binding" in sys.modules}))
"""


def test_the_kernel_is_support_code_from_the_disk_cache(tmp_path):
    # the first process compiles the kernel into the cache; the next maps it (where objload
    # can, without loading LLVM)
    from autodiff_jit.backend import objload
    from tests.helpers import fresh_processes_with_cache
    first, second = fresh_processes_with_cache(_COLD, tmp_path)
    assert first["ok"] and second["ok"] and first["kernel"] and second["kernel"]
    assert first["stats"]["helper_misses"] == 1 and first["stats"]["helper_stores"] == 1
    assert second["stats"]["helper_hits"] == 1 and second["stats"]["helper_misses"] == 0
    assert second["llvm"] != objload.supported()
