"""Seed 002 in compiled mode: the same derivatives with ad.grad on numpy functions."""
import numpy as np

import autodiff_jit as ad


def f(x):
    return x**2 + 3*x + 2


def main():
    out = {}
    out["dydx"] = float(ad.grad(f)(2.0))
    print(f"dy/dx = {out['dydx']}")
    out["chain"] = float(ad.grad(lambda x: (3 * x + 1) ** 2)(2.0))
    print(f"dy/dx (chain rule) = {out['chain']}")
    gx, gy = ad.grad(lambda x, y: x * y + x ** 2, argnums=(0, 1))(2.0, 3.0)
    out["partials"] = (float(gx), float(gy))
    print(f"dz/dx = {gx}, dz/dy = {gy}")
    gw, gb = ad.grad(lambda w, b, x: (w * x + b - 1.0) ** 2, argnums=(0, 1))(0.5, 0.1, 2.0)
    out["wb_grads"] = (float(gw), float(gb))
    print(f"w.grad = {gw:.4f}, b.grad = {gb:.4f}")
    # accumulation is explicit in compiled mode: gradients are values, add them yourself
    g1 = ad.grad(lambda x: x ** 2)(3.0)
    g2 = ad.grad(lambda x: x ** 3)(3.0)
    out["accumulation"] = [float(g1), float(g1 + g2), float(g2)]
    print(f"accumulated: {out['accumulation']}")

    step = ad.grad(lambda x: (x - 3.0) ** 2)
    x = np.float32(0.0)
    xs = []
    for i in range(10):
        x = x - np.float32(0.1) * step(x)
        xs.append(float(x))
        print(f"{i:4d} {x:8.4f}")
    print(f"Final x = {x:.4f} (target: 3.0)")
    out["descent"] = xs
    return out


if __name__ == "__main__":
    main()
