"""Time the vectorized mathlib loops against numpy (1e6 float64 / float32 by default).

Run:  PYTHONPATH=. python benchmarks/bench_mathlib.py [--n 1000000] [--repeat 21] [--dtype float64]
Prints per function: median time of our compiled loop and of numpy (run alternately), their ratio
(numpy / ours; >1 means we are faster), the same ratio of the minimum times (less sensitive to other
load on the machine), and the max ulp error against numpy on the timed data.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from autodiff_jit.backend import mathlib

# Representative inputs (kept inside each function's finite, non-saturating range).
DOMAINS = {
    "exp": (-700.0, 700.0), "expm1": (-5.0, 5.0), "log": (1e-3, 1e3), "log1p": (-0.9, 10.0),
    "sin": (-100.0, 100.0), "cos": (-100.0, 100.0), "tan": (-100.0, 100.0),
    "sinh": (-20.0, 20.0), "cosh": (-20.0, 20.0), "tanh": (-5.0, 5.0),
    "arcsin": (-1.0, 1.0), "arccos": (-1.0, 1.0), "arctan": (-50.0, 50.0),
    "pow": (0.01, 10.0),
}


def paired_times(fns, repeat):
    """Run the candidates alternately (fairer on a shared, noisy machine); per fn (median, min)."""
    ts = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
    return [(float(np.median(t)), float(np.min(t))) for t in ts]


def max_ulp(got, ref):
    ok = (got == ref) | (np.isnan(got) & np.isnan(ref))
    with np.errstate(all="ignore"):
        d = np.abs(got.astype(np.float64) - ref.astype(np.float64)) / np.spacing(np.abs(ref)).astype(np.float64)
    return float(np.where(ok, 0.0, d).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("names", nargs="*", default=list(mathlib.MATH_FUNCTIONS))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    dt = np.dtype(args.dtype)
    print(f"n={args.n} dtype={dt} median of {args.repeat}")
    print(f"{'function':10s} {'ours ms':>9s} {'numpy ms':>9s} {'numpy/ours':>11s} {'(min/min)':>10s} {'max ulp':>8s}")
    np.seterr(all="ignore")  # e.g. exp overflows in float32 on the float64 ranges below
    for name in args.names:
        lo, hi = DOMAINS[name]
        xs = [rng.uniform(lo, hi, args.n).astype(dt)]
        if name == "pow":
            xs.append(rng.uniform(-10.0, 10.0, args.n).astype(dt))
        npfn = getattr(np, "power" if name == "pow" else name)
        f = mathlib.compile_loop(name, dt)
        out = np.empty_like(xs[0])
        ref = np.empty_like(xs[0])
        f(*xs, out=out)
        npfn(*xs, out=ref)
        (t_ours, m_ours), (t_np, m_np) = paired_times(
            [lambda: f(*xs, out=out), lambda: npfn(*xs, out=ref)], args.repeat)
        print(f"{name:10s} {t_ours * 1e3:9.3f} {t_np * 1e3:9.3f} {t_np / t_ours:11.2f} "
              f"{m_np / m_ours:10.2f} {max_ulp(out, ref):8.0f}")


if __name__ == "__main__":
    main()
