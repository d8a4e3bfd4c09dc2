"""np.convolve / np.correlate compiled side by side with numpy.

    PYTHONPATH=. python benchmarks/bench_convolve.py [--quick] [--float32] [--cpu]

Columns (medians over repeats, ms): numpy forward, compiled forward (ad.jit), compiled
gradient of sum(convolve(a, v)**2) in a and v (ad.grad), and the ratios to numpy's forward.
All are the convolve primitive: kernels up to 8 taps take its short-kernel path. The
gradient runs three convolutions (the forward, whose values the loss squares, and one for each
input's cotangent), so about 3x the compiled forward is its floor. --cpu times process CPU
time with compiled loops on one thread (numpy's convolve is single-threaded): on a shared
machine, time spent waiting for a core does not count.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import autodiff_jit as ad

SIZES = [(4000, 512), (20000, 1000), (10000, 2000), (100000, 100), (100000, 8), (100000, 3),
         (1000000, 5)]


CLOCK = [time.perf_counter]


def median_ms(fn, reps):
    fn()
    clock = CLOCK[0]
    samples = []
    for _ in range(reps):
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    return statistics.median(samples) * 1e3


def run(sizes, modes, reps, dtype):
    print(f"{'n x m':>13} {'fn':>9} {'mode':>5} {'numpy':>8} {'jit':>8} {'grad':>8} "
          f"{'jit/np':>7} {'grad/np':>7}")
    rng = np.random.default_rng(0)
    for n, m in sizes:
        a, v = rng.normal(size=n).astype(dtype), rng.normal(size=m).astype(dtype)
        for fn in (np.convolve, np.correlate):
            for mode in modes:
                def f(a, v, fn=fn, mode=mode):
                    return fn(a, v, mode)

                def loss(a, v, f=f):
                    return (f(a, v) ** 2).sum()
                jf, gf = ad.jit(f), ad.grad(loss, argnums=(0, 1))
                t_np = median_ms(lambda: f(a, v), reps)
                t_jit = median_ms(lambda: jf(a, v), reps)
                t_grad = median_ms(lambda: gf(a, v), reps)
                print(f"{n:>6} x {m:<5} {fn.__name__:>9} {mode:>5} {t_np:8.2f} {t_jit:8.2f} "
                      f"{t_grad:8.2f} {t_jit / t_np:7.2f} {t_grad / t_np:7.2f}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--float32", action="store_true")
    p.add_argument("--cpu", action="store_true", help="CPU time, compiled loops on one thread")
    args = p.parse_args()
    if args.cpu:
        CLOCK[0] = time.process_time
        ad.config.num_threads = 1
    sizes = SIZES[:2] if args.quick else SIZES
    modes = ("full",) if args.quick else ("full", "same", "valid")
    run(sizes, modes, 5 if args.quick else 11, np.float32 if args.float32 else np.float64)


if __name__ == "__main__":
    main()
