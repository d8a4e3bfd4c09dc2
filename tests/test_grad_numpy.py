"""User-level gradients: ad.grad of plain numpy functions, in interpret and compiled mode,
against central finite differences; second derivatives against analytic formulas."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.ir import verify

from helpers import CASES, MODES, assert_close, check_grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_finite_differences(name):
    f, args = CASES[name]
    check_grads(f, args)


@pytest.mark.parametrize("name", sorted(CASES))
def test_adjoint_ir_verifies(name):
    f, args = CASES[name]
    argnums = tuple(range(len(args)))
    fwd = verify(ad.make_ir(f)(*args))
    adj = verify(ad.make_ir(ad.grad(f, argnums=argnums))(*args))
    assert [a.aval for a in adj.args] == [a.aval for a in fwd.args]
    assert [r.aval for r in adj.results] == [a.aval for a in fwd.args]
    # the optimized IR that runs verifies too
    verify(ad.grad(f, argnums=argnums, mode="interpret").ir(*args))


SECOND_ORDER = ["mul_bcast", "div_bcast", "pow_array_exponent", "tanh", "dot_2d", "matmul_batched",
                "index_slices", "index_int_array_repeated", "index_bool_mask", "max", "prod",
                "var_std", "concatenate", "cumsum", "einsum_batched", "logsumexp", "mlp",
                "norm_axis", "where", "sum_keepdims"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_grad_of_grad_matches_finite_differences(name):
    f, args = CASES[name]
    check_grads(f, args, modes=("interpret",), order=2)


# ---------------------------------------------------------------------------------------------
# grad(grad(f)) against analytic second derivatives

SCALAR_SECOND = [
    (lambda x: x ** 3, lambda x: 6 * x, 1.3),
    (lambda x: x ** 3, lambda x: 6 * x, -1.3),   # integer power of a negative base
    (lambda x: np.sin(x) * x, lambda x: 2 * np.cos(x) - x * np.sin(x), 0.7),
    (lambda x: np.exp(2 * x), lambda x: 4 * np.exp(2 * x), 0.3),
    (lambda x: np.log(x), lambda x: -1 / x ** 2, 1.7),
    (lambda x: np.tanh(x), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), 0.4),
    (lambda x: np.sqrt(x), lambda x: -0.25 * x ** -1.5, 2.0),
    (lambda x: 1.0 / x, lambda x: 2 / x ** 3, 0.8),
    (lambda x: x ** 2.5, lambda x: 3.75 * x ** 0.5, 1.5),
    (lambda x: 2.0 ** x, lambda x: np.log(2.0) ** 2 * 2.0 ** x, 0.5),
    (lambda x: np.arctan(x), lambda x: -2 * x / (1 + x * x) ** 2, 0.6),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("i", range(len(SCALAR_SECOND)))
def test_second_derivative_scalar(i, mode):
    f, d2, x = SCALAR_SECOND[i]
    assert_close(ad.grad(ad.grad(f, mode=mode), mode=mode)(x), d2(x), 1e-10, 1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_second_derivative_through_matmul(mode):
    # f(x) = sum((A @ (x * v))**2) along a line: d2/dt2 = 2 |A (v*u)|^2
    rng = np.random.default_rng(0)
    A, v, u, x0 = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(4), \
        rng.standard_normal(4)
    f = lambda t: np.sum((A @ ((x0 + t * u) * v)) ** 2)  # noqa: E731
    assert_close(ad.grad(ad.grad(f, mode=mode), mode=mode)(0.3), 2 * np.sum((A @ (v * u)) ** 2),
                 1e-10, 1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_second_derivative_through_indexing_and_reductions(mode):
    x0 = np.array([0.5, -1.0, 2.0, 0.25])

    def f(t):
        x = x0 * t
        return np.sum(x[1:3] ** 3) + np.mean(x[[0, 0, 3]] ** 2) + np.max(x) * t
    # analytic: sum(x0[1:3]**3) t^3 + mean(x0[[0,0,3]]**2) t^2 + max(x0) t^2 (t>0)
    a = np.sum(x0[1:3] ** 3)
    b = np.mean(x0[[0, 0, 3]] ** 2) + np.max(x0)
    t = 0.7
    assert_close(ad.grad(ad.grad(f, mode=mode), mode=mode)(t), 6 * a * t + 2 * b, 1e-10, 1e-12)


def test_hessian_diagonal_by_grad_of_grad_components():
    # d/dx_i of (grad f)_i for f = sum(x**4)/4 + sum(x)**2 is 3 x_i^2 + 2
    x = np.array([0.5, -1.5, 2.0])
    f = lambda x: np.sum(x ** 4) / 4 + np.sum(x) ** 2  # noqa: E731
    for i in range(3):
        gi = ad.grad(lambda x: ad.grad(f, mode="interpret")(x)[i], mode="interpret")(x)
        expected = np.full(3, 2.0)
        expected[i] += 3 * x[i] ** 2
        assert_close(gi, expected, 1e-10, 1e-12)


def test_third_derivative():
    f = lambda x: x ** 4 + np.sin(x)  # noqa: E731
    d3 = ad.grad(ad.grad(ad.grad(f)))
    assert_close(d3(0.9), 24 * 0.9 - np.cos(0.9), 1e-10, 1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_astype_float32_roundtrip(mode):
    # gradient flows through a float64 -> float32 -> float64 cast as the identity derivative
    x = np.array([0.1, 1.5, -2.3])
    g = ad.grad(lambda x: np.sum(x.astype(np.float32).astype(np.float64) ** 2), mode=mode)(x)
    assert g.dtype == np.float64
    assert_close(g, 2 * x.astype(np.float32).astype(np.float64), 1e-12, 0)


@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
@pytest.mark.parametrize("name", ["mul_bcast", "div_bcast", "pow_array_exponent"])
def test_grad_of_grad_in_one_mode(name, mode):
    """Both gradients taken in `mode` (tape inside tape, compiled inside compiled), with respect
    to every argument, so the mixed derivative d/dy (d/dx f) of x * y and x / y is checked."""
    f, args = CASES[name]
    args = [np.asarray(a, np.float64) for a in args]
    argnums = tuple(range(len(args)))
    vs = [np.random.default_rng(3).standard_normal(np.shape(a)) for a in args]

    def directional(*a):
        gs = ad.grad(f, argnums=argnums, mode=mode)(*a)
        return sum(np.sum(g * v) for g, v in zip(gs, vs))

    check_grads(directional, args, modes=(mode,), rtol=1e-4, atol=1e-5)
