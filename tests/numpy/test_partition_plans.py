"""np.partition / np.argpartition on rows long enough for the partition and argpartition
primitives (not the sort of short rows), under every plan of the vector passes
(backend/selectvec.py: "avx512" compresses, "avx2" vector compares, "off" scalar loops),
each forced on this host where it can run: values bit for bit those of the argpartition
order (pivots at kth, the other ranks in index order between them; signed zeros and NaN
payloads kept), the kth values numpy's; gradients along that permutation (the unpermute
scatter) in compiled, interpret and tape mode, and against finite differences."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.backend import engine, vecsort
from autodiff_jit.backend.selectlib import SAMPLE_MIN
from autodiff_jit.primitives import bind
from autodiff_jit.primitives.selection import argpartition_p, partition_p
from autodiff_jit.primitives.sorting import unpermute_p
from table import ALL_MODES, check_grads

FEATURES = engine.host_cpu_features().split(",")
HOST = {"avx512": "+avx512f" in FEATURES, "avx2": "+avx2" in FEATURES, "off": True}
PLANS = [pytest.param(p, marks=pytest.mark.skipif(not HOST[p], reason=f"the host has no {p}"))
         for p in ("off", "avx2", "avx512")]

_r = np.random.default_rng(12)


@pytest.fixture(params=PLANS)
def plan(request, monkeypatch):
    monkeypatch.setattr(vecsort, "FORCE", request.param)
    return request.param


def _reference(x, kth, axis=-1):
    """The argpartition order along axis: a stable argsort's ranks regrouped so that the
    element of rank k sits at each k in kth and the others keep index order in between."""
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    order = np.argsort(x, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n), -1)
    seg = np.searchsorted(np.asarray(kth), np.arange(n), side="left")
    key = np.where(np.isin(np.arange(n), kth), 2 * seg + 1, 2 * seg)
    return np.moveaxis(np.argsort(key[rank], axis=-1, kind="stable"), -1, axis)


def _rows(kind, shape):
    if kind == "normal":
        return _r.standard_normal(shape)
    if kind == "ties":   # few values, zeros of both signs
        return _r.integers(-1, 2, shape) * np.where(_r.random(shape) < 0.5, -1.0, 1.0)
    if kind == "special":   # nan (two payloads), +-inf, +-0.0
        x = _r.choice([-np.inf, np.inf, -0.0, 0.0, 1.0, -2.0, np.nan], shape)
        x[_r.random(shape) < 0.05] = np.frombuffer(np.int64(0x7ff8000000000123).tobytes())[0]
        return x
    if kind == "nan_heavy":
        return np.where(_r.random(shape) < 0.7, np.nan, _r.standard_normal(shape))
    if kind == "equal":
        return np.full(shape, -0.0)
    if kind == "int":
        return _r.integers(-5, 5, shape)
    if kind == "f32":
        return _r.standard_normal(shape).astype(np.float32)
    raise ValueError(kind)


KINDS = ("normal", "ties", "special", "nan_heavy", "equal", "int", "f32")


def _bits(a):
    a = np.asarray(a)
    return a.view(np.int32 if a.dtype == np.float32 else np.int64) if a.dtype.kind == "f" else a


@pytest.mark.parametrize("n", (301, SAMPLE_MIN + 5))
def test_kernels_match_the_argpartition_order(plan, n):
    """Both rows' lengths are no multiple of the 8 lanes (the scalar tail runs); SAMPLE_MIN
    and longer take the sampled bracket (its vector pass), all take the vector placing."""
    for kind in KINDS:
        x = _rows(kind, (2, n))
        for kth in ((0,), (n // 2,), (n - 1,), (3, n // 3, n - 2)):
            want = _reference(x, kth)
            idx = ad.jit(lambda a: bind(argpartition_p, a, axis=1, kth=kth))(x)
            np.testing.assert_array_equal(idx, want, err_msg=f"{kind} {kth}")
            vals, perm = ad.jit(lambda a: bind(partition_p, a, axis=1, kth=kth))(x)
            np.testing.assert_array_equal(perm, want, err_msg=f"{kind} {kth}")
            np.testing.assert_array_equal(_bits(vals), _bits(np.take_along_axis(x, want, 1)),
                                          err_msg=f"{kind} {kth}")
            # np.partition's forward reads the values alone (the kernel skips the indices)
            got = ad.jit(lambda a: np.partition(a, kth, axis=1))(x)
            assert got.dtype == x.dtype
            np.testing.assert_array_equal(_bits(got), _bits(vals), err_msg=f"{kind} {kth}")
            ks = list(kth)
            np.testing.assert_array_equal(got[:, ks], np.partition(x, kth, axis=1)[:, ks])


@pytest.mark.parametrize("mode", ALL_MODES)
def test_partition_property_dtypes_and_axes(mode):
    """numpy's contract on each axis (axis 0 is strided: the scalar loops), in every mode, for
    dtypes that partition as their widening (int32, bool) and come back as given."""
    for dt in (np.float64, np.float32, np.int32, np.bool_):
        x = (_r.standard_normal((40, 300)) * 50).astype(dt)
        for axis, kth in ((-1, 150), (1, (7, 200)), (0, 20), (None, 5000)):
            got = np.asarray(ad.jit(lambda a: np.partition(a, kth, axis=axis), mode=mode)(x))
            want = np.partition(x, kth, axis=axis)
            assert got.dtype == want.dtype and got.shape == want.shape, (dt, axis)
            flat = np.moveaxis(got.reshape(-1) if axis is None else got, axis or 0, -1)
            ks = np.atleast_1d(kth)
            np.testing.assert_array_equal(flat[..., ks], np.moveaxis(
                want.reshape(-1) if axis is None else want, axis or 0, -1)[..., ks])
            for k in ks:   # everything before kth is <=, after is >=
                assert np.all(flat[..., :k] <= flat[..., k:k + 1]), (dt, axis, k)
                assert np.all(flat[..., k + 1:] >= flat[..., k:k + 1]), (dt, axis, k)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_small_and_empty(mode):
    for x, kth in ((np.array([3.0]), 0), (np.zeros((0, 300)), 5), (np.array([[2.0], [1.0]]), 0),
                   (np.array([np.nan, -0.0, 0.0]), 1)):
        got = np.asarray(ad.jit(lambda a: np.partition(a, kth), mode=mode)(x))
        np.testing.assert_array_equal(got, np.partition(x, kth))
    for x in (np.zeros(0), np.zeros((2, 0))):   # numpy checks no kth on an empty axis
        for kth in (0, 5, [0, 3]):
            assert np.asarray(ad.jit(lambda a: np.partition(a, kth), mode=mode)(x)).shape == \
                x.shape
            got = np.asarray(ad.jit(lambda a: np.argpartition(a, kth), mode=mode)(x))
            assert got.shape == x.shape and got.dtype == np.int64
    with pytest.raises(ValueError, match="out of bounds"):
        ad.jit(lambda a: np.partition(a, 3), mode=mode)(np.zeros(3))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the loss is inf - inf
@pytest.mark.parametrize("dt", (np.float64, np.float32))
@pytest.mark.parametrize("axis", (-1, 0))
def test_gradient_follows_the_permutation(plan, dt, axis):
    """d sum(partition(x) * w) / dx[perm[j]] = w[j], exactly, in every mode (NaNs and ties
    in x: the permutation's elements get the weight)."""
    x = _rows("special", (3, 400)).astype(dt)
    x = x if axis == -1 else x.T.copy()
    kth = (5, 200)
    w = (np.cos(np.arange(x.size)).reshape(x.shape) + 1.5).astype(dt)
    perm = _reference(x, kth, axis)
    want = np.empty_like(x)
    np.put_along_axis(want, perm, w, axis)
    for mode in ALL_MODES:
        g = ad.grad(lambda a: np.sum(np.partition(a, kth, axis=axis) * w), mode=mode)(x)
        assert g.dtype == dt
        np.testing.assert_array_equal(g, want, err_msg=mode)


def test_gradient_vs_finite_differences():
    """Functions of the kth elements and of whole segments (numpy orders a segment's
    elements in any way, so nothing else is a function of x)."""
    x = _r.permutation(600).reshape(2, 300) * 0.037 - 3.0

    def f(a, ks, axis):
        p = np.moveaxis(np.partition(a, ks, axis=axis), axis, -1)
        return np.sum(p[:, list(ks)] * np.arange(1.0, len(ks) + 1)) + \
            np.sum(p[:, :ks[0]] ** 3) - 0.5 * np.sum(p[:, ks[-1] + 1:] ** 2)
    for ks in ((150,), (1, 10, 298)):
        check_grads(lambda a: f(a, ks, -1), [x], modes=ALL_MODES, rtol=1e-5, atol=1e-5)
        check_grads(lambda a: f(a, ks, 0), [x.T.copy()], modes=ALL_MODES, rtol=1e-5, atol=1e-5)


def test_unpermute_rules():
    """unpermute's VJP is the gather by the permutation, its JVP itself (it is linear); the
    kernel equals numpy's put_along_axis for permutations along either axis."""
    x = _r.standard_normal((4, 50))
    for axis in (0, 1):
        perm = np.argsort(_r.random(x.shape), axis=axis)
        want = np.empty_like(x)
        np.put_along_axis(want, perm, x, axis)
        for mode in ("compiled", "interpret"):
            got = ad.jit(lambda a, p: bind(unpermute_p, a, p, axis=axis), mode=mode)(x, perm)
            np.testing.assert_array_equal(got, want)
        check_grads(lambda a: np.sum(bind(unpermute_p, a, perm, axis=axis) * want), [x],
                    modes=("compiled", "interpret"), rtol=1e-6, atol=1e-6)
        t = _r.standard_normal(x.shape)
        _, jt = ad.jvp(lambda a: bind(unpermute_p, a, perm, axis=axis), (x,), (t,))
        want_t = np.empty_like(t)
        np.put_along_axis(want_t, perm, t, axis)
        np.testing.assert_array_equal(jt, want_t)


def test_partition_grad_rules(plan):
    """partition_grad(x, g) sends g back along partition(x)'s permutation (the kernel runs
    the placing backwards); it is linear in g (VJP: the gather by the permutation; JVP:
    itself) and batches along its axis (vmap of np.partition's gradient)."""
    from autodiff_jit.primitives.selection import partition_grad_p
    x = _rows("special", (3, 400))
    g = _r.standard_normal(x.shape)
    kth = (7,)
    perm = _reference(x, kth)
    want = np.empty_like(g)
    np.put_along_axis(want, perm, g, 1)
    for mode in ("compiled", "interpret"):
        got = ad.jit(lambda a, c: bind(partition_grad_p, a, c, axis=1, kth=kth), mode=mode)(x, g)
        np.testing.assert_array_equal(got, want, err_msg=mode)
    w = _r.standard_normal(x.shape)
    for mode in ALL_MODES:
        dg = ad.grad(lambda c: np.sum(bind(partition_grad_p, x, c, axis=1, kth=kth) * w),
                     mode=mode)(g)
        np.testing.assert_array_equal(dg, np.take_along_axis(w, perm, 1), err_msg=mode)
    _, jt = ad.jvp(lambda c: bind(partition_grad_p, x, c, axis=1, kth=kth), (g,), (w,))
    want_t = np.empty_like(w)
    np.put_along_axis(want_t, perm, w, 1)
    np.testing.assert_array_equal(jt, want_t)
    xs = _r.standard_normal((4, 300))
    per_row = ad.vmap(ad.grad(lambda a: np.sum(np.partition(a, 100) * np.arange(300.0))))(xs)
    for r in range(4):
        np.testing.assert_array_equal(per_row[r], ad.grad(
            lambda a: np.sum(np.partition(a, 100) * np.arange(300.0)))(xs[r]))


def test_inplace_method_partition_of_long_rows():
    """ndarray.partition writes its result into the array (in tape mode: a Tensor written in
    place after partition recorded it, which its backward allows: it reads the permutation,
    not x); the gradient of order-free functions of the result, equal in every mode."""
    x = _r.standard_normal((2, 300))

    def f(a):
        y = a * 1.0
        y.partition((20, 150))
        return np.sum(y[:, [20, 150]] * np.array([2.0, -3.0])) + np.sum(y[:, :20] ** 2) + \
            np.sum(np.sin(y[:, 151:]))
    want = ad.grad(f, mode="interpret")(x)
    for mode in ALL_MODES:
        np.testing.assert_allclose(ad.grad(f, mode=mode)(x), want, rtol=1e-13, atol=1e-14,
                                   err_msg=mode)
    check_grads(f, [x], modes=ALL_MODES, rtol=1e-5, atol=1e-5)
