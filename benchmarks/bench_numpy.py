"""Compiled forward and gradient of the numpy primitives and composites vs numpy's forward.

    python benchmarks/bench_numpy.py [--repeat 7] [--cpu] [--cases sort_1e5,pad_reflect,...]

Workloads (float64 unless named): sort of 1e3..1e6 values, of 1e5 float32 and int64 values and
of rows (1000x100, 10000x16 and 100x1000, along the last axis); argsort of 1e3..1e6 (the argsort
primitive: a radix sort; np.sort is the sort primitive, the same kernel); median, quantile,
nanmedian, partition and argpartition (the argselect, partition and argpartition primitives:
a radix select, no sort) of 1e5 values (partition also float32, and with two kth, for which
numpy runs its generic introselect instead of its SIMD one) and of rows (1000x100); searchsorted uses no sort; cumprod along rows of 1000x100 and
of 1e6 values (the cumprod primitive; its gradient is the cumprod_grad primitive); convolve of
10k and 1e6 samples with a 64-tap kernel (Toeplitz gather + product);
pad of 1000x1000 by 8 in every supported mode (one take_runs copy / one padding view).
Columns: numpy forward; compiled forward (ad.jit); compiled gradient of sum(f(x) * w) (ad.grad,
which also runs the forward); for sort and argsort also numpy's stable argsort (the same
contract as ours) and its default argsort (x86-simd-sort's AVX-512 argsort on such CPUs): the
gradient of a sort needs the permutation, so those are the fair bar for it and for argsort,
np.sort's forward for the forward (which, compiled, sorts the keys alone). Times are medians over `repeat` rounds, in microseconds per call; in each round every
column is timed in turn (side by side in one process), and the ratios (compiled / numpy forward)
are medians of the per-round ratios, so a drift in machine speed cancels. --cpu times the
process's CPU time instead of wall time, with compiled loops on one thread (ad.config.num_threads
= 1; numpy's sort, pad and cumprod are single-threaded too): on a machine shared with other
work, time spent waiting for a core then does not count.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import autodiff_jit as ad  # noqa: E402

rng = np.random.default_rng(0)
KERNEL = rng.standard_normal(64)


def _stable(x):
    return np.argsort(x, kind="stable")


def _rows(x):
    return np.argsort(x, axis=-1, kind="stable")


def _np_argsort(x):
    return np.argsort(x, axis=-1)


def _pad(mode, **kw):
    return lambda x: np.pad(x, 8, mode=mode, **kw)


def _normal(*shape):
    return rng.standard_normal(shape)


# name -> (function, input, differentiable, numpy's stable counterpart or None)
WORK = {
    "sort_1e3": (np.sort, _normal(1_000), True, _stable),
    "sort_1e4": (np.sort, _normal(10_000), True, _stable),
    "sort_1e5": (np.sort, _normal(100_000), True, _stable),
    "sort_1e6": (np.sort, _normal(1_000_000), True, _stable),
    "sort_f32_1e5": (np.sort, _normal(100_000).astype(np.float32), True, _stable),
    "sort_i64_1e5": (np.sort, rng.integers(-10 ** 9, 10 ** 9, 100_000), False, _stable),
    "sort_rows": (np.sort, _normal(1000, 100), True, _rows),
    "sort_rows16": (np.sort, _normal(10_000, 16), True, _rows),
    "sort_rows1000": (np.sort, _normal(100, 1000), True, _rows),
    "argsort_1e3": (np.argsort, _normal(1_000), False, _stable),
    "argsort_1e4": (np.argsort, _normal(10_000), False, _stable),
    "argsort_1e5": (np.argsort, _normal(100_000), False, _stable),
    "argsort_1e6": (np.argsort, _normal(1_000_000), False, _stable),
    "argsort_rows": (lambda x: np.argsort(x, axis=-1), _normal(1000, 100), False, _rows),
    "median_1e5": (np.median, _normal(100_000), True, None),
    "median_rows": (lambda x: np.median(x, axis=1), _normal(1000, 100), True, None),
    "quantile_1e5": (lambda x: np.quantile(x, [0.1, 0.5, 0.9]), _normal(100_000), True, None),
    "nanmedian_1e5": (np.nanmedian, np.where(rng.random(100_000) < 0.1, np.nan,
                                              _normal(100_000)), True, None),
    "partition_1e5": (lambda x: np.partition(x, 50_000), _normal(100_000), True, None),
    "partition_f32": (lambda x: np.partition(x, 50_000), _normal(100_000).astype(np.float32),
                          True, None),
    "partition_2kth": (lambda x: np.partition(x, [1_000, 50_000]), _normal(100_000), True,
                         None),
    "argpartition": (lambda x: np.argpartition(x, 50_000), _normal(100_000), False, None),
    "partition_rows": (lambda x: np.partition(x, [10, 90], axis=1), _normal(1000, 100), True,
                       None),
    "cumprod": (lambda x: np.cumprod(x, axis=1), rng.uniform(0.9, 1.1, (1000, 100)), True, None),
    "cumprod_1e6": (np.cumprod, rng.uniform(0.999, 1.001, 1_000_000), True, None),
    "convolve": (lambda x: np.convolve(x, KERNEL), _normal(10_000), True, None),
    "convolve_1e6": (lambda x: np.convolve(x, KERNEL), _normal(1_000_000), True, None),
    "pad_constant": (_pad("constant", constant_values=1.5), _normal(1000, 1000), True, None),
    "pad_reflect": (_pad("reflect"), _normal(1000, 1000), True, None),
    "pad_symmetric": (_pad("symmetric"), _normal(1000, 1000), True, None),
    "pad_edge": (_pad("edge"), _normal(1000, 1000), True, None),
    "pad_wrap": (_pad("wrap"), _normal(1000, 1000), True, None),
}


CLOCK = [time.perf_counter]


def _time(fn, x, number):
    return timeit.Timer(lambda: fn(x), timer=CLOCK[0]).timeit(number=number)


def _number(fn, x, budget=0.02):
    """Calls per timing so that one timing takes about `budget` seconds."""
    t = _time(fn, x, 1)
    return max(1, int(budget / max(t, 1e-7)))


def run(name, repeat):
    f, x, differentiable, stable = WORK[name]
    cols = {"numpy": f, "compiled": ad.jit(f)}
    if differentiable:
        w = rng.standard_normal(np.shape(f(x)))
        cols["grad"] = ad.grad(lambda x: np.sum(f(x) * w))
    if stable is not None:
        cols["np stable"] = stable
        cols["np argsort"] = _np_argsort
    for fn in cols.values():
        fn(x)  # compile / warm up
    numbers = {k: _number(fn, x) for k, fn in cols.items()}
    times = {k: [] for k in cols}
    for _ in range(repeat):
        for k, fn in cols.items():
            times[k].append(_time(fn, x, numbers[k]) / numbers[k] * 1e6)
    times = {k: np.array(v) for k, v in times.items()}
    ratios = {k: float(np.median(v / times["numpy"])) for k, v in times.items() if k != "numpy"}
    return {k: float(np.median(v)) for k, v in times.items()}, ratios


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--cases", default=",".join(WORK), help="comma-separated subset of: "
                   + ", ".join(WORK))
    p.add_argument("--cpu", action="store_true", help="CPU time, compiled loops on one thread")
    a = p.parse_args()
    if a.cpu:
        CLOCK[0] = time.process_time
        ad.config.num_threads = 1
    print(f"{'workload':14s} {'numpy':>9s} {'compiled':>9s} {'grad':>9s} {'np stable':>9s}"
          f" {'np argsort':>10s} {'fwd/np':>7s} {'grad/np':>8s} {'stable/np':>9s}"
          f" {'argsort/np':>10s}   (us, medians)")
    for name in a.cases.split(","):
        med, rat = run(name, a.repeat)

        def cell(d, k, fmt):
            return format(d[k], fmt) if k in d else "-".rjust(len(format(1.0, fmt)))
        print(f"{name:14s} {med['numpy']:9.0f} {med['compiled']:9.0f} {cell(med, 'grad', '9.0f')}"
              f" {cell(med, 'np stable', '9.0f')} {cell(med, 'np argsort', '10.0f')}"
              f" {rat['compiled']:7.2f} {cell(rat, 'grad', '8.2f')}"
              f" {cell(rat, 'np stable', '9.2f')} {cell(rat, 'np argsort', '10.2f')}", flush=True)


if __name__ == "__main__":
    main()
