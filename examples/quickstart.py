"""Quickstart: gradients of the seed tutorials' examples, from compiled code.

Run:  python examples/quickstart.py
"""
import numpy as np

import autodiff_jit as ad


def show(label, value):
    if isinstance(value, tuple):
        value = tuple(float(v) for v in value)
    print(f"{label:<44} {value}")


# 1. d/dx (x^2 + 2x + 1) at x = 3  ->  2x + 2 = 8
show("d/dx (x^2 + 2x + 1) at 3", ad.grad(lambda x: x ** 2 + 2 * x + 1)(3.0))


# 2. the gradient of sum(x^3) is 3x^2
@ad.grad
def sum_of_cubes(x):
    return np.sum(x ** 3)


show("grad sum(x^3) at [1, 2, 3]", sum_of_cubes(np.array([1.0, 2.0, 3.0])))

# 3. mean(x * x) -> 2x / n
show("grad mean(x*x) at [1, 2, 3]", ad.grad(lambda x: np.mean(x * x))(np.array([1.0, 2.0, 3.0])))

# 4. the chain rule: (3x + 1)^2 at x = 2 -> 2 (3x + 1) 3 = 42
show("d/dx (3x + 1)^2 at 2", ad.grad(lambda x: (3 * x + 1) ** 2)(2.0))

# 5. two inputs, one path each and a shared one: z = xy + x^2 at (2, 3) -> (y + 2x, x) = (7, 2)
show("d(xy + x^2)/d(x, y) at (2, 3)", ad.grad(lambda x, y: x * y + x ** 2, argnums=(0, 1))(2.0, 3.0))

# 6. y = w x + b: partials (x, w, b) at x=1, w=2, b=3 -> (2, 1, 1)
show("d(wx + b)/d(x, w, b) at x=1, w=2, b=3",
     ad.grad(lambda x, w, b: w * x + b, argnums=(0, 1, 2))(1.0, 2.0, 3.0))

# 7. ten steps of gradient descent on (x - 3)^2 from 0 at lr 0.1
step = ad.grad(lambda x: (x - 3.0) ** 2)
x, path = 0.0, []
for _ in range(10):
    x = x - 0.1 * step(x)
    path.append(round(float(x), 4))
show("gradient descent on (x - 3)^2", path)

# 8. the linear fit of seed 003: value_and_grad of a plain numpy loss, 200 epochs of SGD
X = np.array([[1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
Y = np.array([[3.0], [5.0], [7.0], [9.0]], dtype=np.float32)


def mse(params, X, Y):
    W, b = params
    return np.mean((X @ W + b - Y) ** 2)


loss_and_grad = ad.value_and_grad(mse)
params = (np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32))
for epoch in range(1, 201):
    loss, (gW, gb) = loss_and_grad(params, X, Y)
    params = (params[0] - np.float32(0.001) * gW, params[1] - np.float32(0.001) * gb)
    if epoch % 50 == 0:
        show(f"linear fit, epoch {epoch} MSE", f"{float(loss):.2f}")
show("learned W, b (expect ~2.0196, ~0.7055)", (float(params[0][0, 0]), float(params[1][0, 0])))

# The IR that runs: the traced forward function and its adjoint
print("\nForward IR of sum(x^3):")
print(ad.make_ir(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0, 3.0])))
print("\nAdjoint IR (optimized) of its gradient:")
print(sum_of_cubes.ir(np.array([1.0, 2.0, 3.0])))
