"""Cold start: `import autodiff_jit` and the first gradient of a fresh process.

    PYTHONPATH=. python benchmarks/bench_coldstart.py [--repeat 7] [--case index|poly|trig]
                                                      [--user-cache | --default-cache]
                                                      [--profile] [--later N]

Each sample is a new Python process that imports autodiff_jit, builds `ad.grad` of a
3-scalar function (index: x[0]**2 * x[1] + x[2]; poly: the bench's polynomial; trig:
sum(sin(x) * x)) and calls it once, timing the import and the first call separately
(perf_counter inside the child, so interpreter start-up is not counted). The child is a script
file, as a user's program is (so the function's source is there to be read and converted). Two
states of the
disk cache (a fresh directory in $AUTODIFF_JIT_CACHE_DIR per state):

* cold: the directory is empty (first process on a machine / after an upgrade): the one-time
  support code (the generic C-API call wrapper) is compiled by LLVM and stored;
* warm: the directory was filled by an earlier process: the support code is loaded.

The user's function itself is compiled in both states (cache=False), unless --user-cache
passes cache=True or --default-cache passes no cache= (the disk cache is on by default): then
warm also loads the function's code from disk.
Samples alternate cold/warm so machine load affects both alike; medians and ranges printed.
Byte-compiled modules (.pyc) are written first, as an installed package has them.
--profile prints a cProfile of one first call instead (in a fresh process, warm cache).
--later N times the compiles after the first instead: N distinct small gradients (3 values,
a reduction and powers) in one process, split into stages by timing the functions that do
them (trace, reverse mode, IR passes, lowering to LLVM IR, LLVM parse, LLVM optimization,
LLVM code generation, the rest); per-function medians over --repeat processes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import autodiff_jit as ad
import numpy as np
t1, c1 = time.perf_counter(), time.process_time()
case = sys.argv[1]
opt = {"0": {"cache": False}, "1": {"cache": True}, "default": {}}[sys.argv[2]]
if case == "poly":   # the bench's polynomial objective, on 3 scalars
    f = lambda x, y, z: x**3 * y + 2.0 * y**2 * z - z**4 + x * y * z
    g, args = ad.grad(f, argnums=(0, 1, 2), **opt), (1.2, -0.7, 0.4)
elif case == "trig":  # sin also needs its huge-argument module (support code too)
    f = lambda x: np.sum(np.sin(x) * x)
    g, args = ad.grad(f, **opt), (np.array([1.0, 2.0, 3.0]),)
else:                # one array of 3 values
    f = lambda x: x[0]**2 * x[1] + x[2]
    g, args = ad.grad(f, **opt), (np.array([1.0, 2.0, 3.0]),)
t2, c2 = time.perf_counter(), time.process_time()
out = g(*args)
t3, c3 = time.perf_counter(), time.process_time()
g(*args)
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t3 - t2, "second": t4 - t3,
                  "import_cpu": c1 - c0, "first_cpu": c3 - c2,
                  "out": [float(v) for v in np.ravel(np.asarray(out, dtype=float))]}))
"""

LATER = r"""
import json, sys, time
import numpy as np
import autodiff_jit as ad
from autodiff_jit import api
import autodiff_jit.backend.lower as lower
from autodiff_jit.backend import engine
import llvmlite.binding as llvm
clock, spent = time.process_time, {}
def timed(owner, name, stage):
    f = getattr(owner, name)
    def run(*a, **k):
        t = clock()
        try:
            return f(*a, **k)
        finally:
            spent[stage] = spent.get(stage, 0.0) + clock() - t
    setattr(owner, name, run)
for owner, name, stage in [(api.Transformed, "_trace", "trace"), (api, "vjp_function", "ad"),
                           (api, "optimize", "ir passes"), (lower, "lower_function", "lower"),
                           (engine, "parse_and_verify", "llvm parse"),
                           (engine, "optimize", "llvm opt"),
                           (llvm.ExecutionEngine, "finalize_object", "llvm codegen")]:
    timed(owner, name, stage)
n, x, keep = int(sys.argv[1]), np.array([1.0, 2.0, 3.0]), []
def make(i):
    return eval(f"lambda x: np.sum(np.tanh(x) * x ** 2) * {1.0 + i} + x[0] * x[1] ** {2 + i % 5}")
g = ad.grad(make(-1), cache=False); g(x); keep.append(g)   # the first compile: not counted
spent.clear()
t0 = clock()
for i in range(n):
    g = ad.grad(make(i), cache=False); g(x); keep.append(g)
total = clock() - t0
spent["rest"] = total - sum(spent.values())
print(json.dumps({"total": total / n, **{k: v / n for k, v in spent.items()}}))
"""

PROFILE = r"""
import cProfile, pstats, sys
import autodiff_jit as ad
import numpy as np
opt = {"0": {"cache": False}, "1": {"cache": True}, "default": {}}[sys.argv[1]]
g = ad.grad(lambda x: x[0]**2 * x[1] + x[2], **opt)
x = np.array([1.0, 2.0, 3.0])
pr = cProfile.Profile(); pr.enable(); g(x); pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(40)
"""


def _env(cache_dir: str) -> dict:
    env = dict(os.environ)
    env["AUTODIFF_JIT_CACHE_DIR"] = cache_dir
    env.pop("AUTODIFF_JIT_CACHE", None)      # the package's default, whatever the caller has
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _script(name: str, code: str) -> str:
    path = os.path.join(tempfile.gettempdir(), f"adj_coldstart_{os.getpid()}_{name}.py")
    with open(path, "w") as f:
        f.write(code)
    return path


def sample(cache_dir: str, case: str, user_cache: str) -> dict:
    out = subprocess.run([sys.executable, _script("child", CHILD), case, user_cache],
                         env=_env(cache_dir), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fmt(values, scale=1e3, unit="ms") -> str:
    v = [scale * x for x in values]
    return f"{statistics.median(v):6.1f} {unit} ({min(v):.1f}-{max(v):.1f})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--case", choices=("poly", "index", "trig"), default="index")
    ap.add_argument("--user-cache", action="store_true", help="grad(..., cache=True)")
    ap.add_argument("--default-cache", action="store_true",
                    help="grad(...) without cache= (default: cache=False)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--later", type=int, default=0, metavar="N",
                    help="time N later compiles by stage instead")
    a = ap.parse_args(argv)
    if a.user_cache and a.default_cache:
        ap.error("--user-cache and --default-cache exclude each other")
    user_cache = "1" if a.user_cache else "default" if a.default_cache else "0"
    # write .pyc files once (a checkout run with PYTHONDONTWRITEBYTECODE has none)
    subprocess.run([sys.executable, "-c", "import autodiff_jit.backend.compiled"],
                   env=_env(tempfile.gettempdir()), check=True)
    root = tempfile.mkdtemp(prefix="adj_coldstart_")
    try:
        warm_dir = os.path.join(root, "warm")
        sample(warm_dir, a.case, user_cache)          # fill the warm directory
        if a.profile:
            subprocess.run([sys.executable, _script("profile", PROFILE), user_cache],
                           env=_env(warm_dir),
                           check=True)
            return
        if a.later:
            rows = [json.loads(subprocess.run(
                [sys.executable, _script("later", LATER), str(a.later)], env=_env(warm_dir),
                capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
                for _ in range(a.repeat)]
            print(f"{a.later} later compiles of small gradients per process, {a.repeat} "
                  f"processes: CPU time per function, median (min-max)")
            for k in rows[0]:
                print(f"  {k:13s} {_fmt([r[k] for r in rows])}")
            return
        res = {"cold": [], "warm": []}
        for i in range(a.repeat):
            cold_dir = os.path.join(root, f"cold{i}")
            res["cold"].append(sample(cold_dir, a.case, user_cache))
            res["warm"].append(sample(warm_dir, a.case, user_cache))
        cache_arg = {"0": "False", "1": "True", "default": "(default)"}[user_cache]
        print(f"case {a.case!r}, user function cache={cache_arg}, {a.repeat} fresh processes "
              f"per state (median (min-max))")
        print("  wall time (CPU time of the process in brackets: less sensitive to a loaded machine)")
        for state in ("cold", "warm"):
            rows = res[state]
            col = lambda k: [r[k] for r in rows]  # noqa: E731
            print(f"  {state}: import {_fmt(col('import'))} [{_fmt(col('import_cpu'))}]   "
                  f"first gradient {_fmt(col('first'))} [{_fmt(col('first_cpu'))}]   "
                  f"second call {_fmt(col('second'), 1e6, 'us')}")
        outs = {json.dumps(r["out"]) for rows in res.values() for r in rows}
        if len(outs) != 1:
            raise SystemExit(f"processes disagree on the gradient: {outs}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for name in ("child", "profile", "later"):
            try:
                os.unlink(os.path.join(tempfile.gettempdir(),
                                       f"adj_coldstart_{os.getpid()}_{name}.py"))
            except OSError:
                pass


if __name__ == "__main__":
    main()
