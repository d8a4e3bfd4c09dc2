"""Per-call time of a tiny transformed function through the public API, by call style.

    PYTHONPATH=. python benchmarks/bench_api_calls.py [--json out.json]

Same gradient (of sum(w*w*b) + sum(b)) called positionally, as a tuple pytree, as a dict of
parameters, with a keyword argument and with a static argument. Fastest of 9 round-robin
rounds of the mean time per call, in microseconds, measured side by side in one process.
"""
from __future__ import annotations

import json
import statistics
import sys
import timeit

import numpy as np

import autodiff_jit as ad


def per_call_us(cases, number, repeat=9):
    """{label: us per call}: cases timed round-robin (so that load from other processes hits
    them alike), the fastest round of each, less an empty lambda's time."""
    cases = [("(empty lambda)", lambda: None)] + list(cases)
    for _, fn in cases:
        fn()
    best = {label: float("inf") for label, _ in cases}
    for _ in range(repeat):
        for label, fn in cases:
            best[label] = min(best[label], timeit.timeit(fn, number=number) / number * 1e6)
    base = best.pop("(empty lambda)")
    return {label: t - base for label, t in best.items()}


def loss(w, b):
    return np.sum(w * w * b) + np.sum(b)


def loss_tuple(p):
    w, b = p
    return loss(w, b)


def loss_dict(p):
    return loss(p["w"], p["b"])


def loss_static(w, b, k):
    return loss(w, b) * k


def cases(mode="compiled"):
    w, b = np.linspace(0.1, 1.0, 4), np.linspace(1.0, 2.0, 4)
    g_pos = ad.grad(loss, argnums=(0, 1), mode=mode)
    g_tuple = ad.grad(loss_tuple, mode=mode)
    g_dict = ad.grad(loss_dict, mode=mode)
    g_kw = ad.grad(loss, mode=mode)
    g_static = ad.grad(loss_static, argnums=(0, 1), static_argnums=2, mode=mode)
    params = {"w": w, "b": b}
    return [
        ("positional g(w, b)", lambda: g_pos(w, b)),
        ("tuple pytree g((w, b))", lambda: g_tuple((w, b))),
        ("dict pytree g({'w':..,'b':..})", lambda: g_dict(params)),
        ("keyword g(w, b=b)", lambda: g_kw(w, b=b)),
        ("static g(w, b, 3)", lambda: g_static(w, b, 3)),
    ]


def main():
    rows = {}
    for mode in ("compiled", "interpret"):
        print(f"mode={mode}")
        got = per_call_us(cases(mode), number=20_000 if mode == "compiled" else 2_000)
        pos = got["positional g(w, b)"]
        for label, us in got.items():
            rows[f"{mode}: {label}"] = us
            print(f"  {label:34s} {us:8.2f} us   {us / pos:5.2f}x positional")
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
