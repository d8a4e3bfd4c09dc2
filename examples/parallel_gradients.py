"""Gradients on several processes: a transformed function is sent to worker processes like
any picklable function (by reference to `loss`; it compiles again in each worker, from the
disk cache, on by default, when the workers share its directory), each worker computes the
gradient on its shard of the data, and the shard gradients add up to the full-batch gradient.

    python examples/parallel_gradients.py

Uses concurrent.futures.ProcessPoolExecutor, then joblib if it is installed.
"""
import concurrent.futures
import multiprocessing
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"


def loss(params, x, y):
    """Sum of squared errors of a one-hidden-layer network on a batch."""
    h = np.tanh(x @ params["w1"] + params["b1"])
    pred = h @ params["w2"]
    return np.sum((pred - y) ** 2)


# module level, so that pickle stores it by name; workers load the compiled code from the disk
# cache (on by default) that the first of them, or the parent, filled
grad_loss = ad.grad(loss)


def make_data(n, d=8, hidden=16, seed=0):
    rng = np.random.default_rng(seed)
    params = {"w1": rng.normal(size=(d, hidden)) / np.sqrt(d), "b1": np.zeros(hidden),
              "w2": rng.normal(size=hidden) / np.sqrt(hidden)}
    x = rng.normal(size=(n, d))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=n)
    return params, x, y


def add(grads):
    return {k: sum(g[k] for g in grads) for k in grads[0]}


def main():
    n, workers = (2_000, 2) if QUICK else (20_000, 4)
    params, x, y = make_data(n)
    shards = np.array_split(np.arange(n), workers * 2)   # equal-sized shards: one compile
    full = grad_loss(params, x, y)

    # spawn: fresh worker processes (what macOS/Windows do by default, and the strictest test
    # of pickling); fork works too on Linux.
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(grad_loss, params, x[i], y[i]) for i in shards]
        parts = [f.result() for f in futures]
    summed = add(parts)
    # float64 sums in another order: equal up to rounding, n * eps relative
    for k in full:
        np.testing.assert_allclose(summed[k], full[k], rtol=n * 1e-15, atol=1e-12)
    print(f"ProcessPoolExecutor: {len(shards)} shards on {workers} processes, "
          f"gradient matches the full batch")

    try:
        import joblib
    except ImportError:
        print("joblib not installed: skipped")
        return
    # joblib pickles with cloudpickle, so even a lambda or closure can be sent
    scale = 0.5
    scaled = ad.grad(lambda p, a, b: scale * loss(p, a, b))
    parts = joblib.Parallel(n_jobs=workers)(
        joblib.delayed(scaled)(params, x[i], y[i]) for i in shards)
    summed = add(parts)
    for k in full:
        np.testing.assert_allclose(summed[k], scale * full[k], rtol=n * 1e-15, atol=1e-12)
    print(f"joblib: {len(shards)} shards on {workers} processes, gradient matches")


if __name__ == "__main__":
    main()
