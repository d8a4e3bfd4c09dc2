"""The compiled backend side by side with numpy and the interpreter.

    PYTHONPATH=. python benchmarks/bench_backend.py [--quick] [--cases rosenbrock,gmm]

Columns (medians, µs): numpy forward, compiled forward (ad.jit), compiled gradient (ad.grad),
interpreted gradient (mode="interpret"); grad/np = compiled gradient / numpy forward; compile ms
= first call of ad.jit / ad.grad minus one warm call (tracing + AD + passes + LLVM).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import autodiff_jit as ad
from autodiff_jit.bench.objectives import OBJECTIVES

CASES = [("polynomial", "3 scalars"), ("rosenbrock", "n=10"), ("rosenbrock", "n=1e3"),
         ("rosenbrock", "n=1e6"), ("mse_linear", "n=1e5"), ("logistic", "n=1e4,d=100"),
         ("mlp", "b=256,784-128-10"), ("gmm", "d=10,k=25,n=1e4")]


def median_us(fn, budget=0.4, max_reps=2000):
    """Median time of fn() in µs: calls batched so each sample takes >= ~20 µs."""
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    inner = max(1, int(2e-5 / max(one, 1e-9)))
    samples = []
    deadline = time.perf_counter() + budget
    while len(samples) < 5 or (time.perf_counter() < deadline and len(samples) < max_reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples) * 1e6


def first_call_ms(make, args):
    t0 = time.perf_counter()
    f = make()
    f(*args)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    f(*args)
    warm = time.perf_counter() - t0
    return (first - warm) * 1e3, f


def run(cases, budget):
    rows = []
    for name, label in cases:
        obj = OBJECTIVES[name]
        size = obj.size(label)
        f = obj.make_fn(size.params)
        args = obj.make_args(size.params, np.random.default_rng(0))
        argnums = obj.argnums
        # cache=False: first calls time compilation, not loads from the disk cache
        c_jit, jf = first_call_ms(lambda: ad.jit(f, cache=False), args)
        c_grad, gf = first_call_ms(lambda: ad.grad(f, argnums=argnums, cache=False), args)
        gi = ad.grad(f, argnums=argnums, mode="interpret")
        # correctness: compiled gradient vs the interpreter
        g1, g2 = gf(*args), gi(*args)
        err = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)) /
                               (np.abs(np.asarray(b)) + 1e-300)).item() if np.size(b) else 0.0)
                  for a, b in zip(g1, g2))
        t_np = median_us(lambda: f(*args), budget)
        t_fwd = median_us(lambda: jf(*args), budget)
        t_grad = median_us(lambda: gf(*args), budget)
        t_int = median_us(lambda: gi(*args), budget, max_reps=50)
        rows.append((f"{name} {label}", t_np, t_fwd, t_grad, t_int, t_grad / t_np, c_jit,
                     c_grad, err))
    return rows


def fmt(rows):
    head = (f"{'case':32s} {'numpy fwd':>10s} {'jit fwd':>10s} {'jit grad':>10s} "
            f"{'interp grad':>12s} {'grad/np':>8s} {'compile fwd':>12s} {'compile grad':>13s}"
            f" {'max rel err':>11s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r[0]:32s} {r[1]:10.1f} {r[2]:10.1f} {r[3]:10.1f} {r[4]:12.1f} "
                     f"{r[5]:8.2f} {r[6]:10.1f}ms {r[7]:11.1f}ms {r[8]:11.1e}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cases", default="")
    p.add_argument("--budget", type=float, default=0.5, help="seconds per timing")
    a = p.parse_args()
    cases = CASES
    if a.cases:
        want = a.cases.split(",")
        cases = [c for c in CASES if c[0] in want]
    print(fmt(run(cases, a.budget)))


if __name__ == "__main__":
    main()
