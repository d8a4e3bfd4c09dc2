"""Benchmark: vmap and the Jacobians built on it (issue 14), side by side with JAX. Not a test.

    PYTHONPATH=. python benchmarks/bench_vmap.py [--quick] [--jax-python /tmp/jaxvenv/bin/python]

Cases (float64 throughout):
1. hessian of Rosenbrock at n = 10, 100, 300;
2. per-example gradients of the bench MLP (784-128-10 tanh, softmax cross-entropy) over a
   batch of 256: vmap(grad(loss), in_axes=(params, 0, 0));
3. Jacobian of a 100 -> 100 tanh layer, jacfwd and jacrev.
Each reports the first call (trace + transforms + passes + LLVM compile + one run, after one
unrelated function has been compiled in the process, on both sides) and the
steady-state time per call (best of 15 blocks of ~10 ms each: the machine is shared). "before" is the previous
jacfwd (one compiled JVP per input element from a Python loop; replicated here as
`loop_jacfwd`), and for per-example gradients a Python loop of the compiled grad.

JAX runs in a separate process (its own venv: JAX is not a dependency of autodiff_jit) on
the same data, with jax.jit around each transform and jax_enable_x64; the script runs that
process itself after measuring ours, so both sets come from one run on one machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


# ---------------------------------------------------------------------------------------------
# the functions, written against a numpy-like module `xp` (numpy for us, jax.numpy for JAX)

def rosen(xp):
    def f(x):
        return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return f


def mlp_example_loss(xp):
    # the bench MLP's cross-entropy on one example (x: (784,), y: one-hot (10,))
    def loss(params, x, y):
        W1, b1, W2, b2 = params
        h = xp.tanh(x @ W1 + b1)
        logits = h @ W2 + b2
        m = xp.max(logits)
        lse = xp.log(xp.sum(xp.exp(logits - m))) + m
        return -xp.sum(y * (logits - lse))
    return loss


def tanh_layer(xp, W, b):
    def f(x):
        return xp.tanh(W @ x + b)
    return f


def data(quick):
    rng = np.random.default_rng(0)
    b, i, h, o = (16, 64, 32, 10) if quick else (256, 784, 128, 10)
    X = rng.standard_normal((b, i))
    Y = np.eye(o)[rng.integers(0, o, size=b)]
    params = (rng.standard_normal((i, h)) / np.sqrt(i), np.zeros(h),
              rng.standard_normal((h, o)) / np.sqrt(h), np.zeros(o))
    W = rng.standard_normal((100, 100)) / 10.0
    bias = rng.standard_normal(100)
    x100 = rng.standard_normal(100)
    xs = {n: rng.uniform(-1.0, 1.0, n) for n in (10, 100, 300)}
    return dict(params=params, X=X, Y=Y, W=W, bias=bias, x100=x100, xs=xs)


def timeit(fn, *args, block=lambda r: r, repeat=15):
    """(first call, steady-state seconds per call: the best over `repeat` blocks of the block's
    mean, each block sized to ~10 ms: the best block is the least disturbed by other load)."""
    t0 = time.perf_counter()
    block(fn(*args))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    block(fn(*args))
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(0.01 / one))
    per = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            r = fn(*args)
        block(r)
        per.append((time.perf_counter() - t0) / number)
    return first, float(min(per))


# ---------------------------------------------------------------------------------------------
# ours

def loop_jacfwd(fun):
    """The jacfwd this issue replaced: one compiled JVP per input element, from Python."""
    import autodiff_jit as ad

    def jac(x):
        x = np.asarray(x)
        cols = [np.asarray(ad.jvp(fun, (x,), (e.reshape(x.shape),))[1])
                for e in np.eye(x.size)]
        return np.stack(cols, axis=-1).reshape(cols[0].shape + x.shape)
    return jac


def warmup_function(xp):
    def f(x):
        return xp.sum(xp.sin(x) * xp.exp(x) + xp.tanh(x) ** 2)
    return f


def run_ours(quick, with_before):
    import autodiff_jit as ad
    d = data(quick)
    # one unrelated compile first, so "first call" is per function, not per process
    ad.grad(warmup_function(np))(np.ones(3))
    res = {}
    for n, x in d["xs"].items():
        res[f"hessian rosenbrock n={n}"] = timeit(ad.hessian(rosen(np)), x)
        if with_before:
            res[f"hessian rosenbrock n={n} (before: loop)"] = timeit(
                loop_jacfwd(ad.grad(rosen(np))), x, repeat=3)
    loss = mlp_example_loss(np)
    pe = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))
    res["per-example grads mlp"] = timeit(pe, d["params"], d["X"], d["Y"])
    if with_before:
        g = ad.grad(loss)
        res["per-example grads mlp (before: loop)"] = timeit(
            lambda p, X, Y: [g(p, x, y) for x, y in zip(X, Y)], d["params"], d["X"], d["Y"],
            repeat=3)
    layer = tanh_layer(np, d["W"], d["bias"])
    res["jacfwd tanh 100->100"] = timeit(ad.jacfwd(layer), d["x100"])
    res["jacrev tanh 100->100"] = timeit(ad.jacrev(layer), d["x100"])
    if with_before:
        res["jacfwd tanh 100->100 (before: loop)"] = timeit(loop_jacfwd(layer), d["x100"],
                                                            repeat=3)
    # correctness of what was timed: vmap results against the loops
    x = d["xs"][10]
    np.testing.assert_allclose(ad.hessian(rosen(np))(x), loop_jacfwd(ad.grad(rosen(np)))(x),
                               rtol=1e-12, atol=1e-9)
    return res


# ---------------------------------------------------------------------------------------------
# JAX (run in its own interpreter)

def run_jax(quick):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    d = data(quick)

    def block(r):
        return jax.block_until_ready(r)
    block(jax.jit(jax.grad(warmup_function(jnp)))(np.ones(3)))
    res = {}
    for n, x in d["xs"].items():
        res[f"hessian rosenbrock n={n}"] = timeit(jax.jit(jax.hessian(rosen(jnp))), x,
                                                  block=block)
    pe = jax.jit(jax.vmap(jax.grad(mlp_example_loss(jnp)), in_axes=(None, 0, 0)))
    res["per-example grads mlp"] = timeit(pe, d["params"], d["X"], d["Y"], block=block)
    layer = tanh_layer(jnp, jnp.asarray(d["W"]), jnp.asarray(d["bias"]))
    res["jacfwd tanh 100->100"] = timeit(jax.jit(jax.jacfwd(layer)), d["x100"], block=block)
    res["jacrev tanh 100->100"] = timeit(jax.jit(jax.jacrev(layer)), d["x100"], block=block)
    return res


def fmt(t):
    return f"{t * 1e3:9.3f} ms" if t >= 1e-3 else f"{t * 1e6:9.1f} us"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small MLP; for a smoke run")
    ap.add_argument("--jax-python", default="/tmp/jaxvenv/bin/python",
                    help="a Python with jax installed (skipped if it does not run)")
    ap.add_argument("--no-before", action="store_true", help="skip the old loop baselines")
    ap.add_argument("--side", choices=["all", "jax"], default="all", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side == "jax":
        print(json.dumps(run_jax(args.quick)))
        return
    ours = run_ours(args.quick, not args.no_before)
    cmd = [args.jax_python, __file__, "--side", "jax"] + (["--quick"] if args.quick else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
        theirs = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        print(f"(JAX side not run: {exc})", file=sys.stderr)
        theirs = {}
    print(f"{'case':42s} {'first call':>12s} {'steady':>12s} {'JAX first':>12s} "
          f"{'JAX steady':>12s} {'steady ours/JAX':>16s}")
    for case, (first, steady) in ours.items():
        row = f"{case:42s} {fmt(first):>12s} {fmt(steady):>12s}"
        if case in theirs:
            jf, js = theirs[case]
            row += f" {fmt(jf):>12s} {fmt(js):>12s} {steady / js:15.2f}x"
        print(row)


if __name__ == "__main__":
    main()
