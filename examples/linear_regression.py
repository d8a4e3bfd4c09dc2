"""Linear regression trained by gradient descent on compiled gradients.

A plain numpy mean-squared-error loss; `ad.value_and_grad` compiles its value and gradient
(w.r.t. the parameter pytree (W, b)) once, and every step after that calls the machine code.
The result is checked against the closed-form least-squares solution.

Run:  python examples/linear_regression.py      (figure: examples/out/linear_regression.png)
"""
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"
OUT = os.environ.get("AUTODIFF_JIT_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "out"))


def mse(params, X, y):
    W, b = params
    return np.mean((X @ W + b - y) ** 2)


def main():
    rng = np.random.default_rng(0)
    n, d = 1000, 3
    X = rng.standard_normal((n, d))
    W_true, b_true = np.array([2.0, -1.0, 0.5]), 0.7
    y = X @ W_true + b_true + 0.1 * rng.standard_normal(n)

    loss_and_grad = ad.value_and_grad(mse)          # compiled on the first call
    params = (np.zeros(d), np.array(0.0))
    lr, steps = 0.1, 60 if QUICK else 200
    losses = []
    for step in range(steps):
        loss, (gW, gb) = loss_and_grad(params, X, y)
        params = (params[0] - lr * gW, params[1] - lr * gb)
        losses.append(float(loss))
        if step % 50 == 0:
            print(f"step {step:4d}  MSE {loss:.5f}")
    W, b = params
    print(f"final MSE {mse(params, X, y):.5f}")
    print("learned W", np.round(W, 4), " b", round(float(b), 4))
    print("true    W", W_true, " b", b_true)

    # the closed-form least-squares fit, for comparison
    A = np.hstack([X, np.ones((n, 1))])
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    print("lstsq   W", np.round(sol[:d], 4), " b", round(float(sol[d]), 4))
    if not QUICK:
        assert np.allclose(W, sol[:d], atol=1e-3) and abs(b - sol[d]) < 1e-3

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no figure)")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.semilogy(losses, label="training MSE")
    ax1.axhline(mse((sol[:d], sol[d]), X, y), color="k", ls="--", lw=1, label="least squares")
    ax1.set_xlabel("gradient-descent step")
    ax1.set_ylabel("mean squared error (log)")
    ax1.set_title("Loss")
    ax1.legend()
    pred = X @ W + b
    ax2.scatter(y, pred, s=4, alpha=0.4, label="samples")
    lim = [y.min(), y.max()]
    ax2.plot(lim, lim, "k--", lw=1, label="prediction = target")
    ax2.set_xlabel("target y")
    ax2.set_ylabel("prediction X W + b")
    ax2.set_title("Fit")
    ax2.legend()
    fig.suptitle("Linear regression with compiled gradients")
    fig.tight_layout()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "linear_regression.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
