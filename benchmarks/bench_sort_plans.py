"""Sort plans side by side in one process: each of `--plans` (vecsort.FORCE values: "off" = the
radix and network plans, "avx2", "avx512"; only plans the host can run) compiles np.sort's
forward and gradient afresh (its own disk cache directory), then every round times numpy's
np.sort, its default argsort and each plan's compiled calls in turn; prints the median per-round
ratio to np.sort (argsort cases: to np.argsort). CPU time, compiled loops on one thread.

    python benchmarks/bench_sort_plans.py --plans off,avx2 [--repeat 7] [--cases 1e5,rows]
"""
import argparse
import os
import tempfile
import time
import timeit

import numpy as np

import autodiff_jit as ad
from autodiff_jit.backend import vecsort

rng = np.random.default_rng(0)


def _normal(*shape):
    return rng.standard_normal(shape)


CASES = {
    "1e3": _normal(1000), "1e5": _normal(100_000), "1e6": _normal(1_000_000),
    "f32_1e3": _normal(1000).astype(np.float32), "f32_1e5": _normal(100_000).astype(np.float32),
    "f32_1e6": _normal(1_000_000).astype(np.float32),
    "i64_1e5": rng.integers(-10 ** 9, 10 ** 9, 100_000),
    "rows": _normal(100, 1000), "f32_rows": _normal(100, 1000).astype(np.float32),
    "argsort_1e5": _normal(100_000),
}


def _sort(a):
    return np.sort(a, axis=-1)


def _argsort(a):
    return np.argsort(a, axis=-1)


def _cpu(fn, x, number):
    return timeit.Timer(lambda: fn(x), timer=time.process_time).timeit(number=number) / number


def run(name, plans, repeat, root):
    x = CASES[name]
    arg = name.startswith("argsort")
    f = _argsort if arg else _sort
    cols = {"np": f} if arg else {"np": f, "np argsort": _argsort}
    w = rng.standard_normal(x.shape).astype(x.dtype)
    for p in plans:
        vecsort.FORCE = p
        os.environ["AUTODIFF_JIT_CACHE_DIR"] = os.path.join(root, p)
        cols[f"{p} fwd"] = ad.jit(f)
        if not arg and x.dtype != np.int64:
            cols[f"{p} grad"] = ad.grad(lambda a: np.sum(_sort(a) * w))
        for k in (f"{p} fwd", f"{p} grad"):
            if k in cols:
                cols[k](x)   # compile now, under this plan
    vecsort.FORCE = None
    number = {k: max(1, int(0.05 / max(_cpu(fn, x, 1), 1e-7))) for k, fn in cols.items()}
    times = {k: [] for k in cols}
    for _ in range(repeat):
        for k, fn in cols.items():
            times[k].append(_cpu(fn, x, number[k]))
    base = np.array(times["np"])
    ratios = "  ".join(f"{k} {np.median(np.array(v) / base):.2f}" for k, v in times.items()
                       if k != "np")
    print(f"{name:12s} np {np.median(base) * 1e6:8.0f} us  {ratios}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--plans", default="off,avx2")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--cases", default=",".join(CASES))
    args = p.parse_args()
    ad.config.num_threads = 1
    with tempfile.TemporaryDirectory(prefix="adj_sort_plans_") as root:
        for name in args.cases.split(","):
            run(name, args.plans.split(","), args.repeat, root)


if __name__ == "__main__":
    main()
