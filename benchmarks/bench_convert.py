"""Benchmark: Python control flow converted to cond/while ops (issue 15). Not a test.

    PYTHONPATH=. python benchmarks/bench_convert.py

1. First call (source rewrite + trace + AD + passes + LLVM compile) of the gradient of a
   `for i in range(n)` loop with traced n, built fresh for n = 10 and n = 100000: the IR and
   the compile do not depend on n.
2. Steady-state run time of converted Python against the same computation written with the
   explicit ops (while_loop for the loop, cond / np.where for the branch), side by side.
3. The rewrite's cost on the first call of a function without control flow (convert on/off).
"""
from __future__ import annotations

import time

import numpy as np

import autodiff_jit as ad
from autodiff_jit.control import cond, while_loop


def loop_py(x, n):
    s = 0.0
    for i in range(n):
        s = 0.5 * s + np.sin(x * i)
    return s


def loop_explicit(x, n):
    def body(c):
        i, s = c
        return i + 1, 0.5 * s + np.sin(x * i)
    return while_loop(lambda c: c[0] < n, body, (np.int64(0), 0.0))[1]


def branch_py(x):
    if np.sum(x) > 0:
        y = np.sum(np.sin(x) ** 2)
    else:
        y = np.sum(x ** 3)
    return y


def branch_cond(x):
    return cond(np.sum(x) > 0, lambda x: np.sum(np.sin(x) ** 2), lambda x: np.sum(x ** 3), x)


def branch_where(x):
    return np.where(np.sum(x) > 0, np.sum(np.sin(x) ** 2), np.sum(x ** 3))


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _body(fn):
    """IR text without the function name and source comments."""
    import re
    return re.sub(r"  # [^\n]*", "", str(fn)).split("\n", 1)[1]


def first_call(make, *args):
    t0 = time.perf_counter()
    make()(*args)
    return time.perf_counter() - t0


def run_time(fn, *args, repeat=7):
    fn(*args)
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        if time.perf_counter() - t0 > 0.05:
            break
        number *= 4
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(*args)
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def main():
    ad.config.max_loop_steps = 100000
    print("1. first call of grad(loop) with traced n (rewrite+trace+AD+compile)")
    for n in (10, 100000):
        dt = min(first_call(lambda: ad.grad(loop_py), 0.3, n) for _ in range(3))
        size = sum(1 for _ in ad.make_ir(ad.grad(loop_py))(0.3, n).all_eqns())
        print(f"   n={n:>6}: {dt * 1e3:7.1f} ms, {size} equations")

    ad.config.max_loop_steps = None  # both loops below: while_loop's default capacity
    print("2. steady-state run time, converted Python vs explicit ops (compiled)")
    n = 1000
    g_py, g_ex = ad.grad(loop_py), ad.grad(loop_explicit)
    same = _body(g_py.ir(0.3, n)) == _body(g_ex.ir(0.3, n))
    a = min(run_time(g_py, 0.3, n) for _ in range(3))  # interleaved: the machine is shared
    b = min(run_time(g_ex, 0.3, n) for _ in range(3))
    print(f"   grad loop n={n}: converted {a * 1e6:.1f} us, while_loop {b * 1e6:.1f} us, "
          f"ratio {a / b:.2f} (identical optimized IR: {same})")
    x = np.linspace(-1.0, 2.0, 100)
    g_py, g_cond, g_where = ad.grad(branch_py), ad.grad(branch_cond), ad.grad(branch_where)
    same = _body(g_py.ir(x)) == _body(g_cond.ir(x))
    a = min(run_time(g_py, x) for _ in range(3))
    b = min(run_time(g_cond, x) for _ in range(3))
    c = min(run_time(g_where, x) for _ in range(3))
    print(f"   grad branch (100): converted {a * 1e6:.2f} us, cond {b * 1e6:.2f} us, "
          f"np.where {c * 1e6:.2f} us; converted/cond {a / b:.2f} (identical optimized IR: "
          f"{same})")

    print("3. first call without control flow: the rewrite's cost")
    x = np.linspace(0.0, 1.0, 10)
    on, off = [], []
    for _ in range(7):  # interleaved: the machine is shared
        on.append(first_call(lambda: ad.grad(rosenbrock), x))
        off.append(first_call(lambda: ad.grad(rosenbrock, convert=False), x))
    on, off = min(on), min(off)
    print(f"   grad(rosenbrock) first call: convert on {on * 1e3:.1f} ms, off {off * 1e3:.1f} ms "
          f"(ratio {on / off:.2f}; the rewrite itself is cached per code object)")


if __name__ == "__main__":
    main()
