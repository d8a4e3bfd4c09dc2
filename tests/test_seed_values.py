"""The seed tutorials, written as plain numpy functions against this API, with their known values."""
import numpy as np
import pytest

import autodiff_jit as ad

MODES = ("interpret", "compiled")


@pytest.mark.parametrize("mode", MODES)
def test_quadratic_derivative_at_3(mode):
    assert ad.grad(lambda x: x ** 2 + 2 * x + 1, mode=mode)(3.0) == pytest.approx(8.0)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_of_sum_of_cubes(mode):
    g = ad.grad(lambda x: np.sum(x ** 3), mode=mode)(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(g, [3.0, 12.0, 27.0])


@pytest.mark.parametrize("mode", MODES)
def test_gradient_of_mean_of_squares(mode):
    x = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(ad.grad(lambda x: np.mean(x * x), mode=mode)(x), 2 * x / 3)


@pytest.mark.parametrize("mode", MODES)
def test_chain_rule_square_of_affine(mode):
    assert ad.grad(lambda x: (3 * x + 1) ** 2, mode=mode)(2.0) == pytest.approx(42.0)


@pytest.mark.parametrize("mode", MODES)
def test_partials_of_xy_plus_x_squared(mode):
    dx, dy = ad.grad(lambda x, y: x * y + x ** 2, argnums=(0, 1), mode=mode)(2.0, 3.0)
    assert (dx, dy) == (pytest.approx(7.0), pytest.approx(2.0))


@pytest.mark.parametrize("mode", MODES)
def test_single_neuron_squared_error(mode):
    loss = lambda w, b, x: (w * x + b - 1.0) ** 2  # noqa: E731
    dw, db = ad.grad(loss, argnums=(0, 1), mode=mode)(0.5, 0.1, 2.0)
    assert dw == pytest.approx(0.4)
    assert db == pytest.approx(0.2)


@pytest.mark.parametrize("mode", MODES)
def test_linear_partials(mode):
    y = lambda w, x, b: w * x + b  # noqa: E731
    dw, dx, db = ad.grad(y, argnums=(0, 1, 2), mode=mode)(2.0, 1.0, 3.0)
    assert dx == pytest.approx(2.0)
    assert dw == pytest.approx(1.0)
    assert db == pytest.approx(1.0)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_descent_ten_steps(mode):
    df = ad.grad(lambda x: (x - 3.0) ** 2, mode=mode)
    x, path = 0.0, []
    for _ in range(10):
        x = x - 0.1 * df(x)
        path.append(float(x))
    np.testing.assert_allclose(path[:3], [0.6, 1.08, 1.464])
    np.testing.assert_allclose(path, [3 - 3 * 0.8 ** k for k in range(1, 11)])
    assert path[-1] == pytest.approx(2.6779, abs=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_linear_regression_seed_003(mode):
    X = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    y = np.array([[3.0], [5.0], [7.0], [9.0]], np.float32)
    W = np.array([[0.0]], np.float32)
    b = np.array([[0.0]], np.float32)

    def loss(W, b, X, y):
        return np.mean((X @ W + b - y) ** 2)

    step = ad.value_and_grad(loss, argnums=(0, 1), mode=mode)
    value, (gW, gb) = step(W, b, X, y)
    assert value == pytest.approx(41.0)
    assert gW.dtype == np.float32 and gb.dtype == np.float32
    assert gW.shape == (1, 1) and gb.shape == (1, 1)
    np.testing.assert_allclose(gW, [[-35.0]])
    np.testing.assert_allclose(gb, [[-12.0]])
    for _ in range(200):
        _, (gW, gb) = step(W, b, X, y)
        W = W - np.float32(0.001) * gW
        b = b - np.float32(0.001) * gb
    assert W.dtype == np.float32 and b.dtype == np.float32
    assert W[0, 0] == pytest.approx(2.0196, abs=1e-4)
    assert b[0, 0] == pytest.approx(0.7055, abs=1e-4)
    assert len(step._cache) == 1  # 200 steps, one trace
