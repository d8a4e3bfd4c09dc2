"""Seed 000 in compiled mode: the same computations as plain numpy functions differentiated
by `ad.grad` / `ad.value_and_grad`, with the functional optimizer API."""
import numpy as np

import autodiff_jit as ad
import autodiff_jit.optim as optim


def scalar_example(x, w, b):
    return w * x + b


def mse(params, x, y):
    w, b = params
    pred = x @ w.T + b
    return np.mean((pred - y) ** 2)


def main(x=None, y=None, w0=None, b0=None):
    out = {}
    gx, gw, gb = ad.grad(scalar_example, argnums=(0, 1, 2))(1.0, 2.0, 3.0)
    print(gx, gw, gb)   # 2.0 1.0 1.0
    out["scalar"] = (float(gx), float(gw), float(gb))

    rng = np.random.default_rng(0)
    if x is None:
        x = rng.standard_normal((10, 3)).astype(np.float32)
        y = rng.standard_normal((10, 2)).astype(np.float32)
        bound = 1 / np.sqrt(3)
        w0 = rng.uniform(-bound, bound, (2, 3)).astype(np.float32)
        b0 = rng.uniform(-bound, bound, (2,)).astype(np.float32)
    params = (w0, b0)
    opt = optim.SGD(lr=0.01)
    loss, (dw, db) = ad.value_and_grad(mse)(params, x, y)
    print("loss:", loss)
    print("dL/dw:", dw)
    print("dL/db:", db)
    params = opt.update(params, (dw, db))
    loss1 = mse(params, x, y)
    print("loss after 1 step optimization:", loss1)
    out.update(loss0=float(loss), dw=dw, db=db, loss1=float(loss1))
    return out


if __name__ == "__main__":
    main()
