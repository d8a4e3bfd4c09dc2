"""Linear-algebra gradients: compiled (LAPACK) and tape mode against numpy's forward pass.

    PYTHONPATH=. python benchmarks/bench_linalg.py [--quick]

Cases (float64):
  * GP negative log marginal likelihood (RBF kernel, Cholesky + two triangular solves + log
    det), gradient w.r.t. the 3 log hyperparameters, n = 100 and 500 points;
  * least squares through solve: 0.5 |A^{-1} b - t|^2, gradient w.r.t. A, n = 200.
numpy fwd is the same objective in plain numpy (numpy has no triangular solve: it uses LU
solves, as numpy users must). Figures are medians of repeated calls, measured in alternating rounds
in this run; quote the ratios, not the absolute times (shared machines vary by +-30%).
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

import autodiff_jit as ad

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from gaussian_process import gp_nll, numpy_nll  # noqa: E402


def lsq(a, b, t):
    x = np.linalg.solve(a, b)
    return 0.5 * np.sum((x - t) ** 2)


def _number(fn, args, min_time):
    fn(*args)
    t0 = time.perf_counter()
    fn(*args)
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(min_time / once))


def _interleaved(fns, args, repeat=9, min_time=0.05):
    """Median seconds per call of each of `fns`, measured in alternating rounds (a busy
    machine's drift hits all of them alike)."""
    numbers = [_number(f, args, min_time) for f in fns]
    runs = [[] for _ in fns]
    for _ in range(repeat):
        for f, n, r in zip(fns, numbers, runs):
            t0 = time.perf_counter()
            for _ in range(n):
                f(*args)
            r.append((time.perf_counter() - t0) / n)
    return [statistics.median(r) for r in runs]


def cases(quick):
    rng = np.random.default_rng(0)
    sizes = (100,) if quick else (100, 500)
    for n in sizes:
        X = rng.uniform(-3, 3, (n, 1))
        y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(n)
        theta = np.array([0.0, 0.0, -1.0])
        yield f"GP NLL n={n}", gp_nll, numpy_nll, (theta, X, y)
    n = 100 if quick else 200
    a = rng.standard_normal((n, n)) + n ** 0.5 * np.eye(n)
    yield f"least squares via solve n={n}", lsq, lsq, (a, rng.standard_normal(n),
                                                        rng.standard_normal(n))


def main(quick=False):
    print(f"{'case':34s} {'numpy fwd':>11s} {'compiled grad':>14s} {'ratio':>6s} "
          f"{'tape grad':>11s} {'ratio':>6s} {'compile':>9s}")
    for name, f, np_f, args in cases(quick):
        t0 = time.perf_counter()
        g = ad.grad(f)
        g(*args)
        compile_s = time.perf_counter() - t0
        tape = ad.grad(f, mode="tape")
        assert np.allclose(g(*args), tape(*args), rtol=1e-8, atol=1e-10)
        t_np, t_c, t_t = _interleaved([np_f, g, tape], args)
        print(f"{name:34s} {t_np * 1e6:9.0f}us {t_c * 1e6:12.0f}us {t_c / t_np:6.2f} "
              f"{t_t * 1e6:9.0f}us {t_t / t_np:6.2f} {compile_s * 1e3:7.0f}ms")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
