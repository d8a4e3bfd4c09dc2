"""Seed 001 in compiled mode: the same examples as numpy functions and ad.grad."""
import numpy as np

import autodiff_jit as ad


def main(x_data=None, y_data=None):
    out = {}
    dydx = ad.grad(lambda x: x ** 2 + 2 * x + 1)(3.0)
    print(f"dy/dx = {dydx}")
    out["dydx"] = float(dydx)

    g = ad.grad(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0, 3.0]))
    print(f"dy/dx = {g.tolist()}")
    out["vector"] = g.tolist()

    if x_data is None:
        rng = np.random.default_rng(42)
        x_data = np.linspace(0, 1, 50).astype(np.float32)
        y_data = (2 * x_data + 1 + 0.1 * rng.standard_normal(50).astype(np.float32))

    def loss_fn(w, b):
        return np.mean((w * x_data + b - y_data) ** 2)

    step = ad.grad(loss_fn, argnums=(0, 1))
    w, b = np.float32(0.0), np.float32(0.0)
    lr = np.float32(0.1)
    for epoch in range(200):
        gw, gb = step(w, b)
        w, b = w - lr * gw, b - lr * gb
    print(f"Learned: y = {w:.3f}x + {b:.3f}")
    out.update(w=float(w), b=float(b))
    return out


if __name__ == "__main__":
    main()
