"""vmap of np.convolve / np.correlate through the convolve primitive: its
batching rule (one batched convolve, no per-example loop) against a Python loop of numpy, for
a batched signal, a batched kernel, both, every mode and in_axes other than 0; per-example
gradients (vmap of grad) and jacfwd / jacrev / hessian, which are built on vmap, against
exact Jacobians and finite differences."""
import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.vmap import fallback_primitives
from test_convolve import CONV_MODES, MODES, _bound, _fns

B = 3
_r = np.random.default_rng(7)


def _no_fallback(call):
    """call() with no BatchingFallbackWarning and convolve batched by its rule."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.BatchingFallbackWarning)
        out = call()
    assert "convolve" not in fallback_primitives()
    return out


def _example(x, axis, i):
    return x if axis is None else np.take(x, i, axis=axis)


# (in_axes, shapes of a and v): signal only, kernel only, both, axes other than 0
AXES = [((0, 0), (B, 40), (B, 12)), ((0, None), (B, 40), (12,)), ((None, 0), (40,), (B, 12)),
        ((1, None), (40, B), (12,)), ((None, -1), (40,), (12, B)), ((1, 0), (40, B), (B, 9)),
        ((0, 1), (B, 30), (256, B)), ((0, 0), (B, 40), (B, 3)), ((None, 1), (50,), (5, B)),
        ((1, None), (60, B), (8,))]


@pytest.mark.parametrize("axes,sa,sv", AXES)
@pytest.mark.parametrize("conv_mode", CONV_MODES)
@pytest.mark.parametrize("mode", MODES)
def test_vmap_as_a_loop_of_numpy(axes, sa, sv, conv_mode, mode):
    a, v = _r.standard_normal(sa), _r.standard_normal(sv)
    for name, f in _fns(conv_mode).items():
        got = _no_fallback(lambda: ad.vmap(f, in_axes=axes, mode=mode)(a, v))
        for i in range(B):
            ai, vi = _example(a, axes[0], i), _example(v, axes[1], i)
            want = f(ai, vi)
            assert got[i].shape == want.shape, name
            assert (np.abs(got[i] - want) <= _bound(f, ai, vi, ai.dtype)).all(), (name, i)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_vmap_dtypes_and_out_axes(dtype):
    a = (_r.standard_normal((B, 50)) * 4).astype(dtype)
    v = (_r.standard_normal((B, 10)) * 4).astype(dtype)
    got = _no_fallback(lambda: ad.vmap(lambda a, v: np.convolve(a, v, "same"), out_axes=1)(a, v))
    assert got.dtype == dtype and got.shape == (50, B)
    for i in range(B):
        want = np.convolve(a[i], v[i], "same")
        if dtype == np.int64:
            np.testing.assert_array_equal(got[:, i], want)
        else:
            same = lambda a, v: np.convolve(a, v, "same")
            assert (np.abs(got[:, i] - want) <= _bound(same, a[i], v[i], a.dtype)).all()


def test_vmap_of_vmap():
    a, v = _r.standard_normal((2, B, 30)), _r.standard_normal((2, B, 11))
    f = lambda a, v: np.correlate(a, v, "full")
    got = _no_fallback(lambda: ad.vmap(ad.vmap(f))(a, v))
    want = np.array([[f(a[i, j], v[i, j]) for j in range(B)] for i in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("conv_mode", CONV_MODES)
@pytest.mark.parametrize("mode", ("compiled", "interpret"))
def test_per_example_gradients(conv_mode, mode):
    """vmap(grad): kernel shared (in_axes None) and per example, against a loop of the
    unbatched gradient and central differences (the loss is a quartic: an h^2 error)."""
    a, v, w = _r.standard_normal((B, 60)), _r.standard_normal(14), _r.standard_normal((B, 4))
    for name, f in _fns(conv_mode).items():
        def loss(a, v, f=f):
            return np.sum(f(a, v) ** 2)
        grad = ad.grad(loss, argnums=(0, 1), mode=mode)
        for axes, vv in (((0, None), v), ((0, 0), w)):
            ga, gv = _no_fallback(lambda: ad.vmap(grad, in_axes=axes, mode=mode)(a, vv))
            for i in range(B):
                vi = _example(vv, axes[1], i)
                wa, wv = ad.grad(loss, argnums=(0, 1), mode=mode)(a[i], vi)
                np.testing.assert_allclose(ga[i], wa, rtol=1e-12, atol=1e-11, err_msg=name)
                np.testing.assert_allclose(gv[i], wv, rtol=1e-12, atol=1e-11, err_msg=name)
                da, dv = _r.standard_normal(a.shape[1]), _r.standard_normal(vi.size)
                h = 1e-4
                fd = (loss(a[i] + h * da, vi + h * dv) - loss(a[i] - h * da, vi - h * dv)) / (2 * h)
                np.testing.assert_allclose(ga[i] @ da + gv[i] @ dv, fd, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("conv_mode", CONV_MODES)
@pytest.mark.parametrize("mode", ("compiled", "interpret"))
def test_jacobians_and_hessian(conv_mode, mode):
    a, v = _r.standard_normal(25), _r.standard_normal(10)
    for name, f in _fns(conv_mode).items():
        # f is bilinear: its Jacobian in a is f(e_j, v), column by column
        ja = np.stack([f(np.eye(a.size)[j], v) for j in range(a.size)], 1)
        jv = np.stack([f(a, np.eye(v.size)[k]) for k in range(v.size)], 1)
        for jac in (ad.jacfwd, ad.jacrev):
            got = _no_fallback(lambda: jac(f, argnums=(0, 1), mode=mode)(a, v))
            np.testing.assert_allclose(got[0], ja, rtol=1e-12, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(got[1], jv, rtol=1e-12, atol=1e-12, err_msg=name)

        def loss(a, v, f=f):
            return np.sum(np.sin(f(a, v)))
        H = _no_fallback(lambda: ad.hessian(loss, argnums=1, mode=mode)(a, v))
        g = ad.grad(loss, argnums=1, mode=mode)
        h = 1e-5
        for k in range(0, v.size, 3):
            e = np.eye(v.size)[k]
            fd = (g(a, v + h * e) - g(a, v - h * e)) / (2 * h)
            np.testing.assert_allclose(H[:, k], fd, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)
