"""np.convolve / np.correlate in float64, float32 and int64: the convolve primitive
(primitives/convolution.py; compiled: backend/convolve_kernels.py, whose short-kernel,
few-output and general paths each get kernels here: 2-8 taps, 9+ taps, windows of at most 8
outputs). Values vs numpy within the sums' error bound, special values exactly, gradients vs
the analytic (Toeplitz) rule and central differences, the JVP vs differences, every mode."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.primitives import bind
from autodiff_jit.primitives.convolution import convolve_p

MODES = ("compiled", "interpret", "tape")
CONV_MODES = ("full", "same", "valid")
_r = np.random.default_rng(41)


def _fns(mode):
    return {"convolve": lambda a, v: np.convolve(a, v, mode),
            "convolve_swapped": lambda a, v: np.convolve(v, a, mode),
            "correlate": lambda a, v: np.correlate(a, v, mode),
            "correlate_swapped": lambda a, v: np.correlate(v, a, mode)}


def _run(f, mode, *args):
    if mode == "tape":
        out = f(*[ad.tensor(x) for x in args])
        return np.asarray(out.numpy() if hasattr(out, "numpy") else out)
    return ad.jit(f, mode=mode)(*args)


def _bound(f, a, v, dtype):
    """Each output sums at most min(n, m) products: error <= k eps sum |a_j v_k|."""
    k = min(a.size, v.size)
    return 2 * k * np.finfo(dtype).eps * f(np.abs(a), np.abs(v)).astype(np.float64)


TAPS = (2, 5, 8, 300)   # the short-kernel path (<= 8 taps) and the general one


@pytest.mark.parametrize("taps", TAPS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("conv_mode", CONV_MODES)
@pytest.mark.parametrize("mode", MODES)
def test_values_within_the_sums_bound(conv_mode, mode, dtype, taps):
    a = _r.standard_normal(700).astype(dtype)
    v = _r.standard_normal(taps).astype(dtype)
    for name, f in _fns(conv_mode).items():
        want = f(a, v)
        got = _run(f, mode, a, v)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
        assert (err <= _bound(f, a, v, dtype)).all(), (name, err.max())


@pytest.mark.parametrize("taps", (3, 400))
@pytest.mark.parametrize("mode", MODES[:2])
def test_int64_exact_and_equal_lengths(mode, taps):
    a, v = _r.integers(-9, 9, 400), _r.integers(-9, 9, taps)
    for conv_mode in CONV_MODES:
        for name, f in _fns(conv_mode).items():
            got = _run(f, mode, a, v)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, f(a, v), err_msg=name)


def _same(got, want, msg):
    assert got.dtype == want.dtype and got.shape == want.shape, msg
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=msg)
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)],
                                  err_msg=msg)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-11, atol=1e-12, err_msg=msg)
    zero = want == 0
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]), err_msg=msg)


@pytest.mark.parametrize("taps", (3, 8, 280))
@pytest.mark.parametrize("conv_mode", CONV_MODES)
@pytest.mark.parametrize("mode", MODES)
def test_special_values_at_the_edges_as_numpy(conv_mode, mode, taps):
    """inf/NaN at both ends of both inputs meet no padding zero; all -0.0 sums give +0.0."""
    a, v = _r.standard_normal(600), _r.standard_normal(taps)
    a[0], a[-1], a[5], v[0], v[-1], v[taps // 2] = np.inf, -np.inf, -0.0, np.nan, np.inf, -0.0
    a[300:305] = [np.nan, 1.0, -np.inf, 2.0, -0.0]
    for name, f in _fns(conv_mode).items():
        with np.errstate(all="ignore"):
            _same(_run(f, mode, a, v), f(a, v), name)
    neg = np.full(400, -0.0)
    for name, f in _fns(conv_mode).items():
        _same(_run(f, mode, neg, np.ones(taps)), f(neg, np.ones(taps)), name)
        _same(_run(f, mode, neg, -np.ones(taps)), f(neg, -np.ones(taps)), name)


@pytest.mark.parametrize("taps", (9, 15, 16, 17, 31, 32, 33, 47, 65))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_pass_steps_and_tails(dtype, taps):
    """The general path's common pass goes 2 vectors of 512 bits a step (16 float64, 32
    float32 products), the rest by a scalar loop: spans around those steps, within the
    sums' bound; a NaN, an inf and a -0.0 inside the spans as numpy."""
    a = _r.standard_normal(257).astype(dtype)
    v = _r.standard_normal(taps).astype(dtype)
    for conv_mode in CONV_MODES:
        for name, f in _fns(conv_mode).items():
            want, got = f(a, v), ad.jit(f)(a, v)
            err = np.abs(got.astype(np.float64) - want.astype(np.float64))
            assert (err <= _bound(f, a, v, dtype)).all(), (conv_mode, name, err.max())
    a = a.astype(np.float64)
    a[100], a[130], a[131] = np.nan, np.inf, -0.0
    for conv_mode in CONV_MODES:
        for name, f in _fns(conv_mode).items():
            with np.errstate(all="ignore"):
                _same(ad.jit(f)(a, v.astype(np.float64)), f(a, v.astype(np.float64)),
                      f"{conv_mode} {name}")


def _toeplitz_grads(f, a, v, w):
    """d sum(w * f(a, v)) by the chain rule through f's exact Jacobians (f is bilinear:
    its Jacobian in a is f(e_j, v) column by column)."""
    ga = np.array([np.dot(w, f(np.eye(a.size)[j], v)) for j in range(a.size)])
    gv = np.array([np.dot(w, f(a, np.eye(v.size)[k])) for k in range(v.size)])
    return ga, gv


@pytest.mark.parametrize("taps", (2, 7, 260))
@pytest.mark.parametrize("conv_mode", CONV_MODES)
@pytest.mark.parametrize("mode", MODES)
def test_gradients_analytic_and_finite_differences(conv_mode, mode, taps):
    a, v = _r.standard_normal(300), _r.standard_normal(taps)
    for name, f in _fns(conv_mode).items():
        w = np.cos(np.arange(f(a, v).size)) + 1.5

        def loss(a, v, f=f, w=w):
            return np.sum(f(a, v) * w)
        if mode == "tape":
            ta, tv = ad.tensor(a, requires_grad=True), ad.tensor(v, requires_grad=True)
            loss(ta, tv).backward()
            ga, gv = np.asarray(ta.grad), np.asarray(tv.grad)
        else:
            ga, gv = ad.grad(loss, argnums=(0, 1), mode=mode)(a, v)
        wa, wv = _toeplitz_grads(f, a, v, w)
        np.testing.assert_allclose(ga, wa, rtol=1e-12, atol=1e-11, err_msg=name)
        np.testing.assert_allclose(gv, wv, rtol=1e-12, atol=1e-11, err_msg=name)
        # central differences along random directions (the loss is bilinear: exact up to
        # rounding, so a loose bound suffices)
        for _ in range(2):
            da, dv = _r.standard_normal(a.size), _r.standard_normal(v.size)
            h = 1e-3
            fd = (loss(a + h * da, v + h * dv) - loss(a - h * da, v - h * dv)) / (2 * h)
            np.testing.assert_allclose(ga @ da + gv @ dv, fd, rtol=1e-8, err_msg=name)


@pytest.mark.parametrize("taps", (4, 270))
@pytest.mark.parametrize("mode", ("compiled", "interpret"))
def test_jvp_and_second_order_vs_differences(mode, taps):
    a, v = _r.standard_normal(320), _r.standard_normal(taps)
    da, dv = _r.standard_normal(320), _r.standard_normal(taps)
    for conv_mode in CONV_MODES:
        f = _fns(conv_mode)["correlate"]
        out, tan = ad.jvp(f, (a, v), (da, dv), mode=mode)
        h = 1e-4
        fd = (f(a + h * da, v + h * dv) - f(a - h * da, v - h * dv)) / (2 * h)
        np.testing.assert_allclose(tan, fd, rtol=1e-6, atol=1e-8)

        # the gradient of a gradient: d/da sum(grad_v L * c) with L = sum(f(a, v)^2) / 2
        c = _r.standard_normal(taps)

        def inner(a, v, f=f, c=c):
            return np.sum(ad.grad(lambda a, v: 0.5 * np.sum(f(a, v) ** 2), argnums=1)(a, v) * c)
        g2 = ad.grad(inner, mode=mode)(a, v)
        fd2 = (inner(a + h * da, v) - inner(a - h * da, v)) / (2 * h)
        np.testing.assert_allclose(g2 @ da, fd2, rtol=1e-6)


@pytest.mark.parametrize("n,m", [(7, 5), (5, 7), (9, 1), (3, 2), (1, 1), (11, 3), (30, 4),
                                 (8, 9), (40, 12), (12, 40), (3, 30)])
def test_primitive_windows_as_the_full_convolution_and_zero_outside(n, m):
    """Windows off both ends and across them (the short-kernel path's loop and edges, the
    few-output path, the general path's blocks of 4 outputs and the outputs it takes one by
    one)."""
    a, v = _r.standard_normal(n), _r.standard_normal(m)
    full = np.convolve(a, v)
    for lo, size in [(0, n + m - 1), (-6, n + m + 9), (2, 9), (n + m + 1, 5), (-10, 3),
                     (0, 0), (m - 2, 3), (n - 3, 8), (n + m - 6, 7), (-3, 6)]:
        want = bind(convolve_p, a, v, lo=lo, size=size)
        for t in range(size):
            assert want[t] == (full[lo + t] if 0 <= lo + t < full.size else 0.0)
        got = ad.jit(lambda a, v: bind(convolve_p, a, v, lo=lo, size=size))(a, v)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14, err_msg=str((lo, size)))
        assert not np.signbit(got[got == 0]).any()


def test_polymul_of_long_polynomials():
    p, q = _r.standard_normal(400), _r.standard_normal(300)
    got = ad.jit(np.polymul)(p, q)
    assert (np.abs(got - np.polymul(p, q)) <= _bound(np.convolve, p, q, np.float64)).all()
