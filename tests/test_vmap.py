"""vmap: each primitive's batching rule against a Python loop of the unbatched function (random
shapes, axes and batch sizes, compiled and interpret), the slow path for primitives without a
rule, in_axes/out_axes/pytrees, composition (vmap of grad, grad of vmap, vmap of vmap, jit,
jvp), and errors."""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autodiff_jit as ad
from autodiff_jit.primitives import elementwise as E
from autodiff_jit.vmap import BatchingFallbackWarning, batch_function

from helpers import MODES

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


def loop(f, in_axes, args, out_axis=0):
    """The reference: f applied to each example with numpy, results stacked."""
    size = next(np.shape(a)[d] for a, d in zip(args, in_axes) if d is not None)
    outs = [f(*[a if d is None else np.take(a, b, axis=d) for a, d in zip(args, in_axes)])
            for b in range(size)]
    return np.stack([np.asarray(o) for o in outs], axis=out_axis)


def check(f, in_axes, args, mode, out_axis=0, rtol=1e-12, atol=1e-12):
    got = ad.vmap(f, in_axes=in_axes, out_axes=out_axis, mode=mode)(*args)
    expected = loop(f, in_axes, args, out_axis)
    assert np.shape(got) == expected.shape, (np.shape(got), expected.shape)
    assert np.asarray(got).dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


@st.composite
def batched(draw, min_rank=0, max_rank=3, dtype=np.float64, lo=-2.0, hi=2.0):
    """(example shape, batch axis, size, batched array) with a seeded random array."""
    rank = draw(st.integers(min_rank, max_rank))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    axis = draw(st.integers(0, rank))
    size = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 16))
    full = shape[:axis] + (size,) + shape[axis:]
    x = np.random.default_rng(seed).uniform(lo, hi, full).astype(dtype)
    return shape, axis, size, x


# ---------------------------------------------------------------------------------------------
# per-primitive rules, property-based

UNARY = [np.exp, np.sin, np.tanh, np.abs, np.negative, np.sign, np.floor,
         lambda x: x ** 3, lambda x: x.astype(np.float32), np.logical_not,
         lambda x: ad.stop_gradient(x)]


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(data=batched(), k=st.integers(0, len(UNARY) - 1))
def test_unary(mode, data, k):
    shape, axis, size, x = data
    f = UNARY[k]
    if f is np.logical_not:
        x = x > 0
    check(f, (axis,), (x,), mode)


BINARY = [np.add, np.multiply, np.maximum, np.minimum, np.subtract, np.less,
          lambda a, b: a / (b * b + 1.0), lambda a, b: np.abs(a) ** b,
          lambda a, b: np.where(a > b, a, 2.0 * b)]


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(a=batched(), b=batched(), k=st.integers(0, len(BINARY) - 1),
       which=st.sampled_from(["both", "a", "b"]))
def test_binary_broadcasting(mode, a, b, k, which):
    """Operands of different ranks broadcast like numpy; either or both batched."""
    (sa, da, n, xa), (sb, db, _, _) = a, b
    # b's example shape: a broadcast-compatible suffix of a's, made batched with a's size
    sb = sa[len(sa) - min(len(sa), len(sb)):]
    rng = np.random.default_rng(len(sb))
    db = min(db, len(sb))
    xb = rng.uniform(0.5, 2.0, sb[:db] + (n,) + sb[db:])
    if which == "a":
        xb, db = rng.uniform(0.5, 2.0, sb), None
    elif which == "b":
        xa, da = rng.uniform(-2.0, 2.0, sa), None
    check(BINARY[k], (da, db), (xa, xb), mode)


def _reductions(axis, keep):
    return [lambda x: np.sum(x, axis=axis, keepdims=keep), lambda x: np.max(x, axis=axis),
            lambda x: np.min(x, axis=axis), lambda x: np.prod(x, axis=axis),
            lambda x: np.argmax(x, axis=axis), lambda x: np.cumsum(x, axis=axis),
            lambda x: np.mean(x, axis=axis)]


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(data=batched(min_rank=1), k=st.integers(0, 6), ax=st.integers(0, 2), keep=st.booleans())
def test_reductions(mode, data, k, ax, keep):
    shape, axis, size, x = data
    f = _reductions(ax % len(shape), keep)[k]
    check(f, (axis,), (x,), mode)


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(data=batched(min_rank=1), k=st.integers(0, 5), seed=st.integers(0, 99))
def test_shape_ops(mode, data, k, seed):
    shape, axis, size, x = data
    rng = np.random.default_rng(seed)
    perm = tuple(rng.permutation(len(shape)))
    other = rng.normal(size=shape)
    fs = [lambda v: v.reshape(-1), lambda v: np.transpose(v, perm),
          lambda v: np.broadcast_to(v, (2,) + shape), lambda v: np.concatenate([v, other], 0),
          lambda v: v[..., ::-1][:1], lambda v: np.stack([v, other], axis=-1)]
    check(fs[k], (axis,), (x,), mode)


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(data=batched(min_rank=1), seed=st.integers(0, 99),
       which=st.sampled_from(["x", "idx", "both"]), gather_axis=st.integers(0, 2))
def test_take_with_batched_indices(mode, data, seed, which, gather_axis):
    shape, axis, size, x = data
    g = gather_axis % len(shape)
    rng = np.random.default_rng(seed)
    idx = rng.integers(-shape[g], shape[g], (size, 2))
    f = lambda v, i: np.take(v, i, axis=g)  # noqa: E731
    if which == "x":
        check(f, (axis, None), (x, idx[0]), mode)
    elif which == "idx":
        check(f, (None, 0), (np.take(x, 0, axis=axis), idx), mode)
    else:
        check(f, (axis, 0), (x, idx), mode)


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(data=batched(min_rank=1), seed=st.integers(0, 99),
       which=st.sampled_from(["g", "idx", "both"]))
def test_take_add_through_the_gradient_of_a_gather(mode, data, seed, which):
    """take_add (the transpose of take) appears in grad of x[idx]; repeated indices add up."""
    shape, axis, size, x = data
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, shape[0], (size, 3))
    w = rng.normal(size=(3,) + shape[1:])
    f = ad.grad(lambda v, i: np.sum(v[i] * w), mode=mode)

    def ref(v, i):
        out = np.zeros_like(v)
        np.add.at(out, i, w)
        return out
    dx, di = {"g": (axis, None), "idx": (None, 0), "both": (axis, 0)}[which]
    xs = x if dx is not None else np.take(x, 0, axis=axis)
    ids = idx if di is not None else idx[0]
    got = ad.vmap(f, in_axes=(dx, di), mode=mode)(xs, ids)
    np.testing.assert_allclose(got, loop(ref, (dx, di), (xs, ids)), rtol=1e-12, atol=1e-12)


DOTS = [lambda a, b: a @ b, lambda a, b: np.dot(a, b), lambda a, b: np.einsum("ij,jk->ki", a, b),
        lambda a, b: np.tensordot(a, b, axes=1), lambda a, b: np.outer(a[0], b[:, 0])]


@pytest.mark.parametrize("mode", MODES)
@SETTINGS
@given(m=st.integers(1, 3), k=st.integers(1, 3), n=st.integers(1, 3), size=st.integers(1, 3),
       da=st.sampled_from([None, 0, 1, 2]), db=st.sampled_from([None, 0, 1, 2]),
       which=st.integers(0, len(DOTS) - 1))
def test_dot_general(mode, m, k, n, size, da, db, which):
    if da is None and db is None:
        da = 0
    rng = np.random.default_rng(m * 100 + k * 10 + n)

    def arr(shape, d):
        return rng.normal(size=shape if d is None else shape[:d] + (size,) + shape[d:])
    check(DOTS[which], (da, db), (arr((m, k), da), arr((k, n), db)), mode, rtol=1e-12)


def test_batched_matmul_is_one_dot_general():
    """The dot_general rule adds a batch dimension instead of looping."""
    fn = ad.make_ir(lambda a, b: a @ b)(np.ones((2, 3)), np.ones((3, 4)))
    bfn, dims = batch_function(fn, [0, 0], 5)
    assert [e.prim.name for e in bfn.eqns] == ["dot_general"]
    assert bfn.eqns[0].params["batch"] == ((0,), (0,)) and dims == [0]


# ---------------------------------------------------------------------------------------------
# the slow path: a primitive without a batching rule loops over the batch, correctly

@pytest.mark.parametrize("mode", MODES)
def test_primitive_without_rule_falls_back_to_a_loop(mode, monkeypatch):
    monkeypatch.setattr(E.exp, "batch", None)
    vmap_module = sys.modules["autodiff_jit.vmap"]  # (ad.vmap is the function)
    monkeypatch.setattr(vmap_module, "_FALLBACKS", set())
    x = np.random.default_rng(1).normal(size=(4, 3))
    f = lambda v: np.exp(v) * 2.0  # noqa: E731
    with pytest.warns(BatchingFallbackWarning, match="'exp' has no batching rule"):
        check(f, (1,), (x,), mode)
    from autodiff_jit.vmap import fallback_primitives
    assert "exp" in fallback_primitives()
    fn = ad.make_ir(f)(np.ones(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BatchingFallbackWarning)
        bfn, _ = batch_function(fn, [0], 3)
    assert [e.prim.name for e in bfn.eqns].count("exp") == 3  # one per example


def test_empty_batch():
    out = ad.vmap(lambda v: np.sum(np.sin(v)))(np.zeros((0, 3)))
    assert out.shape == (0,)


# ---------------------------------------------------------------------------------------------
# in_axes, out_axes, pytrees, axis_size

@pytest.mark.parametrize("mode", MODES)
def test_pytrees_and_axes(mode):
    rng = np.random.default_rng(2)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    xs = rng.normal(size=(3, 5))  # examples along axis 1

    def f(p, x):
        y = x @ p["w"] + p["b"]
        return {"y": y, "n": np.sum(y * y)}, (y[0], p["b"])

    out = ad.vmap(f, in_axes=(None, 1), out_axes=({"y": 1, "n": 0}, (0, None)), mode=mode)(
        params, xs)
    ref = [f(params, xs[:, i]) for i in range(5)]
    np.testing.assert_allclose(out[0]["y"], np.stack([r[0]["y"] for r in ref], 1), rtol=1e-12)
    np.testing.assert_allclose(out[0]["n"], [r[0]["n"] for r in ref], rtol=1e-12)
    np.testing.assert_allclose(out[1][0], [r[1][0] for r in ref], rtol=1e-12)
    np.testing.assert_allclose(out[1][1], params["b"])  # unbatched, out_axes None


@pytest.mark.parametrize("mode", MODES)
def test_dict_prefix_negative_axes_kwargs_and_axis_size(mode):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 2)), rng.normal(size=(2, 4))
    f = lambda t: t["a"] * t["b"].T  # noqa: E731
    got = ad.vmap(f, in_axes=({"a": 0, "b": -1},), mode=mode)({"a": a, "b": b})
    np.testing.assert_allclose(got, a * b.T)
    got = ad.vmap(lambda x, *, y: x + y, mode=mode)(a, y=a)  # keyword arguments: axis 0
    np.testing.assert_allclose(got, 2 * a)
    got = ad.vmap(lambda x: x * 2.0, in_axes=None, axis_size=3, mode=mode)(a)
    assert got.shape == (3, 4, 2)
    np.testing.assert_allclose(got, np.broadcast_to(2 * a, (3, 4, 2)))
    got = ad.vmap(lambda x: x, in_axes=0, out_axes=-1, mode=mode)(a)  # out_axes -1: last
    np.testing.assert_allclose(got, a.T)


def test_errors():
    x3, y4 = np.ones((3, 2)), np.ones((4, 2))

    def f(x, y):
        return x + y
    with pytest.raises(ValueError, match=r"x \(axis 0\) has size 3, but y \(axis 0\) has size 4"):
        ad.vmap(f)(x3, y4)
    with pytest.raises(ValueError, match=r"'b'\]? \(axis 0\) has size 4|size 4"):
        ad.vmap(lambda t: t["a"] + t["b"])({"a": x3, "b": y4})
    with pytest.raises(ValueError, match="scalar"):
        ad.vmap(lambda s: s * 2.0)(1.0)
    with pytest.raises(ValueError, match="axis_size"):
        ad.vmap(lambda s: s * 2.0, in_axes=None)(x3)
    with pytest.raises(ValueError, match="2 entries but f was called with 1"):
        def g(x): return x
        g.__name__ = "f"
        ad.vmap(g, in_axes=(0, 0))(x3)
    with pytest.raises(ValueError, match="out of range"):
        ad.vmap(lambda x: x, in_axes=2)(x3)
    with pytest.raises(ValueError, match="out_axes is None"):
        ad.vmap(lambda x: x * 2.0, out_axes=None)(x3)
    with pytest.raises(TypeError, match="in_axes"):
        ad.vmap(lambda x: x, in_axes="0")(x3)
    with pytest.raises(ValueError, match="expects a tuple or list of length 2"):
        ad.vmap(lambda t: t[0], in_axes=((0, 0),))((x3, x3, x3))


# ---------------------------------------------------------------------------------------------
# composition

def _loss(w, x, y):
    return (np.tanh(x @ w) - y) ** 2


@pytest.mark.parametrize("mode", MODES)
def test_vmap_of_grad_is_per_example_gradients(mode):
    rng = np.random.default_rng(4)
    w, xs, ys = rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=6)
    g = ad.vmap(ad.grad(_loss, mode=mode), in_axes=(None, 0, 0), mode=mode)(w, xs, ys)
    ref = np.stack([ad.grad(_loss, mode="interpret")(w, x, y) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(g, ref, rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_grad_of_vmap_and_vmap_of_vmap(mode):
    rng = np.random.default_rng(5)
    w, xs, ys = rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=6)
    batch_loss = ad.vmap(_loss, in_axes=(None, 0, 0), mode=mode)
    g = ad.grad(lambda w: np.sum(batch_loss(w, xs, ys)), mode=mode)(w)
    ref = sum(ad.grad(_loss, mode="interpret")(w, x, y) for x, y in zip(xs, ys))
    np.testing.assert_allclose(g, ref, rtol=1e-12)
    # vmap of vmap: a matrix of pairwise results
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    pair = ad.vmap(ad.vmap(lambda u, v: np.sum((u - v) ** 2), in_axes=(None, 0), mode=mode),
                   in_axes=(0, None), mode=mode)
    np.testing.assert_allclose(pair(a, b), ((a[:, None] - b[None]) ** 2).sum(-1), rtol=1e-12)
    # vmap inside jit, and jvp of vmap
    jitted = ad.jit(lambda a: batch_loss(w, a, ys) * 2.0, mode=mode)
    np.testing.assert_allclose(jitted(xs), 2 * batch_loss(w, xs, ys), rtol=1e-12)
    t = rng.normal(size=3)
    _, tangent = ad.jvp(lambda w: batch_loss(w, xs, ys), (w,), (t,), mode=mode)
    np.testing.assert_allclose(tangent, [ad.grad(_loss, mode="interpret")(w, x, y) @ t
                                         for x, y in zip(xs, ys)], rtol=1e-10)
    # grad of vmap of grad (a second derivative through the batch)
    gg = ad.grad(lambda w: np.sum(ad.vmap(ad.grad(_loss, argnums=1, mode=mode),
                                          in_axes=(None, 0, 0), mode=mode)(w, xs, ys)),
                 mode=mode)(w)
    eps = 1e-6
    fd = [(np.sum(ad.vmap(ad.grad(_loss, argnums=1), in_axes=(None, 0, 0))(w + eps * e, xs, ys)) -
           np.sum(ad.vmap(ad.grad(_loss, argnums=1), in_axes=(None, 0, 0))(w - eps * e, xs, ys)))
          / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(gg, fd, rtol=1e-6, atol=1e-6)


def test_tape_mode():
    rng = np.random.default_rng(6)
    w, xs, ys = rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=6)
    out = ad.vmap(_loss, in_axes=(None, 0, 0), mode="tape")(w, xs, ys)
    np.testing.assert_allclose(out, [_loss(w, x, y) for x, y in zip(xs, ys)], rtol=1e-12)
    # on tape Tensors the batched computation is recorded on the tape: backward works
    wt = ad.tensor(w, requires_grad=True)
    total = ad.vmap(_loss, in_axes=(None, 0, 0), mode="tape")(wt, xs, ys).sum()
    total.backward()
    ref = sum(ad.grad(_loss, mode="interpret")(w, x, y) for x, y in zip(xs, ys))
    np.testing.assert_allclose(wt.grad.numpy(), ref, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# region ops: batched regions, not per-example loops

def _newton_sqrt(a):
    return ad.while_loop(lambda c: np.abs(c[0] ** 2 - a) > 1e-12,
                         lambda c: ((c[0] + a / c[0]) / 2.0, c[1] + 1), (a, 0))


def _prims(fn):
    return [e.prim.name for e in fn.eqns]


@pytest.mark.parametrize("mode", MODES)
def test_region_ops_batch_their_regions(mode):
    rng = np.random.default_rng(7)
    xs = rng.uniform(0.5, 2.0, (4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchingFallbackWarning)  # no slow path here
        # scan (fori_loop) with a batched carry and a batched const
        f = lambda x: ad.fori_loop(0, 5, lambda i, y: y * 0.9 + np.sin(x), x * 0.0)  # noqa: E731
        check(f, (0,), (xs,), mode)
        # while: a batched predicate (each example stops on its own trip count)
        a = np.array([2.0, 9.0, 100.0, 1.0])
        got = ad.vmap(_newton_sqrt, mode=mode)(a)
        ref = [_newton_sqrt(v) for v in a]
        np.testing.assert_allclose(got[0], [r[0] for r in ref], rtol=1e-15)
        np.testing.assert_array_equal(got[1], [r[1] for r in ref])
        # cond: batched predicate (both branches + select) and unbatched predicate
        g = lambda x: ad.cond(x > 1.0, lambda x: np.sin(x), lambda x: x ** 2, x)  # noqa: E731
        check(g, (0,), (np.array([0.5, 1.5, 2.0, -1.0]),), mode)
        h = lambda x, p: ad.cond(p > 0, lambda x: np.sin(x), lambda x: x ** 2, x)  # noqa: E731
        np.testing.assert_allclose(ad.vmap(h, in_axes=(0, None), mode=mode)(xs, 1.0), np.sin(xs))
        np.testing.assert_allclose(ad.vmap(h, in_axes=(None, 0), mode=mode)(xs[0], np.array(
            [1.0, -1.0])), [np.sin(xs[0]), xs[0] ** 2])
        # grad of a vmapped cond
        np.testing.assert_allclose(
            ad.grad(lambda x: np.sum(ad.vmap(g)(x)), mode=mode)(np.array([0.5, 1.5])),
            [1.0, np.cos(1.5)], rtol=1e-14)
    fn = ad.make_ir(lambda x: ad.fori_loop(0, 5, lambda i, y: y * 0.9 + np.sin(x), x))(np.ones(3))
    assert _prims(batch_function(fn, [0], 8)[0]).count("scan") == 1


@pytest.mark.parametrize("mode", MODES)
def test_vmap_of_grad_through_a_while_loop_and_custom_vjp(mode):
    """The recording while of a VJP is per example (the slow path); still exact."""
    a = np.array([2.0, 9.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BatchingFallbackWarning)
        got = ad.vmap(ad.grad(lambda a: _newton_sqrt(a)[0], mode=mode), mode=mode)(a)
    np.testing.assert_allclose(got, 0.5 / np.sqrt(a), rtol=1e-10)

    @ad.custom_vjp
    def clip_grad(x):
        return np.sin(x)
    clip_grad.defvjp(lambda x: (np.sin(x), np.cos(x)), lambda c, g: (np.clip(g * c, -0.5, 0.5),))
    xs = np.array([0.1, 1.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", BatchingFallbackWarning)
        np.testing.assert_allclose(ad.vmap(clip_grad, mode=mode)(xs), np.sin(xs))
        np.testing.assert_allclose(ad.vmap(ad.grad(clip_grad, mode=mode), mode=mode)(xs),
                                   np.clip(np.cos(xs), -0.5, 0.5))
        np.testing.assert_allclose(ad.grad(lambda x: np.sum(ad.vmap(clip_grad)(x)), mode=mode)(xs),
                                   np.clip(np.cos(xs), -0.5, 0.5))


@pytest.mark.parametrize("mode", MODES)
def test_special_values_and_float32(mode):
    x = np.array([[np.inf, -np.inf, np.nan], [-0.0, 0.0, 1.0]])
    f = lambda v: np.maximum(v, 0.0) + np.abs(v) * 2.0 - v  # noqa: E731
    with np.errstate(invalid="ignore"):  # inf - inf (numpy and the interpreter)
        got = ad.vmap(f, mode=mode)(x)
        np.testing.assert_array_equal(got, np.stack([f(r) for r in x]))
    neg0 = ad.vmap(lambda v: -v, mode=mode)(np.zeros((2, 2)))
    assert np.all(np.signbit(neg0))
    # float32 stays float32; values within the rounding of three operations (compiled code
    # may fuse u * w - u into one FMA): 3 * eps32 * (|u w| + |u| + |w|)
    a = np.random.default_rng(8).normal(size=(3, 4)).astype(np.float32)
    b = np.random.default_rng(9).normal(size=4).astype(np.float32)[:3]
    g = lambda u, w: u * w - u + w  # noqa: E731
    got = ad.vmap(g, in_axes=(1, None), mode=mode)(a, b)
    assert got.dtype == np.float32
    u = a.T.astype(np.float64)
    bound = 3 * np.finfo(np.float32).eps * (np.abs(u * b) + np.abs(u) + np.abs(b))
    ref = np.stack([g(a[:, i], b) for i in range(4)])
    assert np.all(np.abs(got.astype(np.float64) - ref) <= bound)


@pytest.mark.parametrize("mode", MODES)
def test_vmap_of_jvp_and_of_jacobians(mode):
    rng = np.random.default_rng(10)
    x, T = rng.normal(size=3), rng.normal(size=(5, 3))
    f = lambda v: np.sin(v) * np.sum(v)  # noqa: E731
    J = ad.jacfwd(f, mode="interpret")(x)
    got = ad.vmap(lambda t: ad.jvp(f, (x,), (t,), mode=mode)[1], mode=mode)(T)
    np.testing.assert_allclose(got, T @ J.T, rtol=1e-12)
    X = rng.normal(size=(4, 3))
    for jac in (ad.jacfwd, ad.jacrev):
        got = ad.vmap(jac(f, mode=mode), mode=mode)(X)
        np.testing.assert_allclose(got, np.stack([jac(f, mode="interpret")(v) for v in X]),
                                   rtol=1e-12)


def test_unmapped_python_ints_stay_static():
    """As in JAX, an unmapped Python int is a Python value inside fun (a size, a trip count)."""
    f = ad.vmap(lambda x, n: sum(x ** k for k in range(n)), in_axes=(0, None))
    x = np.arange(3.0)
    np.testing.assert_allclose(f(x, 3), 1 + x + x ** 2)
    np.testing.assert_allclose(f(x, 2), 1 + x)
    assert "integer_pow" in str(f.ir(x, 3))
    with pytest.raises(ValueError, match=r"axis_size is 4, but x \(axis 0\) has size 3"):
        ad.vmap(lambda x: x, axis_size=4)(x)
