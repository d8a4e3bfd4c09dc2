"""Tape mode vs compiled mode on the same numpy functions, with `autodiff_jit.bench.compare`.

Tape mode runs the function on Tensors and records a run-time tape every call (like PyTorch
eager); compiled mode differentiates the IR once and runs machine code. `compare` times both
(and the interpreter) against the plain numpy forward, after checking the gradients agree.

Run:  python examples/tape_vs_compiled.py       (figure: examples/out/tape_vs_compiled.png)
"""
import os

import numpy as np

from autodiff_jit.bench import compare

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"
OUT = os.environ.get("AUTODIFF_JIT_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "out"))


def small_scalar(x, y):
    """A handful of scalar operations: per-call overhead dominates."""
    return np.sin(x) * y + x ** 3 / (1.0 + y * y)


def mlp_loss(W1, W2, X, Y):
    """A 2-layer tanh MLP with squared error: matrix products dominate."""
    return np.mean((np.tanh(X @ W1) @ W2 - Y) ** 2)


def many_small_ops(x):
    """Many elementwise operations on a medium vector: fusion pays off."""
    y = x
    for _ in range(10):
        y = np.tanh(y) * 0.9 + 0.1 * np.sin(y) * x
    return np.sum(y * y)


def main():
    rng = np.random.default_rng(0)
    n = 64 if QUICK else 256
    cases = [
        ("scalar function", small_scalar, (0.5, 2.0), (0, 1)),
        (f"MLP batch {n}, 100-64-10", mlp_loss,
         (rng.standard_normal((100, 64)) * 0.1, rng.standard_normal((64, 10)) * 0.1,
          rng.standard_normal((n, 100)), rng.standard_normal((n, 10))), (0, 1)),
        ("40 elementwise ops, n=1e4", many_small_ops,
         (rng.standard_normal(1000 if QUICK else 10_000),), 0),
    ]
    results = []
    for label, f, args, argnums in cases:
        r = compare(f, *args, argnums=argnums, peers=(), quick=QUICK, name=label)
        print(r)
        assert r.agreed, f"gradients disagree for {label}"
        results.append((label, r))

    print("Summary: tape time / compiled time (above 1: compiled is faster)")
    for label, r in results:
        tc = r.ratio("tape", "compiled")
        print(f"  {label:<28} {tc:8.1f}x" if tc else f"  {label:<28}        -")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no figure)")
        return
    impls = ["numpy", "compiled", "tape", "interpret"]
    labels = {"numpy": "numpy forward only"}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        ys = [(r.time(impl) or np.nan) * 1e6 for _, r in results]
        ax.bar(np.arange(len(results)) - 0.4 + width * (j + 0.5), ys, width,
               label=labels.get(impl, f"gradient, {impl}"))
    ax.set_yscale("log")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([label for label, _ in results])
    ax.set_ylabel("median time per call (microseconds, log)")
    ax.set_title("Gradient cost: compiled vs tape vs interpreter")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "tape_vs_compiled.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
