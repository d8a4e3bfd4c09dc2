"""Compiled forward and gradient of the new numpy primitives and composites vs numpy's forward.

    python benchmarks/bench_numpy.py [--repeat 7] [--number 20]

Workloads (float64): sort of 100k values (the argsort primitive + a gather), cumprod along
rows of 1000x100 (the cumprod primitive), convolve of 10k samples with a 64-tap kernel
(Toeplitz gather + product), pad of 1000x1000 by 8 in reflect mode (an index map).
Rows: numpy forward; compiled forward (ad.jit); compiled gradient of sum(f(x) * w)
(ad.grad, which also runs the forward). Times are min and median over `repeat` runs of
`number` calls, in microseconds per call, measured side by side in one process.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import autodiff_jit as ad  # noqa: E402

rng = np.random.default_rng(0)
KERNEL = rng.standard_normal(64)
WORK = {
    "sort": (np.sort, rng.standard_normal(100_000)),
    "cumprod": (lambda x: np.cumprod(x, axis=1), rng.uniform(0.9, 1.1, (1000, 100))),
    "convolve": (lambda x: np.convolve(x, KERNEL), rng.standard_normal(10_000)),
    "pad": (lambda x: np.pad(x, 8, mode="reflect"), rng.standard_normal((1000, 1000))),
}


def _time(fn, x, repeat, number):
    fn(x)  # compile / warm up
    ts = np.array(timeit.repeat(lambda: fn(x), repeat=repeat, number=number)) / number * 1e6
    return ts.min(), np.median(ts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--number", type=int, default=20)
    a = p.parse_args()
    print(f"{'workload':10s} {'numpy fwd':>16s} {'compiled fwd':>16s} {'compiled grad':>16s}"
          f"  (us, min / median)")
    for name, (f, x) in WORK.items():
        w = rng.standard_normal(np.shape(f(x)))
        rows = [_time(f, x, a.repeat, a.number),
                _time(ad.jit(f), x, a.repeat, a.number),
                _time(ad.grad(lambda x: np.sum(f(x) * w)), x, a.repeat, a.number)]
        print(f"{name:10s} " + " ".join(f"{lo:8.0f}/{med:<7.0f}" for lo, med in rows))


if __name__ == "__main__":
    main()
