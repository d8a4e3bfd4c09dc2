"""jacfwd / jacrev / hessian on vmap: values against finite differences and each other, JAX's
nesting for tuple argnums and pytree inputs/outputs, has_aux, errors, empty arrays, and one
compiled function per Jacobian."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad

from helpers import MODES


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def fd_jacobian(f, x, eps=1e-6):
    x = np.asarray(x, np.float64)
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_jacobian_matches_finite_differences(jac, mode):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    x = rng.normal(size=(2, 3))  # matrix input and output: shape out + in
    f = lambda x: np.tanh(x @ w.T) * np.sum(x)  # noqa: E731
    J = getattr(ad, jac)(f, mode=mode)(x)
    assert J.shape == (2, 4, 2, 3)
    np.testing.assert_allclose(J, fd_jacobian(f, x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_hessian_of_rosenbrock(mode):
    x = np.random.default_rng(1).uniform(-1, 1, 7)
    H = ad.hessian(rosen, mode=mode)(x)
    np.testing.assert_allclose(H, fd_jacobian(ad.grad(rosen), x), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(H, H.T, rtol=1e-12)
    np.testing.assert_allclose(ad.jacrev(ad.jacfwd(ad.grad(rosen)))(x)[0],
                               ad.jacfwd(ad.hessian(rosen))(x)[0], rtol=1e-10)  # third order


@pytest.mark.parametrize("mode", MODES)
def test_tuple_argnums_and_pytrees_nest_like_jax(mode):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=3), rng.normal(size=(2,))

    def f(p, y):
        return {"u": p["a"] * y[0], "v": (np.sum(p["a"]) * p["b"], p["b"][0] * y)}
    p, y = {"a": a, "b": b}, rng.normal(size=3)
    for jac in (ad.jacfwd, ad.jacrev):
        J = jac(f, argnums=(0, 1), mode=mode)(p, y)
        # output structure, then a tuple over argnums, then each argument's structure
        assert set(J) == {"u", "v"} and isinstance(J["u"], tuple) and len(J["u"]) == 2
        np.testing.assert_allclose(J["u"][0]["a"], np.eye(3) * y[0])
        np.testing.assert_allclose(J["u"][0]["b"], np.zeros((3, 2)))
        np.testing.assert_allclose(J["u"][1], np.outer(a, [1.0, 0, 0]))
        np.testing.assert_allclose(J["v"][0][0]["a"], np.outer(b, np.ones(3)))
        np.testing.assert_allclose(J["v"][1][0]["b"], np.outer(y, [1.0, 0]))
        assert J["v"][1][1].shape == (3, 3)
        np.testing.assert_allclose(J["v"][1][1], np.eye(3) * b[0])
        J0 = jac(f, mode=mode)(p, y)  # int argnums: no tuple level
        np.testing.assert_allclose(J0["u"]["a"], J["u"][0]["a"])


@pytest.mark.parametrize("mode", MODES)
def test_has_aux(mode):
    x = np.array([0.3, -0.2])

    def f(x):
        return np.sin(x) * 2.0, {"norm": np.sum(x * x)}
    for jac in (ad.jacfwd, ad.jacrev):
        J, aux = jac(f, has_aux=True, mode=mode)(x)
        np.testing.assert_allclose(J, np.diag(2 * np.cos(x)), rtol=1e-14)
        assert aux["norm"] == pytest.approx(0.13)
    H, aux = ad.hessian(lambda x: (np.sum(x ** 3), x[0]), has_aux=True, mode=mode)(x)
    np.testing.assert_allclose(H, np.diag(6 * x), rtol=1e-14)
    assert aux == pytest.approx(0.3)


def test_errors():
    for jac in (ad.jacfwd, ad.jacrev, ad.hessian):
        with pytest.raises(TypeError, match=f"{jac.__name__} requires real floating-point "
                                            f"inputs.*dtype i64"):
            jac(lambda x: x * 2)(np.arange(3))
        with pytest.raises(TypeError, match="argnums=2 but"):
            jac(lambda x, y: x * y, argnums=2)(1.0, 2.0)
        with pytest.raises(TypeError, match="argnums must be an int or a tuple"):
            jac(lambda x: x, argnums=[0])
    with pytest.raises(TypeError, match="has_aux=True"):
        ad.jacfwd(lambda x: x, has_aux=True)(np.ones(2))


@pytest.mark.parametrize("mode", MODES)
def test_empty_arrays(mode):
    for jac in (ad.jacfwd, ad.jacrev):
        assert jac(lambda x: x * 2.0, mode=mode)(np.zeros(0)).shape == (0, 0)
        assert jac(lambda x: np.sum(x), mode=mode)(np.zeros(0)).shape == (0,)
        assert jac(lambda x: x[:0] * 1.0, mode=mode)(np.ones(3)).shape == (0, 3)
    assert ad.hessian(lambda x: np.sum(x ** 2), mode=mode)(np.zeros((0, 2))).shape == (0, 2, 0, 2)


def test_one_compiled_call_per_jacobian():
    """The Jacobian is one jit-transformed function: one specialization, no per-column
    compiled JVPs, and the batched IR holds no per-element loop."""
    x = np.linspace(-1, 1, 20)
    h = ad.hessian(rosen)
    h(x)
    assert len(h.jits) == 1 and len(next(iter(h.jits.values()))._cache) == 1
    ir = h.ir(x)
    assert len(ir.eqns) < 60, len(ir.eqns)  # a per-element loop would be O(n) equations


def test_grad_takes_argnums_positionally():
    f = lambda x, y: x * y ** 2  # noqa: E731
    assert ad.grad(f, 1)(3.0, 2.0) == pytest.approx(12.0)
    assert ad.value_and_grad(f, 1)(3.0, 2.0) == (pytest.approx(12.0), pytest.approx(12.0))
    assert ad.jacfwd(f, 1)(3.0, 2.0) == pytest.approx(12.0)


def test_undifferentiated_python_ints_stay_static():
    f = lambda x, n: np.sum(x ** n)  # noqa: E731  (n: an exponent, compiled in)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(ad.jacfwd(f)(x, 3), 3 * x ** 2)
    np.testing.assert_allclose(ad.hessian(f)(x, 3), np.diag(6 * x))
    g = lambda x, n: x * sum(range(n))  # noqa: E731  (range needs a Python int)
    np.testing.assert_allclose(ad.jacrev(g)(x, 4), 6 * np.eye(2))


@pytest.mark.parametrize("mode", MODES)
def test_hessian_of_pytrees_and_tuple_argnums(mode):
    f = lambda p: np.sum(p["a"] ** 2 * p["b"][0]) + p["b"][1] ** 3  # noqa: E731
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    H = ad.hessian(f, mode=mode)(p)  # dict of dicts, as jax.hessian
    np.testing.assert_allclose(H["a"]["a"], 2 * p["b"][0] * np.eye(2))
    np.testing.assert_allclose(H["a"]["b"], [[2.0, 0.0], [4.0, 0.0]])
    np.testing.assert_allclose(H["b"]["a"], H["a"]["b"].T)
    np.testing.assert_allclose(H["b"]["b"], [[0.0, 0.0], [0.0, 24.0]])
    x, y = np.ones(2), np.full(2, 2.0)
    H2 = ad.hessian(lambda x, y: np.sum(x * x * y), argnums=(0, 1), mode=mode)(x, y)
    np.testing.assert_allclose(H2[0][0], 2 * np.diag(y))
    np.testing.assert_allclose(H2[0][1], 2 * np.diag(x))
    np.testing.assert_allclose(H2[1][1], np.zeros((2, 2)))
