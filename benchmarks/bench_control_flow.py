"""Benchmark: structured control flow (issue 7). Not a test.

    PYTHONPATH=. python benchmarks/bench_control_flow.py [--quick]

1. Explicit Euler for dy/dt = -k y, gradient w.r.t. (k, y0), at 10, 1e3, 1e5 steps (compiled):
   first-call time (trace + AD + passes + LLVM compile) per trip count and the ratio 1e5:10;
   the IR size; steady-state run time of the gradient vs the forward loop.
2. Peak memory of the gradient at 1e6 steps (interpreter, tracemalloc) with and without
   checkpointing, and the run time each costs.
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import autodiff_jit as ad
import autodiff_jit.backend.lower_control  # noqa: F401  (registers region-op emitters)
from autodiff_jit.control import fori_loop
from autodiff_jit.passes import PIPELINE
from autodiff_jit.passes import pipeline as _pipeline
from autodiff_jit.passes.licm import licm, merge_recorded_loops, prune_scan


def euler(n, checkpoint=None):
    h = 1.0 / n

    def f(k, y0):
        return fori_loop(0, n, lambda i, y: y - h * k * y, y0, checkpoint=checkpoint)
    f.__name__ = f"euler{n}"
    return f


def best(fn, *args, repeat=5, number=None):
    if number is None:
        t0 = time.perf_counter()
        fn(*args)
        dt = time.perf_counter() - t0
        number = max(1, int(0.05 / max(dt, 1e-9)))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def compile_times(sizes):
    print("## Euler gradient, compiled mode: first call (trace + AD + passes + LLVM) per trip count")
    print(f"{'steps':>8} {'first call [ms]':>16} {'IR eqns':>8} {'LLVM lines':>11} "
          f"{'fwd run [us]':>13} {'grad run [us]':>14} {'grad/fwd':>9}")
    firsts = {}
    for n in sizes:
        f = euler(n)
        g = ad.grad(f, argnums=(0, 1))
        t0 = time.perf_counter()
        g(2.0, 1.5)
        first = time.perf_counter() - t0
        firsts[n] = first
        fwd = ad.jit(f)
        fwd(2.0, 1.5)
        n_ir = sum(1 for _ in g.ir(2.0, 1.5).all_eqns())
        lines = len(g.llvm_ir(2.0, 1.5).splitlines())
        tf = best(fwd, 2.0, 1.5)
        tg = best(g, 2.0, 1.5)
        print(f"{n:>8} {first * 1e3:>16.1f} {n_ir:>8} {lines:>11} {tf * 1e6:>13.1f} "
              f"{tg * 1e6:>14.1f} {tg / tf:>9.2f}")
        exact = (1.5 * n * (1 - 2.0 / n) ** (n - 1) * (-1.0 / n), (1 - 2.0 / n) ** n)
        np.testing.assert_allclose(g(2.0, 1.5), exact, rtol=1e-9)
    print(f"first-call ratio {max(sizes):g} : {min(sizes)} steps = "
          f"{firsts[max(sizes)] / firsts[min(sizes)]:.2f}")
    return firsts


def memory(n, ks, mode):
    print(f"\n## Euler gradient at {n:g} steps, mode={mode}: memory with/without checkpointing")
    if mode == "interpret":
        print("peak = tracemalloc peak of one call (after building); run time measured without "
              "tracemalloc")
    else:
        print("peak = tracemalloc peak of the first call (trace + compile + the arena allocation); "
              "arena = the native scratch plan")
    print(f"{'checkpoint':>11} {'peak [MB]':>10} {'arena [MB]':>11} {'run [ms]':>9} "
          f"{'stored rows':>16}")
    ref = None
    for k in ks:
        g = ad.grad(euler(n, checkpoint=k), argnums=(0, 1), mode=mode)
        if mode == "compiled":
            tracemalloc.start()
            g(2.0, 1.5)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        else:
            g(2.0, 1.5)
        spec = g.specialize(2.0, 1.5)
        arena = getattr(getattr(spec.executable, "lowered", None), "arena_bytes", 0)
        rows = sorted({o.shape[0] for e in spec.optimized.all_eqns() for o in e.outputs
                       if o.shape})
        t0 = time.perf_counter()
        out = g(2.0, 1.5)
        dt = time.perf_counter() - t0
        if mode == "interpret":
            tracemalloc.start()
            g(2.0, 1.5)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        if ref is None:
            ref = out
        np.testing.assert_allclose(out, ref, rtol=1e-9)
        label = "none" if k is None else ("sqrt(n)" if k is True else str(k))
        print(f"{label:>11} {peak / 2**20:>10.3f} {arena / 2**20:>11.3f} {dt * 1e3:>9.1f} "
              f"{str(rows):>16}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller memory benchmark (1e5 steps)")
    ap.add_argument("--loop-passes", action="store_true",
                    help="also run the loop passes (merge/licm/prune) in the pipeline")
    args = ap.parse_args()
    if args.loop_passes:
        _pipeline.optimize.__defaults__ = (PIPELINE[:2] + (
            ("merge_loops", merge_recorded_loops), ("licm", licm), ("prune_scan", prune_scan)) +
            PIPELINE[2:],)
    ad.grad(lambda x: x * 2.0)(1.0)  # warm up LLVM once, outside the measurements
    compile_times([10, 1000, 100000])
    memory(10**6, [None, True, 100], "compiled")
    memory(10**4 if args.quick else 10**5, [None, True], "interpret")


if __name__ == "__main__":
    main()
