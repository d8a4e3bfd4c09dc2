"""Memory of specializations and the time to build one again.

    PYTHONPATH=. python benchmarks/bench_memory.py [--shapes 10000] [--unbounded 2000]
                                                   [--fresh 300] [--steps 300]

0. What each step of turning a new specialization's LLVM IR into machine code leaves behind
   (--steps modules of the gradient below, each a new shape, done as
   engine.compile_module(..., unit=...) does them): parse + verify, the O3 pipeline, code
   generation into a CodeUnit (add_module, finalize), removing and freeing the module. Per
   step: heap bytes still allocated afterwards (glibc's mallinfo2) and RSS, per module, over
   all but the first quarter. Then the same for the whole Python side of a new shape.
1. RSS while one grad is called on N distinct shapes, with the default bounded cache
   (cache_size=64), and on --unbounded shapes with cache_size=None (no bound: what every
   function did before), each in a fresh process. The plateau: RSS growth per new shape
   over each tenth of the run (flat: a few kB; each kept specialization costs ~110 kB).
2. RSS after creating, calling and dropping `--fresh` new grad objects.
3. Time to specialize: first build (trace, AD, optimize, LLVM), again after clear_cache()
   without and with the disk cache.
Figures are this machine's, measured side by side in one run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
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


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def heap_bytes() -> float:
    """Bytes malloc has handed out and not had back (glibc; nan elsewhere)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallinfo2"):
        return float("nan")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return float(info.uordblks + info.hblkhd)


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


def steps_run(n):
    """Per-step heap/RSS growth of compiling n new shapes (see the module docstring, 0.)."""
    import autodiff_jit as ad
    from autodiff_jit.backend import engine
    g = ad.grad(f, cache_size=1)
    texts = []
    for i in range(n):   # the modules a new shape compiles (and compiled once already)
        exe = g.specialize(np.ones(i + 2)).executable
        texts.append((exe.llvm_ir(), [exe.lowered.entry]))
    g.clear_cache()
    triple, layout = engine.triple_and_layout()
    steps = ("parse + verify", "O3 pipeline", "codegen (add_module, finalize)",
             "remove + free module")
    heap = dict.fromkeys(steps, 0.0)
    rss = dict.fromkeys(steps, 0.0)
    units = []
    warm = n // 4
    for i, (text, names) in enumerate(texts):
        unit = engine.shared_unit()
        marks = [(heap_bytes(), rss_mb())]
        mod = engine.parse_and_verify(text, unit.context)
        mod.triple, mod.data_layout = triple, layout
        marks.append((heap_bytes(), rss_mb()))
        engine.optimize(mod, loop_unrolling=False)
        marks.append((heap_bytes(), rss_mb()))
        unit.engine.add_module(mod)
        unit.engine.finalize_object()
        assert all(unit.engine.get_function_address(nm) for nm in names)
        marks.append((heap_bytes(), rss_mb()))
        unit.engine.remove_module(mod)
        mod.close()
        units = (units + [unit])[-64:]   # as a cache of 64 specializations keeps them
        marks.append((heap_bytes(), rss_mb()))
        if i >= warm:
            for k, step in enumerate(steps):
                heap[step] += marks[k + 1][0] - marks[k][0]
                rss[step] += marks[k + 1][1] - marks[k][1]
    del units
    # the Python side (trace, AD, passes, lowering, call path) of a new shape: what a full
    # call on a new shape keeps, less the LLVM steps above
    m = n - warm
    out = {step: (heap[step] / m / 1e3, rss[step] / m * 1e3) for step in steps}
    g2 = ad.grad(f, cache_size=64)
    fill = 64 + warm          # past the bound: each new shape evicts one
    for i in range(fill):
        g2(np.ones(n + i + 2))
    gc.collect()
    h0, r0 = heap_bytes(), rss_mb()
    for i in range(fill, fill + m):
        g2(np.ones(n + i + 2))
    gc.collect()
    out["whole new shape (grad call, cache full)"] = ((heap_bytes() - h0) / m / 1e3,
                                                      (rss_mb() - r0) / m * 1e3)
    return out


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
    elif kind == "steps":
        res = steps_run(int(argv[1]))
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
    n_steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 300
    if n_steps:
        res = run_child("steps", n_steps)
        print(f"0. per new module ({n_steps} gradient modules, first quarter left out): heap kB "
              f"/ RSS kB after each step (a step's allocation; the last step frees the module)")
        net = [0.0, 0.0]
        for step, (heap, rss) in res.items():
            if step.startswith("whole"):
                print(f"  {'net: kept by the four steps':40s} {net[0]:7.2f} / {net[1]:7.1f}")
            else:
                net = [net[0] + heap, net[1] + rss]
            print(f"  {step:40s} {heap:7.2f} / {rss:7.1f}")
    print("1. RSS (MB) while grad(f) is called on distinct shapes (shapes seen: RSS)")
    for size, count in ((64, n), (None, n_unb)):
        if not count:
            continue
        pts = run_child("shapes", count, size)
        line = "  ".join(f"{i}:{r:.0f}" for i, r in pts)
        per = (pts[-1][1] - pts[1][1]) / max(pts[-1][0] - pts[1][0], 1) * 1e3
        tenths = "  ".join(f"{(b[1] - a[1]) / max(b[0] - a[0], 1) * 1e3:.0f}"
                           for a, b in zip(pts, pts[1:]))
        print(f"  cache_size={size!s:5s} {line}\n    kB per new shape, each tenth: {tenths}"
              f"\n    growth after the first tenth: {per:.1f} kB per new shape")
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
