"""Gaussian-process regression: fit kernel hyperparameters by gradient descent on the negative
log marginal likelihood, differentiated through a Cholesky factorization.

    nll(theta) = 1/2 y^T K^{-1} y + 1/2 log det K + n/2 log 2 pi,   K = k_theta(X, X) + s^2 I

written the way one writes it in numpy: L = cholesky(K), two triangular solves for K^{-1} y
and log det K = 2 sum(log diag L). `ad.value_and_grad` compiles it once; the compiled code calls
LAPACK (potrf, trtrs) and the gradient uses the Cholesky rule of Murray (2016). The gradient is
checked against central differences, and the fit must beat the starting point.

Run:  python examples/gaussian_process.py
"""
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"


def rbf_kernel(log_params, X):
    log_len, log_amp, _ = log_params[0], log_params[1], log_params[2]
    d2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    return np.exp(2 * log_amp) * np.exp(-0.5 * d2 / np.exp(2 * log_len))


def gp_nll(log_params, X, y):
    n = y.shape[0]
    K = rbf_kernel(log_params, X) + (np.exp(2 * log_params[2]) + 1e-8) * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = ad.solve_triangular(L, ad.solve_triangular(L, y, lower=True), trans=1, lower=True)
    return 0.5 * y @ alpha + np.sum(np.log(np.linalg.diagonal(L))) + 0.5 * n * np.log(2 * np.pi)


def numpy_nll(log_params, X, y):
    """The same objective in plain numpy (numpy has no triangular solve: LU solves)."""
    n = y.shape[0]
    K = rbf_kernel(log_params, X) + (np.exp(2 * log_params[2]) + 1e-8) * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    return 0.5 * y @ alpha + np.sum(np.log(np.diag(L))) + 0.5 * n * np.log(2 * np.pi)


def make_data(n, rng):
    X = rng.uniform(-3, 3, (n, 1))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(n)
    return X, y


def main():
    rng = np.random.default_rng(0)
    X, y = make_data(40 if QUICK else 100, rng)
    theta = np.array([0.0, 0.0, -1.0])    # log length scale, log amplitude, log noise
    value_and_grad = ad.value_and_grad(gp_nll)

    # the compiled gradient against central differences of the numpy objective
    _, g = value_and_grad(theta, X, y)
    eps = 1e-6
    fd = np.array([(numpy_nll(theta + eps * e, X, y) - numpy_nll(theta - eps * e, X, y))
                   / (2 * eps) for e in np.eye(3)])
    assert np.allclose(g, fd, rtol=1e-5, atol=1e-6), (g, fd)
    print("gradient matches central differences:", np.round(g, 6))

    start = numpy_nll(theta, X, y)
    lr, steps = 0.01, 100 if QUICK else 400
    for step in range(steps):
        nll, g = value_and_grad(theta, X, y)
        theta = theta - lr * g
        if step % 100 == 0:
            print(f"step {step:4d}  nll {float(nll):9.4f}")
    final = numpy_nll(theta, X, y)
    print(f"nll {start:.4f} -> {final:.4f}; length {np.exp(theta[0]):.3f}, "
          f"amplitude {np.exp(theta[1]):.3f}, noise {np.exp(theta[2]):.3f}")
    assert final < start


if __name__ == "__main__":
    main()
