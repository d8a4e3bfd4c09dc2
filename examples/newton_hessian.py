"""Newton's method with exact Hessians: minimize the n-dimensional Rosenbrock function.

    H = ad.hessian(f)(x)        # jacfwd(jacrev(f)): one compiled call, an (n, n) array
    x = x - np.linalg.solve(H, ad.grad(f)(x))

Each step solves H dx = -grad with the exact Hessian (shifted to be positive definite where
the Rosenbrock valley is not convex) and a backtracking line search, so f always decreases.
Newton needs 85 steps at n = 50 from a random start, where gradient descent needs tens of
thousands; near the minimum (x = 1) the convergence is quadratic (the gradient norm roughly
squares each step).

Run:  python examples/newton_hessian.py
"""
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def newton(f, x, steps=300, tol=1e-10):
    """Newton's method with a Hessian shifted to be positive definite where it is not (so
    every step goes downhill) and a backtracking line search."""
    grad, hess = ad.grad(f), ad.hessian(f)
    for k in range(steps):
        g = grad(x)
        gnorm = np.linalg.norm(g)
        if gnorm < tol:
            return x, k
        if k % 10 == 0 or gnorm < 1e-2:  # the last steps show the quadratic convergence
            print(f"  step {k:2d}  f = {f(x):.3e}  |grad| = {gnorm:.3e}")
        H = hess(x)
        shift = 0.0
        while True:  # the smallest shift (0, then growing) that makes H + shift I factor
            try:
                L = np.linalg.cholesky(H + shift * np.eye(len(x)))
                break
            except np.linalg.LinAlgError:
                shift = max(2 * shift, 1e-3 * np.abs(H).max())
        dx = -np.linalg.solve(L.T, np.linalg.solve(L, g))
        t, fx = 1.0, f(x)
        while f(x + t * dx) > fx + 1e-4 * t * (g @ dx) and t > 1e-10:
            t *= 0.5
        x = x + t * dx
    return x, steps


def main():
    n = 10 if QUICK else 50
    x0 = np.random.default_rng(0).uniform(-0.5, 0.5, n)
    H = ad.hessian(rosenbrock)(x0)
    print(f"Hessian at x0: shape {H.shape}, symmetric: {np.allclose(H, H.T)}, "
          f"nonzeros: {np.count_nonzero(H)} (tridiagonal)")
    x, k = newton(rosenbrock, x0)
    print(f"converged to x = 1 (max error {np.abs(x - 1).max():.2e}) in {k} Newton steps")
    assert np.allclose(x, 1.0, atol=1e-6)


if __name__ == "__main__":
    main()
