"""Tape mode vs compiled mode vs PyTorch eager vs HIPS autograd (peers skipped when missing).

    python benchmarks/bench_tape.py [--repeat 15] [--number 300]
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_tape.py --table [--before DIR] [--rounds 7]

`--table`: tape mode vs torch eager on every `autodiff-jit bench` objective at the default
sizes plus the peer-benchmark sizes (MSE n=10, GMM d=2 k=5 n=1000; `--cases a,b` picks
objectives), float64, gradients
w.r.t. the objective's argnums, timed interleaved in one process (round-robin, the min per
call over `--rounds` rounds). `--clock cpu` times with process CPU time (all threads) instead of wall time; with
`--torch-threads 1` that compares the work done, and is steady on a loaded machine. `--before DIR` adds a column for an older copy of the package
importable from DIR as `autodiff_jit_before` (e.g. `cp -r autodiff_jit DIR/autodiff_jit_before`
on the old commit), so before/after/torch come from one run.

Workloads (gradients w.r.t. all inputs, float64), the `autodiff-jit bench` objectives:
  poly: x*x*y + 3*y*z**3 - 2*x*z + x**4/(1 + y*y) on three scalars (14 tape nodes)
  rosenbrock: sum(100 (x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2), n = 10 (11 tape nodes)
Rows: tape grad (ad.grad(f, mode="tape")), tape Tensor API (torch-style: tensors,
backward(), .grad), compiled (ad.grad), torch eager (Tensor API), HIPS autograd (grad).
Times are the min and median over `repeat` runs of `number` calls, in microseconds per
gradient (on a shared machine the min is the steadier figure).
"""
from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import autodiff_jit as ad  # noqa: E402
from autodiff_jit import tape  # noqa: E402


from autodiff_jit.bench.objectives import polynomial as poly, rosenbrock  # noqa: E402

P3 = (1.5, -0.5, 2.0)
X10 = np.linspace(-1.0, 1.5, 10)


def cases():
    out = {"poly": {}, "rosenbrock n=10": {}}
    tp = ad.grad(poly, argnums=(0, 1, 2), mode="tape")
    tr = ad.grad(rosenbrock, mode="tape")
    cp = ad.grad(poly, argnums=(0, 1, 2))
    cr = ad.grad(rosenbrock)

    def tape_api_poly():
        x = tape.Tensor(P3[0], requires_grad=True, dtype=np.float64)
        y = tape.Tensor(P3[1], requires_grad=True, dtype=np.float64)
        z = tape.Tensor(P3[2], requires_grad=True, dtype=np.float64)
        poly(x, y, z).backward()
        return x.grad, y.grad, z.grad

    def tape_api_ros():
        x = tape.Tensor(X10, requires_grad=True)
        rosenbrock(x).backward()
        return x.grad

    out["poly"]["tape grad"] = lambda: tp(*P3)
    out["poly"]["tape Tensor API"] = tape_api_poly
    out["poly"]["compiled"] = lambda: cp(*P3)
    out["rosenbrock n=10"]["tape grad"] = lambda: tr(X10)
    out["rosenbrock n=10"]["tape Tensor API"] = tape_api_ros
    out["rosenbrock n=10"]["compiled"] = lambda: cr(X10)
    try:
        import torch

        def torch_poly():
            x = torch.tensor(P3[0], dtype=torch.float64, requires_grad=True)
            y = torch.tensor(P3[1], dtype=torch.float64, requires_grad=True)
            z = torch.tensor(P3[2], dtype=torch.float64, requires_grad=True)
            poly(x, y, z).backward()
            return x.grad, y.grad, z.grad

        def torch_ros():
            x = torch.tensor(X10, requires_grad=True)
            torch.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).backward()
            return x.grad
        out["poly"]["torch eager"] = torch_poly
        out["rosenbrock n=10"]["torch eager"] = torch_ros
    except ImportError:
        print("torch not installed: skipping torch eager")
    try:
        import autograd
        import autograd.numpy as anp
        hp = autograd.grad(poly, argnum=(0, 1, 2))
        hr = autograd.grad(lambda x: anp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2
                                             + (1.0 - x[:-1]) ** 2))
        out["poly"]["HIPS autograd"] = lambda: hp(*P3)
        out["rosenbrock n=10"]["HIPS autograd"] = lambda: hr(X10)
    except ImportError:
        print("HIPS autograd not installed: skipping autograd")
    return out


def check(table):
    """All rows compute the same gradient."""
    for workload, rows in table.items():
        ref = None
        for name, fn in rows.items():
            res = fn()
            flat = np.concatenate([np.ravel(np.asarray(getattr(r, "detach", lambda: r)()
                                                       if not isinstance(r, tape.Tensor)
                                                       else r.detach().numpy(), dtype=float))
                                   for r in (res if isinstance(res, tuple) else (res,))])
            if ref is None:
                ref = flat
            np.testing.assert_allclose(flat, ref, rtol=1e-10, err_msg=f"{workload}: {name}")


TABLE_SIZES = [("polynomial", "3 scalars", None), ("rosenbrock", "n=10", None),
               ("rosenbrock", "n=1e3", None), ("rosenbrock", "n=1e6", None),
               ("mse_linear", "n=10", {"n": 10, "d_in": 3, "d_out": 2}),
               ("mse_linear", "n=1e5", None), ("logistic", "n=1e4,d=100", None),
               ("mlp", "b=256,784-128-10", None),
               ("gmm", "d=2,k=5,n=1000", {"d": 2, "k": 5, "n": 1000}),
               ("gmm", "d=10,k=25,n=1e4", None), ("gp_nll", "n=500", None),
               ("lstsq_solve", "n=200", None),
               ("bundle_adjustment", "c=50,p=2000,o=8000", None)]


def _min_per_call(fn, budget, timer=time.perf_counter):
    """Best time per call (s) over a batch of calls lasting about `budget` seconds."""
    n, t = 1, 0.0
    while True:
        t = timeit.Timer(fn, timer=timer).timeit(number=n)
        if t > budget / 5 or n > 10 ** 6:
            break
        n *= 4
    n = max(1, int(n * budget / max(t, 1e-9)))
    return min(timeit.Timer(fn, timer=timer).repeat(number=n, repeat=3)) / n


def run_table(argv_ns):
    from autodiff_jit.bench.objectives import OBJECTIVES
    from autodiff_jit.bench import peers
    impls = {"tape": ad}
    if argv_ns.before:
        sys.path.insert(0, argv_ns.before)
        import autodiff_jit_before
        impls = {"tape before": autodiff_jit_before, "tape": ad}
    have_torch = peers.available("torch")[0]
    # cpu: process CPU time (all threads), steadier than wall time on a loaded machine; with
    # torch on one thread it compares the work each does
    timer = time.process_time if argv_ns.clock == "cpu" else time.perf_counter
    if have_torch and argv_ns.torch_threads:
        import torch
        torch.set_num_threads(argv_ns.torch_threads)
    if have_torch:
        import torch
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy BLAS "
              f"threads: OPENBLAS_NUM_THREADS={__import__('os').environ.get('OPENBLAS_NUM_THREADS')}")
    rows = []
    wanted = set(argv_ns.cases.split(",")) if argv_ns.cases else None
    for name, label, params in TABLE_SIZES:
        if wanted is not None and name not in wanted:
            continue
        obj = OBJECTIVES[name]
        p = params if params is not None else obj.size(label).params
        fn = obj.make_fn(p)
        args = obj.make_args(p, np.random.default_rng(0))
        calls = {}
        for key, mod in impls.items():
            # an older package runs its own copy of the objective where it has one (gp_nll
            # calls the package's solve_triangular), else this one (plain numpy code)
            own = importlib.import_module(mod.__name__ + ".bench.objectives").OBJECTIVES.get(name)
            f = own.make_fn(p) if own is not None and mod is not ad else fn
            g = mod.grad(f, argnums=obj.argnums, mode="tape")
            calls[key] = (lambda g=g: g(*args))
        ref = [np.asarray(v) for v in calls["tape"]()]
        if have_torch:
            call, to_np = peers.prepare("torch", name, p, args, obj.argnums)
            calls["torch"] = call
            for r, t in zip(ref, to_np(call())):
                np.testing.assert_allclose(t, r, rtol=1e-8, atol=1e-10, err_msg=f"{name} {label}")
        for c in calls.values():
            c()
        best = {k: float("inf") for k in calls}
        for _ in range(argv_ns.rounds):
            for k, c in calls.items():
                best[k] = min(best[k], _min_per_call(c, argv_ns.budget, timer))
        rows.append((f"{name} {label}", best))
        cols = "  ".join(f"{k} {v * 1e6:10.1f} us" for k, v in best.items())
        ratio = f"  tape/torch {best['tape'] / best['torch']:.2f}" if "torch" in best else ""
        print(f"{name + ' ' + label:28s} {cols}{ratio}", flush=True)
    keys = list(rows[0][1])
    print("\n| case | " + " | ".join(f"{k} (µs)" for k in keys) +
          (" | tape / torch |" if have_torch else " |"))
    print("|---|" + "---:|" * (len(keys) + have_torch))
    for case, best in rows:
        cells = " | ".join(f"{best[k] * 1e6:.0f}" if best[k] > 1e-4 else f"{best[k] * 1e6:.1f}"
                           for k in keys)
        extra = f" | {best['tape'] / best['torch']:.2f} |" if have_torch else " |"
        print(f"| {case} | {cells}{extra}")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--number", type=int, default=300)
    ap.add_argument("--table", action="store_true", help="tape vs torch on the bench objectives")
    ap.add_argument("--before", default=None, help="dir holding autodiff_jit_before (--table)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.2, help="seconds per timing batch")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or process CPU time (steadier on a loaded machine)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's own choice)")
    ap.add_argument("--cases", default=None,
                    help="comma-separated objective names (--table; default: all)")
    args = ap.parse_args(argv)
    if args.table:
        return run_table(args)
    table = cases()
    check(table)
    results = {}
    for workload, rows in table.items():
        print(f"\n{workload}")
        base = None
        for name, fn in rows.items():
            for _ in range(50):
                fn()
            ts = timeit.repeat(fn, number=args.number, repeat=args.repeat)
            med = float(np.median(ts)) / args.number * 1e6
            best = float(np.min(ts)) / args.number * 1e6
            results[(workload, name)] = med
            if name == "tape grad":
                base = best
            print(f"  {name:16s} min {best:8.1f} us   median {med:8.1f} us   "
                  f"this / tape grad (min) = {best / base:5.2f}")
    return results


if __name__ == "__main__":
    main()
