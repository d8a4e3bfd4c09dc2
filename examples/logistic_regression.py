"""Logistic regression on two Gaussian blobs, trained with compiled gradients.

The loss is written with numpy only (np.logaddexp for a stable log(1 + e^-z)); `ad.grad`
returns the gradient for the pytree of parameters {"w": ..., "b": ...} in the same structure.

Run:  python examples/logistic_regression.py    (figure: examples/out/logistic_regression.png)
"""
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"
OUT = os.environ.get("AUTODIFF_JIT_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "out"))


def loss(params, X, y):
    """Mean logistic loss with labels y in {-1, +1}, plus a small L2 penalty."""
    z = X @ params["w"] + params["b"]
    return np.mean(np.logaddexp(0.0, -y * z)) + 1e-3 * np.sum(params["w"] ** 2)


def main():
    rng = np.random.default_rng(1)
    n = 400
    X = np.vstack([rng.normal([-1.0, -0.5], 0.8, (n // 2, 2)),
                   rng.normal([1.2, 0.8], 0.8, (n // 2, 2))])
    y = np.r_[-np.ones(n // 2), np.ones(n // 2)]

    grad = ad.grad(loss)
    params = {"w": np.zeros(2), "b": np.array(0.0)}
    lr, steps = 0.5, 50 if QUICK else 300
    history = []
    for step in range(steps):
        g = grad(params, X, y)
        params = {k: params[k] - lr * g[k] for k in params}
        history.append(float(loss(params, X, y)))
    acc = np.mean(np.sign(X @ params["w"] + params["b"]) == y)
    print(f"final loss {history[-1]:.4f}, training accuracy {acc:.1%}")
    print("w", np.round(params["w"], 3), "b", round(float(params["b"]), 3))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no figure)")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(history)
    ax1.set_xlabel("gradient-descent step")
    ax1.set_ylabel("logistic loss")
    ax1.set_title("Training loss")
    xx, yy = np.meshgrid(np.linspace(-4, 4, 200), np.linspace(-4, 4, 200))
    grid = np.c_[xx.ravel(), yy.ravel()]
    prob = 1.0 / (1.0 + np.exp(-(grid @ params["w"] + params["b"])))
    cs = ax2.contourf(xx, yy, prob.reshape(xx.shape), levels=20, cmap="RdBu_r", alpha=0.6)
    fig.colorbar(cs, ax=ax2, label="P(class +1)")
    ax2.contour(xx, yy, prob.reshape(xx.shape), levels=[0.5], colors="k")
    ax2.scatter(*X[y < 0].T, s=8, c="tab:blue", label="class -1")
    ax2.scatter(*X[y > 0].T, s=8, c="tab:red", label="class +1")
    ax2.plot([], [], "k-", label="decision boundary")
    ax2.set_xlabel("feature 1")
    ax2.set_ylabel("feature 2")
    ax2.set_title(f"Decision boundary (accuracy {acc:.1%})")
    ax2.legend(loc="upper left", fontsize=8)
    fig.suptitle("Logistic regression with compiled gradients")
    fig.tight_layout()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "logistic_regression.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
