"""Compiled gradients at 1 and N threads, side by side in one process (backend/parallel.py).

    PYTHONPATH=. python benchmarks/bench_threads.py [--threads 1,2] [--rounds 15] [--cases ...]

For each case three variants of the same gradient run in turn, round after round:
  unsplit  compiled with no loop split (parallel.MIN_WORK raised), 1 thread: the code before
           the thread pool existed;
  T=n      the default compiled code (loops split) with ad.config.num_threads = n (the pool
           and numpy's BLAS both use n threads).
Each cell is the median over rounds of one round's time per call (min-max in brackets); the
ratio columns are medians of the per-round ratios (paired, so machine drift cancels). On a
machine whose other cores are busy the N-thread speed-up shrinks toward 1: quote ranges. The
"worker" column is the chunks per call that the pool's workers (not the calling thread) ran at
the largest thread count, out of the split loops' chunks per call (a late worker leaves its
share to the caller: a busy machine).
"""
from __future__ import annotations

import argparse
import re
import time

import numpy as np

import autodiff_jit as ad
from autodiff_jit.backend import parallel, pool
from autodiff_jit.bench.objectives import OBJECTIVES

CASES = [("polynomial", "3 scalars"), ("rosenbrock", "n=10"), ("rosenbrock", "n=1e6"),
         ("mlp", "b=256,784-128-10"), ("gmm", "d=10,k=25,n=1e4")]


def _per_call(call, min_time):
    """(seconds per call, calls made in all), looping for at least min_time."""
    loops, t, calls = 1, 0.0, 0
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            call()
        t = time.perf_counter() - t0
        calls += loops
        if t >= min_time:
            return t / loops, calls
        loops *= 2 if t < min_time / 4 else 1
        loops = max(loops, int(loops * min_time / max(t, 1e-9)))


def fmt(t):
    return f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds per timed batch")
    ap.add_argument("--cases", help="name:size;name:size;... (default: CASES)")
    ns = ap.parse_args(argv)
    counts = [int(t) for t in ns.threads.split(",")]
    cases = [tuple(c.split(":", 1)) for c in ns.cases.split(";")] if ns.cases else CASES
    print(f"threads {counts}; {ns.rounds} rounds; default num_threads "
          f"{ad.config.num_threads}")
    header = ["case", "unsplit"] + [f"T={n}" for n in counts] + \
        [f"T={n}/unsplit" for n in counts] + ["worker"]
    rows = []
    for name, label in cases:
        obj = OBJECTIVES[name]
        size = obj.size(label)
        args = obj.make_args(size.params, np.random.default_rng(0))
        fn = obj.make_fn(size.params)
        split = ad.grad(fn, argnums=obj.argnums)
        split(*args)
        old = parallel.MIN_WORK
        parallel.MIN_WORK = 1 << 62
        try:
            unsplit = ad.grad(fn, argnums=obj.argnums)
            unsplit(*args)
        finally:
            parallel.MIN_WORK = old
        llvm_ir = split.llvm_ir(*args)
        n_split = llvm_ir.count('call void @"adj_parallel_for"')
        chunks = sum(int(c) for c in re.findall(
            r'call void @"adj_parallel_for"\(.*, i64 (\d+)\)$', llvm_ir, re.M))
        variants = [("unsplit", unsplit, 1)] + [(f"T={n}", split, n) for n in counts]
        times = {v: [] for v, _, _ in variants}
        by_workers, top_calls = 0, 0
        for _ in range(ns.rounds):
            for v, g, n in variants:
                ad.config.num_threads = n
                before = (pool.stats() or {}).get("worker_chunks", 0)
                t, calls = _per_call(lambda: g(*args), ns.min_time)
                times[v].append(t)
                if chunks and g is split and n == max(counts):
                    by_workers += pool.stats()["worker_chunks"] - before
                    top_calls += calls
        ad.config.num_threads = None
        cells = [f"{name} {label} ({n_split} split)"]
        for v, _, _ in variants:
            t = times[v]
            cells.append(f"{fmt(np.median(t))} [{fmt(min(t))}-{fmt(max(t))}]")
        for n in counts:
            r = np.array(times[f"T={n}"]) / np.array(times["unsplit"])
            cells.append(f"{np.median(r):.2f} [{r.min():.2f}-{r.max():.2f}]")
        cells.append(f"{by_workers / max(top_calls, 1):.1f}/{chunks}" if chunks else "-")
        rows.append(cells)
        print(" | ".join(cells), flush=True)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
