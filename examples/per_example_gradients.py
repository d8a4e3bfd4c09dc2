"""Per-example gradients with vmap: the gradient of the loss on each training example
separately, in one compiled call (what differentially private SGD clips, and what gradient-
noise diagnostics look at).

    grads = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(params, X, Y)

`ad.grad(loss)` is the gradient for one example; `vmap` maps it over the examples (axis 0
of X and Y) with the parameters shared (`None`). The result has the parameters' structure,
each leaf with a leading batch axis. It is checked against a Python loop of the gradient,
and its mean against the gradient of the mean loss. Then one step of DP-SGD-style training:
clip each example's gradient to norm <= C, average, add noise.

Run:  python examples/per_example_gradients.py
"""
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"


def loss(params, x, y):
    """Softmax cross-entropy of a 2-layer tanh MLP on ONE example (x: (d,), y: one-hot)."""
    W1, b1, W2, b2 = params
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits)
    return -np.sum(y * (logits - (np.log(np.sum(np.exp(logits - m))) + m)))


def mean_loss(params, X, Y):
    return np.mean(ad.vmap(loss, in_axes=(None, 0, 0))(params, X, Y))


def clipped_noisy_step(params, X, Y, rng, lr=0.5, clip=1.0, noise=0.1):
    per_example = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(params, X, Y)
    norms = np.sqrt(sum(np.sum(g.reshape(len(X), -1) ** 2, axis=1) for g in per_example))
    scale = np.minimum(1.0, clip / np.maximum(norms, 1e-12))
    new = []
    for p, g in zip(params, per_example):
        g = np.mean(g * scale.reshape((-1,) + (1,) * (g.ndim - 1)), axis=0)
        new.append(p - lr * (g + noise * clip / len(X) * rng.standard_normal(p.shape)))
    return tuple(new), norms


def main():
    rng = np.random.default_rng(0)
    n, d, hidden, k = (32, 8, 16, 3) if QUICK else (256, 64, 32, 10)
    X = rng.standard_normal((n, d))
    Y = np.eye(k)[rng.integers(0, k, n)]
    params = (rng.standard_normal((d, hidden)) / np.sqrt(d), np.zeros(hidden),
              rng.standard_normal((hidden, k)) / np.sqrt(hidden), np.zeros(k))

    per_example = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(params, X, Y)
    print("per-example gradient shapes:", [g.shape for g in per_example])
    g = ad.grad(loss)
    looped = [g(params, x, y) for x, y in zip(X[:8], Y[:8])]
    for leaf, ref in zip(per_example, zip(*looped)):
        np.testing.assert_allclose(leaf[:8], np.stack(ref), rtol=1e-12, atol=1e-14)
    print("agree with a Python loop of grad(loss)")
    full = ad.grad(mean_loss)(params, X, Y)
    for leaf, ref in zip(per_example, full):
        np.testing.assert_allclose(leaf.mean(axis=0), ref, rtol=1e-10, atol=1e-14)
    print("their mean is the gradient of the mean loss")

    before = mean_loss(params, X, Y)
    for step in range(5 if QUICK else 50):
        params, norms = clipped_noisy_step(params, X, Y, rng)
    print(f"clipped, noised training: mean loss {before:.4f} -> {mean_loss(params, X, Y):.4f} "
          f"(median per-example gradient norm {np.median(norms):.3f})")


if __name__ == "__main__":
    main()
