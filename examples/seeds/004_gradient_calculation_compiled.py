"""Seed 004 in compiled mode: the same gradients with ad.grad, and the custom gradient as an
ad.custom_vjp."""
import numpy as np

import autodiff_jit as ad


@ad.custom_vjp
def multiply_by_two(x):
    return x * 2


def _fwd(x):
    return x * 2, x


def _bwd(x, g):
    return (g * 2,)


multiply_by_two.defvjp(_fwd, _bwd)


def main():
    out = {}
    out["grad_x"] = ad.grad(lambda x: np.sum(x * 2))(np.array([2.0, 3.0])).tolist()
    out["mean_grad"] = ad.grad(lambda x: np.mean(x * x))(np.array([1.0, 2.0, 3.0])).tolist()
    out["chain"] = float(ad.grad(lambda x: (x * 2) * (x * 2))(1.0))
    target = np.array([1.0, 2.0])
    out["mse_grad"] = ad.grad(lambda x: np.mean((x - target) ** 2))(np.array([0.5, 1.5])).tolist()
    out["custom"] = float(ad.grad(multiply_by_two)(3.0))
    for k, v in out.items():
        print(k, v)
    return out


if __name__ == "__main__":
    main()
