"""Compiled gathers with traced (run-time) indices: the cost of the out-of-range check.

    python benchmarks/bench_gather.py [--repeat 7] [--number 50]

Workloads (float64 data, int64 indices passed as arguments, so the indices are traced):
  take      y = x[idx] * 2 + 1                     (a fused gather loop, 1M indices into 10k)
  sorted    y = np.sum(x[np.argsort(x)] * w)       (a gather by a computed permutation, 100k)
  embed     grad of sum(tanh(W[idx]) * v) wrt W    (gather forward, take_add backward;
                                                    W 1000x64, 20k rows gathered)
Times are min and median over `repeat` runs of `number` calls, in microseconds per call; numpy's
forward is measured side by side for scale.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import autodiff_jit as ad  # noqa: E402

rng = np.random.default_rng(0)


def _take(x, idx):
    return x[idx] * 2.0 + 1.0


def _sorted(x, w):
    return np.sum(x[np.argsort(x)] * w)


def _embed(W, idx, v):
    return np.sum(np.tanh(W[idx]) * v)


def workloads():
    x = rng.standard_normal(10_000)
    idx = rng.integers(-10_000, 10_000, 1_000_000)
    xs, ws = rng.standard_normal(100_000), rng.standard_normal(100_000)
    W = rng.standard_normal((1000, 64))
    eidx = rng.integers(0, 1000, 20_000)
    v = rng.standard_normal((20_000, 64))
    return {
        "take": (_take, ad.jit(_take), (x, idx)),
        "sorted": (_sorted, ad.jit(_sorted), (xs, ws)),
        "embed": (_embed, ad.grad(_embed), (W, eidx, v)),
    }


def _time(fn, args, repeat, number):
    fn(*args)  # compile / warm up
    ts = np.array(timeit.repeat(lambda: fn(*args), repeat=repeat, number=number)) / number * 1e6
    return ts.min(), np.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=50)
    a = ap.parse_args(argv)
    print(f"{'workload':10s} {'numpy fwd':>20s} {'compiled':>20s}   (us/call: min / median)")
    for name, (np_fn, fn, args) in workloads().items():
        ref = np_fn(*args)
        if name != "embed":
            np.testing.assert_allclose(fn(*args), ref, rtol=1e-12, atol=1e-9)
        n = _time(np_fn, args, a.repeat, a.number)
        c = _time(fn, args, a.repeat, a.number)
        print(f"{name:10s} {n[0]:9.1f} / {n[1]:8.1f} {c[0]:9.1f} / {c[1]:8.1f}")


if __name__ == "__main__":
    main()
