"""Memory of specializations and the time to build one again.

    PYTHONPATH=. python benchmarks/bench_memory.py [--shapes 10000] [--unbounded 2000]
                                                   [--fresh 300]

1. RSS while one grad is called on N distinct shapes, with the default bounded cache
   (cache_size=64), and on --unbounded shapes with cache_size=None (no bound: what every
   function did before), each in a fresh process.
2. RSS after creating, calling and dropping `--fresh` new grad objects.
3. Time to specialize: first build (trace, AD, optimize, LLVM), again after clear_cache()
   without and with the disk cache.
Figures are this machine's, measured side by side in one run.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def f(x):
    return np.sum(np.sin(x) * x + np.exp(-x * x))


def shapes_run(n, cache_size):
    import autodiff_jit as ad
    g = ad.grad(f, cache_size=cache_size)
    g(np.ones(1))
    points = [(0, rss_mb())]
    for i in range(1, n + 1):
        g(np.ones(i + 1))
        if i % max(n // 10, 1) == 0:
            gc.collect()
            points.append((i, rss_mb()))
    return points


def fresh_run(n):
    import autodiff_jit as ad
    ad.grad(f)(np.ones(3))
    gc.collect()
    start = rss_mb()
    for _ in range(n):
        ad.grad(f)(np.ones(3))   # created, called, dropped
    gc.collect()
    return start, rss_mb()


def respecialize_run():
    import autodiff_jit as ad
    x = np.linspace(0, 1, 50)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for label, cache in (("memory only", False), ("disk cache", d)):
            g = ad.grad(f, cache=cache)
            t = time.perf_counter()
            g(x)
            first = time.perf_counter() - t
            times = []
            for _ in range(5):
                g.clear_cache()
                t = time.perf_counter()
                g(x)
                times.append(time.perf_counter() - t)
            out[label] = (first * 1e3, min(times) * 1e3)
    return out


def child(argv):
    kind = argv[0]
    if kind == "shapes":
        res = shapes_run(int(argv[1]), None if argv[2] == "None" else int(argv[2]))
    elif kind == "fresh":
        res = fresh_run(int(argv[1]))
    else:
        res = respecialize_run()
    print(json.dumps(res))


def run_child(*argv):
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, argv)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    args = sys.argv[1:]
    n = int(args[args.index("--shapes") + 1]) if "--shapes" in args else 10_000
    fresh = int(args[args.index("--fresh") + 1]) if "--fresh" in args else 300
    n_unb = int(args[args.index("--unbounded") + 1]) if "--unbounded" in args else 2000
    print("1. RSS (MB) while grad(f) is called on distinct shapes (shapes seen: RSS)")
    for size, count in ((64, n), (None, n_unb)):
        pts = run_child("shapes", count, size)
        line = "  ".join(f"{i}:{r:.0f}" for i, r in pts)
        per = (pts[-1][1] - pts[1][1]) / max(pts[-1][0] - pts[1][0], 1) * 1e3
        print(f"  cache_size={size!s:5s} {line}\n    growth after the first tenth: "
              f"{per:.1f} kB per new shape")
    start, end = run_child("fresh", fresh)
    print(f"2. {fresh} fresh grad objects created, called once, dropped: RSS {start:.0f} -> "
          f"{end:.0f} MB")
    res = run_child("respecialize")
    print("3. specialization time (ms): first build / again after clear_cache()")
    for label, (first, again) in res.items():
        print(f"  {label:12s} {first:7.1f} / {again:6.1f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
