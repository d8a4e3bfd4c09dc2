"""Forward mode: the JVP transform against reverse mode and finite differences, and the
Jacobian/Hessian helpers against analytic values."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.ir import verify
from autodiff_jit.jvp import jvp_function

MODES = ("interpret", "compiled")


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def mlp_loss(w, x):
    h = np.tanh(x @ w[:6].reshape(3, 2))
    return np.sum(h ** 2) + np.max(w) * np.prod(w[:3]) + np.mean(np.exp(w) * np.cumsum(w))


FUNCTIONS = [
    (rosen, (np.array([0.3, -0.7, 1.2, 0.5]),)),
    (mlp_loss, (np.linspace(-0.5, 0.6, 8), np.arange(12.0).reshape(4, 3) / 10)),
    (lambda x: np.sum(np.sin(x[[0, 2, 2]]) * x[::-1][:3]) + np.linalg.norm(x), (np.array([0.4, 1.1, -0.3]),)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("f,args", FUNCTIONS)
def test_jvp_matches_grad_inner_product(f, args, mode):
    # <grad f(x), v> == J(x) v for a random direction v
    rng = np.random.default_rng(1)
    v = rng.standard_normal(np.shape(args[0]))
    tangents = (v,) + tuple(np.zeros(np.shape(a)) for a in args[1:])
    value, tangent = ad.jvp(f, args, tangents, mode=mode)
    g = ad.grad(f, mode=mode)(*args)
    assert value == pytest.approx(f(*args), rel=1e-12)
    assert tangent == pytest.approx(float(np.sum(g * v)), rel=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_jvp_against_finite_differences(mode):
    f = lambda x, y: np.sin(x) * y ** 2 + np.maximum(x, y)  # noqa: E731
    x, y = np.array([0.1, 0.2, 0.9]), np.array([1.0, 0.1, 3.0])
    tx, ty = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.0, -1.0])
    eps = 1e-6
    expected = (f(x + eps * tx, y + eps * ty) - f(x - eps * tx, y - eps * ty)) / (2 * eps)
    _, tangent = ad.jvp(f, (x, y), (tx, ty), mode=mode)
    np.testing.assert_allclose(tangent, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", MODES)
def test_vjp_pullback(mode):
    f = lambda x, y: np.sin(x) * y ** 2  # noqa: E731
    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])
    out, pullback = ad.vjp(f, x, y, mode=mode)
    np.testing.assert_allclose(out, f(x, y))
    ct = np.array([1.0, -1.0, 2.0])
    gx, gy = pullback(ct)
    np.testing.assert_allclose(gx, ct * np.cos(x) * y ** 2)
    np.testing.assert_allclose(gy, ct * np.sin(x) * 2 * y)


@pytest.mark.parametrize("mode", MODES)
def test_jacobians_agree_and_match_analytic(mode):
    f = lambda x: np.tanh(np.outer(x, x) @ x)  # noqa: E731
    x = np.array([0.2, -0.4, 0.3])
    jf, jr = ad.jacfwd(f, mode=mode)(x), ad.jacrev(f, mode=mode)(x)
    assert jf.shape == jr.shape == (3, 3)
    s = x @ x
    expected = (1 - np.tanh(s * x) ** 2)[:, None] * (s * np.eye(3) + 2 * np.outer(x, x))
    np.testing.assert_allclose(jf, expected, rtol=1e-10)
    np.testing.assert_allclose(jr, expected, rtol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_hessian(mode):
    f = lambda x: np.sum(x ** 3) + x[0] * x[1] + np.sum(np.exp(x))  # noqa: E731
    x = np.array([0.1, 0.2, 0.3])
    expected = np.diag(6 * x + np.exp(x)) + np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]])
    np.testing.assert_allclose(ad.hessian(f, mode=mode)(x), expected, rtol=1e-10)


def test_jvp_of_custom_vjp_function_goes_through_its_fwd():
    @ad.custom_vjp
    def f(x):
        return np.sin(x)

    f.defvjp(lambda x: (np.sin(x), x), lambda x, g: (g * 100.0,))  # a deliberately wrong rule
    _, t = ad.jvp(lambda x: np.sum(f(x)), (np.array([0.5, 1.0]),), (np.ones(2),))
    assert t == pytest.approx(np.sum(np.cos([0.5, 1.0])))


def test_jvp_ir_verifies_and_prints():
    fn = ad.make_ir(rosen)(np.zeros(4))
    tfn = verify(jvp_function(fn, [0]))
    text = str(tfn)
    assert text.startswith("func jvp_rosen(x: f64[4], t_x: f64[4]) -> (f64[], f64[])")


def test_jvp_rejects_mismatched_tangents():
    with pytest.raises(TypeError, match="same structure and shapes"):
        ad.jvp(np.sin, (np.zeros(3),), (np.zeros(2),))


def test_python_float_points_and_tape_mode():
    # a Python-float primal is float64, so its tangent is too (loops check carry dtypes)
    f = lambda s: ad.fori_loop(0, 5, lambda i, c: 0.9 * c + np.sin(c), s) ** 2  # noqa: E731
    h = [ad.hessian(f, mode=m)(0.3) for m in ("compiled", "interpret", "tape")]
    assert h[0] == pytest.approx(h[1], rel=1e-10) and h[2] == pytest.approx(h[1], rel=1e-10)
    assert ad.jvp(np.sin, (np.ones(2),), (np.ones(2),), mode="tape")[1] == \
        pytest.approx(np.cos(np.ones(2)))
    np.testing.assert_allclose(ad.jit(ad.grad(lambda x: np.sum(np.sin(x)), mode="tape"))(
        np.array([0.0, 1.0])), np.cos([0.0, 1.0]))
