"""Tape mode vs compiled mode vs PyTorch eager vs HIPS autograd (peers skipped when missing).

    python benchmarks/bench_tape.py [--repeat 15] [--number 300]

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
import pathlib
import sys
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


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--number", type=int, default=300)
    args = ap.parse_args(argv)
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
