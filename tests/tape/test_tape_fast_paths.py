"""The tape-mode speed paths give the values and gradients of the general paths they shortcut.

Each fast path (a numpy formulation of a primitive's impl, an in-place step in a VJP rule, a
Tensor operator that records the numpy layer's primitives directly) is checked against the
path it replaces: numpy itself for forward values (bit for bit where the fast path claims it),
the interpreter (the reference mode) for gradients.
"""
from __future__ import annotations

import math

import importlib

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.primitives import broadcast as B, indexing as I, reductions as RD

rng = np.random.default_rng(17)


def _data(v):
    return np.asarray(getattr(v, "_data", v))


def _special_rows(m, dtype):
    """Rows of ordinary and special values: signed zeros, infinities, nan, wide exponents."""
    x = (rng.standard_normal((3000, m)) * np.exp(rng.standard_normal((3000, m)) * 8))
    x[0] = -0.0
    x[1, 0], x[1, 1] = 0.0, -0.0
    x[2, 0], x[2, 1] = np.inf, -np.inf
    x[3, -1] = np.nan
    x[4, 0] = np.inf
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("m", range(2, 8))
def test_short_last_axis_sum_is_numpys_to_the_bit(m, dtype):
    x = _special_rows(m, dtype)
    with np.errstate(invalid="ignore"):
        got = B._sum_impl(x, axes=(1,))
        want = np.sum(x, axis=1)
        # a non-contiguous operand (a column slice) and a 3-D one take the same path
        got_t = B._sum_impl(x.T.copy().T, axes=(1,))
        x3 = x.reshape(1000, 3, m)
        got3 = B._sum_impl(x3, axes=(2,))
    assert got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got_t, want)
    np.testing.assert_array_equal(got3, np.sum(x3, axis=2))


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("shape", [(1000, 5, 2), (300, 16, 8), (400, 3, 4, 2), (500, 2, 3)])
def test_middle_axis_sum_is_numpys_to_the_bit(shape, dtype):
    x = _special_rows(math.prod(shape[1:]), dtype)[:shape[0]].reshape(shape)
    with np.errstate(invalid="ignore"):
        got = B._sum_impl(x, axes=(1,))
        want = np.sum(x, axis=1)
    assert got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_slice_sum_check_ran_on_this_numpy():
    # the import-time check decides whether the slice path is used at all; on a numpy that
    # sums short rows left to right (all numpy 2 releases) it is
    assert B._SLICE_SUM_EXACT is True


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("m", (2, 3, 5, 10, 25, 32))
@pytest.mark.parametrize("name", ("reduce_max", "reduce_min"))
def test_short_last_axis_extremum_is_numpys_to_the_bit(name, m, dtype):
    x = _special_rows(m, dtype)
    x[5, :] = np.nan
    x[6, ::2] = -0.0
    x[6, 1::2] = 0.0
    # a tie of zeros in both orders, at the start and the end of a row (numpy's SIMD schedule
    # decides which zero np.min returns: the fast path must agree on every CPU)
    x[7:9] = np.abs(x[7:9]) + 1
    x[7, 0], x[7, 1] = -0.0, 0.0
    x[8, -2], x[8, -1] = 0.0, -0.0
    prim = RD.reduce_max_p if name == "reduce_max" else RD.reduce_min_p
    ref = np.max if name == "reduce_max" else np.min
    with np.errstate(invalid="ignore"):
        got = prim.impl(x, axes=(1,))
        got3 = prim.impl(x.reshape(1000, 3, m), axes=(2,))
        got_t = prim.impl(x.T.copy().T, axes=(1,))   # a non-contiguous operand
        want = ref(x, axis=1)
    assert type(got) is np.ndarray and got.dtype == want.dtype == dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(got3, ref(x.reshape(1000, 3, m), axis=2))
    np.testing.assert_array_equal(got_t, want)


def test_slice_extremum_check_ran_on_this_numpy():
    assert RD._SLICE_EXTREMUM_EXACT is True


def test_short_axis_max_gradient_matches_the_interpreter():
    x = rng.standard_normal((300, 5))
    x[::4, 1] = x[::4, 3]   # ties share the gradient
    f = lambda x: np.sum(np.max(x, axis=1) * np.min(x, axis=-1, keepdims=True)[:, 0])  # noqa: E731
    got = _grads(f, (x,), "tape")
    want = _grads(f, (x,), "interpret")
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("shape", [(500,), (500, 11), (500, 3, 2)])
def test_take_add_rows_match_add_at(shape):
    g = rng.standard_normal(shape)
    g[::7] = -0.0
    idx = rng.integers(-40, 40, shape[0])  # repeats and negative indices
    want = np.zeros((40,) + shape[1:])
    np.add.at(want, idx, g)
    got = I._take_add_impl(g, idx, axis=0, size=40)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_take_add_float32_keeps_its_dtype():
    g = rng.standard_normal((200, 3)).astype(np.float32)
    idx = rng.integers(0, 5, 200)
    got = I._take_add_impl(g, idx, axis=0, size=5)
    want = np.zeros((5, 3), np.float32)
    np.add.at(want, idx, g)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def _grads(f, args, mode):
    return ad.grad(f, argnums=tuple(range(len(args))), mode=mode)(*args)


@pytest.mark.parametrize("f", [
    lambda x: np.sum(x * x),                                   # mul of an input with itself
    lambda x: np.sum(np.tanh(x) * np.sin(x) / np.sqrt(1.0 + x * x)),   # fresh-buffer unaries
    lambda x: np.sum(np.cos(x[:, None, :] - x[None, :, :]) / (2.0 + x[:, :1])),  # broadcasts
    lambda x: np.sum(1.0 / (x * x + 1.0) - x[None, :, :]),
])
def test_rules_with_fewer_temporaries_match_the_interpreter(f):
    x = rng.standard_normal((4, 3))
    got = _grads(f, (x,), "tape")
    want = _grads(f, (x,), "interpret")
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-14)


def test_mul_of_a_tensor_with_itself_and_with_its_detached_copy():
    x = ad.tensor(np.array([1.5, -2.0, 3.0]), requires_grad=True)
    np.sum(x * x).backward()
    np.testing.assert_array_equal(x.grad, 2 * np.array([1.5, -2.0, 3.0]))
    # a second Tensor on the same data: each factor gets the other one's value, once
    x2 = ad.tensor(np.array([1.5, -2.0, 3.0]), requires_grad=True)
    y = x2.detach().requires_grad_()
    np.sum(x2 * y).backward()
    np.testing.assert_array_equal(x2.grad, np.array([1.5, -2.0, 3.0]))
    np.testing.assert_array_equal(y.grad, np.array([1.5, -2.0, 3.0]))


def test_sub_of_a_broadcast_operand_sums_before_negating():
    a = rng.standard_normal((5, 4)).astype(np.float32)
    b = rng.standard_normal((1, 4)).astype(np.float32)
    ga, gb = _grads(lambda a, b: np.sum(np.exp(a - b)), (a, b), "tape")
    assert gb.dtype == np.float32 and gb.shape == (1, 4)
    np.testing.assert_allclose(gb, -np.sum(np.exp(a - b), axis=0, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(ga, np.exp(a - b), rtol=1e-6)


@pytest.mark.parametrize("shapes", [((64, 300), (300, 20)), ((1000, 3), (3, 2)), ((8, 5), (5, 4))])
def test_matmul_weight_gradient_either_way_round(shapes):
    # wide a^T g is computed as (g^T a)^T; both orders are the same sums
    a = rng.standard_normal(shapes[0])
    w = rng.standard_normal(shapes[1])
    g = ad.grad(lambda w: np.sum(np.tanh(a @ w)), mode="tape")(w)
    want = a.T @ (1.0 - np.tanh(a @ w) ** 2)
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12 * shapes[0][0])


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_logaddexp_on_tensors_matches_the_numpy_layer(dtype):
    vals = np.array([0.5, -3.0, 700.0, -np.inf, np.inf, np.nan, -800.0, 0.0, -0.0], dtype)
    other = vals[::-1].copy()
    cases = [lambda x: np.logaddexp(0.0, x), lambda x: np.logaddexp(x, dtype(1.5)),
             lambda x: np.logaddexp(x, other), lambda x: np.logaddexp(x, x)]
    _logaddexp_matches_interpret(cases, vals, other, dtype)


def _logaddexp_matches_interpret(cases, vals, other, dtype):
    """Each case's value, sign of zero and gradient on a Tensor, and logaddexp of two Tensors,
    against the general path: the numpy layer's logaddexp run by the interpreter."""
    with np.errstate(all="ignore"):
        for f in cases:
            t = ad.tensor(vals, requires_grad=True)
            r = f(t)
            r.sum().backward()
            ref = ad.jit(f, mode="interpret")(vals)
            gref = ad.grad(lambda x: np.sum(f(x)), mode="interpret")(vals)
            assert _data(r).dtype == np.asarray(ref).dtype == dtype
            np.testing.assert_array_equal(_data(r), ref)
            np.testing.assert_array_equal(np.signbit(_data(r)), np.signbit(ref))
            np.testing.assert_array_equal(t.grad, gref)
        a, b = ad.tensor(vals, requires_grad=True), ad.tensor(other, requires_grad=True)
        np.sum(np.logaddexp(a, b)).backward()
        ga, gb = ad.grad(lambda a, b: np.sum(np.logaddexp(a, b)), argnums=(0, 1),
                         mode="interpret")(vals, other)
    np.testing.assert_array_equal(a.grad, ga)
    np.testing.assert_array_equal(b.grad, gb)


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("special", (False, True))
@pytest.mark.parametrize("simd_exp", (False, True))
def test_logaddexp_one_exp_pass_is_the_numpy_layer_to_the_bit(dtype, special, simd_exp,
                                                              monkeypatch):
    # float64 from 64 elements with a finite shift, where numpy's exp is scalar code (no
    # AVX-512): both exps' values come from one exp of the sum (one of a - m, b - m is 0 at
    # each element); with an infinity or NaN, for float32 and with a vectorized exp, two exps.
    # Both choices are run here whatever this CPU has.
    monkeypatch.setattr(importlib.import_module("autodiff_jit.tape.tensor"), "_SIMD_EXP_F64",
                        simd_exp)
    rng = np.random.default_rng(3)
    vals = (30 * rng.standard_normal(300)).astype(dtype)
    other = (30 * rng.standard_normal(300)).astype(dtype)
    other[:40] = vals[:40]                      # ties
    other[40:45] = -0.0
    vals[45:50] = 0.0
    vals[50] = -np.inf
    if special:
        vals[60], other[61] = np.inf, np.nan
    _logaddexp_matches_interpret([lambda x: np.logaddexp(0.0, x),
                                  lambda x: np.logaddexp(x, other)], vals, other, dtype)


@pytest.mark.parametrize("key", [
    (slice(None), None, slice(1, 3)), (0,), (1, 2), (-1, slice(None, None, -1)), (None,),
    (slice(None), 0), (0, 1, 2), (None, 0, None, 1), (slice(5, 9),), (slice(None), slice(0, 0)),
    (1, None), (slice(None), slice(None), slice(None)),
])
def test_basic_index_tuples_match_the_numpy_layer(key):
    x = np.arange(24.0).reshape(2, 3, 4)
    t = ad.tensor(x, requires_grad=True)
    r = t[key]
    np.testing.assert_array_equal(_data(r), x[key])
    w = np.arange(float(x[key].size)).reshape(x[key].shape)
    np.sum(r * w).backward()
    want = ad.grad(lambda v: np.sum(v[key] * w), mode="interpret")(x)
    np.testing.assert_array_equal(t.grad, want)


def test_basic_index_tuples_refuse_what_numpy_refuses():
    t = ad.tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match="out of bounds"):
        t[0, 5]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0]


def test_bundle_adjustment_objective_agrees_across_modes():
    r = ad.compare("bundle_adjustment", size="quick", quick=True)
    assert r.agreed and r.case.name == "bundle_adjustment"


@pytest.mark.parametrize("fn", [np.sum, np.max, np.min])
@pytest.mark.parametrize("axis,keepdims", [
    (1, True), (1, False), (-1, True), (0, False), ((0, 2), True), ((2, 0), False),
    ((-3, -1), True), ((0, 1, 2), True), ((0, 1, 2), False), (None, False), (None, True),
])
@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_axis_reductions_match_the_numpy_layer(fn, axis, keepdims, dtype):
    x = np.round(rng.standard_normal((3, 4, 5)), 1).astype(dtype)   # rounded: max has ties
    x[0, 0, :2] = x[0, 0, 2]
    t = ad.tensor(x, requires_grad=True)
    r = fn(t, axis=axis, keepdims=keepdims)
    want = fn(x, axis=axis, keepdims=keepdims)
    assert _data(r).dtype == want.dtype and _data(r).shape == np.shape(want)
    np.testing.assert_array_equal(_data(r), want)
    w = (np.arange(np.size(want), dtype=dtype) + 1).reshape(np.shape(want))
    np.sum(r * w).backward()
    gref = ad.grad(lambda v: np.sum(fn(v, axis=axis, keepdims=keepdims) * w),
                   mode="interpret")(x)
    assert t.grad.dtype == dtype
    np.testing.assert_array_equal(t.grad, gref)
    # positional axis takes the same path
    np.testing.assert_array_equal(_data(fn(t, axis)), fn(x, axis))


def test_axis_reductions_refuse_what_numpy_refuses():
    t = ad.tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(Exception, match="out of bounds|out of range"):
        np.sum(t, axis=2)
    with pytest.raises(ValueError, match="duplicate|repeated"):
        np.max(t, axis=(0, 0))
    with pytest.raises(ValueError, match="zero-size"):
        np.max(ad.tensor(np.zeros((2, 0)), requires_grad=True), axis=1)
    with pytest.raises(NotImplementedError, match="out"):
        np.sum(t, axis=0, out=np.zeros(3))
    # a 0-d Tensor and axis=() keep numpy's own handling
    np.testing.assert_array_equal(_data(np.sum(t, axis=())), np.zeros((2, 3)))


@pytest.mark.parametrize("key", [
    (slice(None), np.array([0, 2, 2, 1])),                 # ADBench's padded[:, idx]
    (np.array([1, 0, 1]),),
    (np.array([[1, -2], [0, 1]]), slice(None)),            # negative entries, a 2-D index
    (slice(None), slice(None), np.array([3, -1, 0])),
    (slice(None), np.array([], dtype=np.int64)),
    (slice(None), np.array([2, 1], dtype=np.int32)),
])
def test_single_index_array_gather_matches_the_numpy_layer(key):
    x = np.arange(24.0).reshape(2, 3, 4)
    t = ad.tensor(x, requires_grad=True)
    r = t[key]
    np.testing.assert_array_equal(_data(r), x[key])
    w = np.arange(float(x[key].size)).reshape(x[key].shape) + 1.0
    np.sum(r * w).backward()
    want = ad.grad(lambda v: np.sum(v[key] * w), mode="interpret")(x)
    np.testing.assert_array_equal(t.grad, want)


def test_single_index_array_gather_keeps_its_own_index():
    x = np.arange(6.0)
    idx = np.array([0, 0, 5])
    t = ad.tensor(x, requires_grad=True)
    r = t[(idx,)]
    idx[:] = 1   # a later write into the caller's index array changes nothing recorded
    np.sum(r).backward()
    np.testing.assert_array_equal(t.grad, [2.0, 0, 0, 0, 0, 1.0])


def test_single_index_array_gather_refuses_what_numpy_refuses():
    t = ad.tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match="out of bounds"):
        t[:, np.array([0, 3])]
    with pytest.raises(IndexError, match="out of bounds"):
        t[:, np.array([-4])]
    with pytest.raises(IndexError, match="integer"):
        t[:, np.array([0.0])]
    # a boolean mask keeps the numpy layer's path
    np.testing.assert_array_equal(_data(t[:, np.array([True, False, True])]), np.zeros((2, 2)))


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("sa,sb", [
    ((1, 5, 2), (300, 5, 2)),      # GMM's Qdiags[None] * xc: a contraction over the rows
    ((5, 2), (300, 5, 2)),         # fewer dims
    ((300, 1, 2), (300, 5, 2)),    # a middle broadcast axis: product, then the sum
    ((300, 5, 2), (2,)),
    ((1, 1), (40, 3)),
    ((1,), (7,)),
])
def test_mul_partial_of_a_broadcast_factor(sa, sb, dtype):
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    g = rng.standard_normal(np.broadcast_shapes(sa, sb)).astype(dtype)
    from autodiff_jit.primitives import elementwise as E
    ca, cb = E.mul.vjp(g, a * b, a, b)
    bound = np.prod(g.shape) * np.finfo(dtype).eps * 4
    for c, x, other in ((ca, a, b), (cb, b, a)):
        want = B.unbroadcast((g.astype(np.float64) * other), x.shape)
        assert c.shape == x.shape and c.dtype == dtype
        np.testing.assert_allclose(c, want, rtol=0, atol=bound * np.max(np.abs(g)) *
                                   np.max(np.abs(other)))
    # only one partial asked for
    only_b = E.mul.vjp(g, a * b, a, b, needs=(False, True))
    assert only_b[0] is None and only_b[1].shape == b.shape


def test_gmm_objective_tape_matches_interpret():
    from autodiff_jit.bench.objectives import OBJECTIVES
    obj = OBJECTIVES["gmm"]
    p = {"d": 3, "k": 4, "n": 50}
    fn, args = obj.make_fn(p), obj.make_args(p, np.random.default_rng(3))
    got = ad.grad(fn, argnums=obj.argnums, mode="tape")(*args)
    want = ad.grad(fn, argnums=obj.argnums, mode="interpret")(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-11 * np.max(np.abs(w)))


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_concatenate_matches_the_numpy_layer(axis, dtype):
    a = rng.standard_normal((3, 4)).astype(dtype)
    b = rng.standard_normal((3, 4)).astype(dtype)
    c = np.zeros((3, 4), dtype)
    t = ad.tensor(a, requires_grad=True)
    u = ad.tensor(b, requires_grad=True)
    r = np.concatenate([c, t, u, t], axis=axis)
    want = np.concatenate([c, a, b, a], axis=axis)
    assert _data(r).dtype == dtype
    np.testing.assert_array_equal(_data(r), want)
    w = np.arange(want.size, dtype=dtype).reshape(want.shape)
    np.sum(r * w).backward()
    ga, gb = ad.grad(lambda a, b: np.sum(np.concatenate([c, a, b, a], axis=axis) * w),
                     argnums=(0, 1), mode="interpret")(a, b)
    np.testing.assert_array_equal(t.grad, ga)
    np.testing.assert_array_equal(u.grad, gb)


def test_concatenate_other_arguments_keep_the_numpy_layer():
    t = ad.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError):
        np.concatenate([t, np.ones((3, 3))], axis=0)          # shapes differ off the axis
    r = np.concatenate([t, np.ones((2, 2), np.float32)])      # mixed dtypes: promoted
    assert _data(r).dtype == np.float64 and _data(r).shape == (4, 2)
    r = np.concatenate([t, t], axis=None)                     # flattened
    assert _data(r).shape == (8,)
    with pytest.raises(NotImplementedError, match="out"):
        np.concatenate([t, t], out=np.zeros((4, 2)))
    r = np.concatenate((t,))                                  # one operand: a copy node
    assert r.grad_fn is not None and not np.shares_memory(_data(r), _data(t))


# 2-D products through np.dot (primitives/linalg.py mm2): np.matmul's BLAS call, to the bit
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (10, 3, 2), (1, 7, 5), (5, 7, 1), (33, 1, 17),
                                   (64, 100, 10), (256, 784, 128)])
def test_mm2_is_matmul_to_the_bit(m, k, n, dtype):
    from autodiff_jit.primitives.linalg import mm2
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    at = np.ascontiguousarray(a.T).T      # F-contiguous (a transposed view)
    bt = np.ascontiguousarray(b.T).T
    for x, y in ((a, b), (at, b), (a, bt), (at, bt), (a[:, ::-1], b[::-1]), (a, a.T[:, :0])):
        if x.shape[1] != y.shape[0]:
            continue
        got, want = mm2(x, y), np.matmul(x, y)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)
    sq = rng.standard_normal((m, k)).astype(dtype)
    assert np.array_equal(mm2(sq, sq.T), np.matmul(sq, sq.T))   # (syrk in both)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mm2_column_times_row_is_matmul_to_the_bit(dtype):
    # inner length 1 with a large result: np.dot, also for the row view v.T of a column
    # (which np.matmul runs through its own loop); zero factors included
    from autodiff_jit.primitives.linalg import mm2
    u = rng.standard_normal((200, 1)).astype(dtype)
    v = rng.standard_normal((300, 1)).astype(dtype)
    u[3], v[7] = -0.0, 0.0
    for x, y in ((u, v.T), (u, np.ascontiguousarray(v.T)), (u[::2], v.T)):
        got, want = mm2(x, y), np.matmul(x, y)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,m", [(3, 4), (200, 200), (40, 1000), (1, 2000)])
def test_outer_np_is_multiply_outer_to_the_bit(n, m, dtype):
    from autodiff_jit.primitives.linalg import outer_np
    u = rng.standard_normal(n).astype(dtype)
    v = rng.standard_normal(m).astype(dtype)
    specials = (u, v), (-u, v)
    with_zero_u, with_zero_v = u.copy(), v.copy()
    with_zero_u[0], with_zero_v[-1] = -0.0, 0.0      # -0.0 products: the multiply's signs
    nonfinite = u.copy()
    nonfinite[-1] = np.inf
    if n > 1:
        nonfinite[0] = np.nan
    for x, y in specials + ((with_zero_u, v), (u, with_zero_v), (nonfinite, -v)):
        got, want = outer_np(x, y), np.multiply.outer(x, y)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(want))
    mixed = outer_np(u, v.astype(np.float16))                   # other dtypes: the multiply
    assert mixed.dtype == np.multiply.outer(u, v.astype(np.float16)).dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matrix_vector_gradients_have_the_interpreters_signed_zeros(dtype):
    # d/dW of c . (W @ x) is the outer product c x^T, which dot_general (the interpreter,
    # compiled code) adds to +0.0: a zero in x gives +0.0 entries in every mode (tape mode's
    # GEMM, outer_dot), never -0.0 from the product; so does a vector dot product's scalar
    # cotangent times the other vector
    from autodiff_jit.primitives.linalg import outer_dot
    W = rng.standard_normal((40, 50)).astype(dtype)
    x = rng.standard_normal(50).astype(dtype)
    y = rng.standard_normal(40).astype(dtype)
    x[3], y[5] = 0.0, -0.0
    c, c2 = -np.linspace(1, 2, 40).astype(dtype), -np.linspace(1, 2, 50).astype(dtype)
    for f in (lambda W: np.sum(c * (W @ x)), lambda W: np.sum(c2 * (y @ W)),
              lambda W: -2.0 * np.dot(W[0], x)):
        got = ad.grad(f, mode="tape")(W)
        for mode in ("interpret", "compiled"):
            want = ad.grad(f, mode=mode)(W)
            assert np.array_equal(got, want)
            assert np.array_equal(np.signbit(got), np.signbit(want)), mode
    u, v = rng.standard_normal(7).astype(dtype), x[:9].copy()
    for a, b in ((u, v), (u.astype(np.float16), v.astype(np.float16)),
                 (np.arange(3), np.arange(4))):
        got = outer_dot(a, b)
        assert got.dtype == np.multiply.outer(a, b).dtype
        assert np.array_equal(got, np.multiply.outer(a, b))
        if got.dtype.kind == "f":
            assert not np.signbit(got[:, 3]).any()      # (b[3] == 0): +0.0


def test_solve_gradient_keeps_negative_zeros_in_tape_mode():
    # d/dA of sum(w * solve(A, b)) = -(A^-T w) x^T: the exact zero in x (a diagonal A) gives a
    # column of -0.0, which tape mode (outer_np) keeps as the interpreter does
    a = np.diag(rng.uniform(1.0, 2.0, 40))
    b = rng.standard_normal(40)
    b[5] = 0.0

    def f(a):
        return np.sum(np.linspace(1.0, 2.0, 40) * np.linalg.solve(a, b))
    got = ad.grad(f, mode="tape")(a)
    want = ad.grad(f, mode="interpret")(a)
    assert np.signbit(got[:, 5]).all()
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))


def test_mm2_keeps_matmul_for_other_dtypes():
    from autodiff_jit.primitives.linalg import mm2
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert np.array_equal(mm2(a, a.T), np.matmul(a, a.T)) and mm2(a, a.T).dtype == np.int64
    h = np.ones((2, 3), np.float16)
    assert mm2(h, h.T).dtype == np.float16


def test_small_unbroadcast_and_scalar_expand_back_match_the_general_paths():
    g = rng.standard_normal((10, 2))
    for shape, axes in (((2,), 0), ((1, 2), 0), ((10, 1), 1), ((), (0, 1))):
        want = np.sum(g, axis=axes).reshape(shape)
        assert np.array_equal(B.unbroadcast(g, shape), want)
    s = np.float64(0.25)
    out = B.expand_back(s, (3, 4), (0, 1))
    assert out.shape == (3, 4) and out.dtype == np.float64 and np.all(out == 0.25)
    assert out.flags.writeable
    big = B.expand_back(s, (200, 100), (0, 1))       # above _FRESH_MAX: a broadcast view
    assert big.shape == (200, 100) and np.all(big == 0.25)
    v = B.expand_back(np.array([1.0, 2.0]), (3, 2), (0,))
    assert np.array_equal(v, np.array([[1.0, 2.0]] * 3))


@pytest.mark.parametrize("name,shapes", [("add", ((4, 3), (3,))), ("add", ((4, 3), (4, 1))),
                                         ("sub", ((4, 3), (3,))), ("sub", ((3,), (4, 3))),
                                         ("sub", ((4, 3), (4, 3))), ("add", ((), (2,)))])
def test_linear_binary_vjps_match_their_general_path(name, shapes):
    from autodiff_jit.primitives import elementwise as E
    prim = getattr(E, name)
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1])
    out = prim.impl(a, b)
    g = rng.standard_normal(np.shape(out))
    for needs in ((True, True), (True, False), (False, True)):
        got = prim.vjp(g, out, a, b, needs=needs)
        for i, shape in enumerate(shapes):
            if not needs[i]:
                assert got[i] is None
                continue
            full = g if i == 0 or name == "add" else -g
            axes = tuple(range(g.ndim - len(shape))) + tuple(
                j + g.ndim - len(shape) for j, d in enumerate(shape) if d == 1 and
                g.shape[j + g.ndim - len(shape)] != 1)
            want = np.sum(full, axis=axes).reshape(shape) if axes else full
            assert np.shape(got[i]) == shape
            np.testing.assert_allclose(got[i], want, rtol=1e-15, atol=1e-15)


# pairwise broadcasts with a short last axis (primitives/elementwise.py _pairwise_binary):
# numpy's results to the bit, in C order, through one merged inner loop
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sa,sb", [((1000, 1, 2), (1, 5, 2)), ((1, 5, 2), (1000, 1, 2)),
                                   ((300, 1, 3), (1, 40, 3)), ((7, 300, 1, 2), (7, 1, 9, 2)),
                                   ((2, 1000, 1, 2), (1, 1, 5, 2)), ((1000, 1, 4), (1, 50, 4)),
                                   ((1000, 5, 1, 2), (1, 1, 3, 2)), ((100, 1, 2), (1, 5, 2)),
                                   ((1000, 1, 9), (1, 5, 9)), ((40, 30, 2), (40, 30, 2)),
                                   ((1, 2000, 2), (3, 1, 2))])
def test_pairwise_broadcast_is_numpys_to_the_bit(sa, sb, dtype):
    from autodiff_jit.primitives import elementwise as E
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    a.reshape(-1)[::7] = -0.0
    b.reshape(-1)[::5] = np.inf
    for prim, ufunc in ((E.add, np.add), (E.sub, np.subtract), (E.mul, np.multiply)):
        with np.errstate(all="ignore"):
            got, want = prim.impl_nd(a, b), ufunc(a, b)
        assert got.shape == want.shape and got.dtype == want.dtype and got.flags.c_contiguous
        assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(want))


def test_pairwise_broadcast_keeps_numpys_errors_and_other_operands():
    from autodiff_jit.primitives import elementwise as E
    with pytest.raises(ValueError, match="could not be broadcast"):
        E.sub.impl_nd(np.ones((10, 3, 2)), np.ones((10, 4, 2)))
    a = np.ones((1000, 1, 2))
    assert E.sub.impl_nd(a, np.ones((1, 5, 2), np.float32)).dtype == np.float64
    v = np.ones((1, 5, 4))[:, :, ::2]                      # a non-contiguous full operand
    assert np.array_equal(E.sub.impl_nd(a, v), a - v)
    assert E.add.impl_nd(np.float64(1.0), np.float64(2.0)) == 3.0


def test_pairwise_difference_gradient_in_tape_mode():
    x = rng.standard_normal((1000, 2))
    m = rng.standard_normal((5, 2))

    def f(x, m):
        d = x[:, None, :] - m[None, :, :]
        return np.sum(np.exp(-np.sum(d * d, axis=2)))
    got = ad.grad(f, argnums=(0, 1), mode="tape")(x, m)
    want = ad.grad(f, argnums=(0, 1), mode="interpret")(x, m)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
