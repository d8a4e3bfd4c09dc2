"""A small MLP (2 -> 64 -> 3, tanh, softmax cross-entropy) on a synthetic three-arm spiral,
trained with Adam on compiled gradients.

The model and loss are plain numpy on a dict of parameters; `ad.value_and_grad` compiles the
loss and its gradient once. The update uses autodiff_jit.optim.Adam's functional
`update(params, grads)` when that module is available, else the same Adam formula inline.

Run:  python examples/mlp.py                    (figure: examples/out/mlp.png)
"""
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"
OUT = os.environ.get("AUTODIFF_JIT_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "out"))


def spiral(n_per_class, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, n_per_class) + 0.25 * rng.standard_normal(n_per_class)
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(n_per_class, c))
    return np.vstack(X), np.concatenate(y)


def forward(params, X):
    h = np.tanh(X @ params["W1"] + params["b1"])
    return h @ params["W2"] + params["b2"]


def loss(params, X, Y):
    """Softmax cross-entropy; Y is one-hot."""
    logits = forward(params, X)
    m = np.max(logits, axis=1, keepdims=True)
    log_probs = logits - m - np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * log_probs, axis=1))


def make_adam(lr):
    try:
        from autodiff_jit import optim
        return optim.Adam(lr=lr)
    except (ImportError, AttributeError):
        pass

    class Adam:  # the same update rule, for an autodiff_jit without optim
        def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-8):
            self.lr, self.b1, self.b2, self.eps, self.t, self.m, self.v = lr, b1, b2, eps, 0, {}, {}

        def update(self, params, grads):
            self.t += 1
            out = {}
            for k in params:
                self.m[k] = self.b1 * self.m.get(k, 0.0) + (1 - self.b1) * grads[k]
                self.v[k] = self.b2 * self.v.get(k, 0.0) + (1 - self.b2) * grads[k] ** 2
                mh = self.m[k] / (1 - self.b1 ** self.t)
                vh = self.v[k] / (1 - self.b2 ** self.t)
                out[k] = params[k] - self.lr * mh / (np.sqrt(vh) + self.eps)
            return out
    return Adam(lr)


def main():
    X, labels = spiral(100)
    Y = np.eye(3)[labels]
    rng = np.random.default_rng(0)
    hidden = 64
    params = {"W1": rng.standard_normal((2, hidden)) * 1.0, "b1": np.zeros(hidden),
              "W2": rng.standard_normal((hidden, 3)) / np.sqrt(hidden), "b2": np.zeros(3)}
    step = ad.value_and_grad(loss)
    opt = make_adam(lr=0.02)
    epochs = 150 if QUICK else 2000
    history = []
    for epoch in range(epochs):
        value, grads = step(params, X, Y)
        params = opt.update(params, grads)
        history.append(float(value))
        if epoch % max(epochs // 5, 1) == 0:
            print(f"epoch {epoch:5d}  loss {value:.4f}")
    acc = np.mean(np.argmax(forward(params, X), axis=1) == labels)
    print(f"final loss {history[-1]:.4f}, training accuracy {acc:.1%}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no figure)")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    ax1.semilogy(history)
    ax1.set_xlabel("epoch (full batch)")
    ax1.set_ylabel("cross-entropy loss (log)")
    ax1.set_title("Training loss")
    ax1.grid(alpha=0.3, which="both")
    xx, yy = np.meshgrid(np.linspace(-1.2, 1.2, 250), np.linspace(-1.2, 1.2, 250))
    region = np.argmax(forward(params, np.c_[xx.ravel(), yy.ravel()]), axis=1)
    ax2.contourf(xx, yy, region.reshape(xx.shape), levels=[-0.5, 0.5, 1.5, 2.5],
                 colors=["tab:blue", "tab:orange", "tab:green"], alpha=0.25)
    for c, col in enumerate(["tab:blue", "tab:orange", "tab:green"]):
        ax2.scatter(*X[labels == c].T, s=8, c=col, label=f"class {c}")
    ax2.set_xlabel("x1")
    ax2.set_ylabel("x2")
    ax2.set_title(f"Decision regions (accuracy {acc:.1%})")
    ax2.legend(fontsize=8, loc="upper right")
    fig.suptitle("2-64-3 tanh MLP trained with Adam on compiled gradients")
    fig.tight_layout()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "mlp.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
