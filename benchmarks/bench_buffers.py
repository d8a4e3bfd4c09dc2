"""Tape mode with and without the buffer cache (backend/buffers.py), one process per variant.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_buffers.py [--cases mlp,rosenbrock] [--pairs 3]

What the cache changes is the state of the C allocator, which everything else in a process
shares, so each figure comes from a process that runs nothing but one objective's tape-mode
gradient (`ad.config.buffer_cache_bytes` left at its default, or 0 through
$AUTODIFF_JIT_BUFFER_CACHE_BYTES), as a training loop does. The two variants of a case run
alternately, `--pairs` times each; the table gives the min over processes of each process's
min CPU time per gradient, the page faults per gradient and the ratio cache / no cache.
(bench_tape.py --table interleaves tape mode with torch in one process: torch's own large
frees raise glibc's mmap threshold, so there neither variant faults much.)
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

CASES = [("mlp", "b=256,784-128-10"), ("rosenbrock", "n=1e6"), ("mse_linear", "n=1e5"),
         ("logistic", "n=1e4,d=100"), ("gmm", "d=10,k=25,n=1e4"), ("gp_nll", "n=500"),
         ("lstsq_solve", "n=200"), ("bundle_adjustment", "c=50,p=2000,o=8000")]

_CHILD = r"""
import json, resource, sys, time
import numpy as np
import autodiff_jit as ad
from autodiff_jit.bench import objectives as O
obj = O.OBJECTIVES[sys.argv[1]]
size = obj.size(sys.argv[2])
args = obj.make_args(size.params, np.random.default_rng(0))
g = ad.grad(obj.make_fn(size.params), argnums=obj.argnums, mode="tape")
g(*args)
clock = time.process_time
t0 = clock(); g(*args); once = clock() - t0
reps = max(1, int(0.05 / max(once, 1e-6)))
best = float("inf")
for _ in range(max(5, int(1.0 / max(once * reps, 1e-6)))):
    t0 = clock()
    for _ in range(reps):
        g(*args)
    best = min(best, (clock() - t0) / reps)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    g(*args)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5
print(json.dumps({"us": best * 1e6, "faults": faults}))
"""


def run(case, size, cache_on):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if not cache_on:
        env["AUTODIFF_JIT_BUFFER_CACHE_BYTES"] = "0"
    out = subprocess.run([sys.executable, "-c", _CHILD, case, size], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=None, help="comma-separated objective names")
    ap.add_argument("--pairs", type=int, default=3, help="processes per variant and case")
    ns = ap.parse_args(argv)
    want = set(ns.cases.split(",")) if ns.cases else None
    rows = []
    for case, size in CASES:
        if want and case not in want:
            continue
        got = {True: [], False: []}
        for _ in range(ns.pairs):
            for on in (False, True):
                got[on].append(run(case, size, on))
        off_us = min(r["us"] for r in got[False])
        on_us = min(r["us"] for r in got[True])
        rows.append((f"{case} {size}", off_us, max(r["faults"] for r in got[False]), on_us,
                     max(r["faults"] for r in got[True])))
        print(f"{rows[-1][0]:40s} no cache {off_us:10.0f} us ({rows[-1][2]:6.0f} faults)  "
              f"cache {on_us:10.0f} us ({rows[-1][4]:4.0f} faults)  {on_us / off_us:.2f}",
              flush=True)
    print()
    print("| case | no cache (µs) | faults / call | cache (µs) | faults / call | cache / no cache |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, off_us, off_f, on_us, on_f in rows:
        print(f"| {name} | {off_us:.0f} | {off_f:.0f} | {on_us:.0f} | {on_f:.0f} | "
              f"{on_us / off_us:.2f} |")


if __name__ == "__main__":
    main()
