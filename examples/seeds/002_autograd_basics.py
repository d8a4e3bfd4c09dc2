"""Seed 002 (Chapter 2 — Autograd Basics), in tape mode."""
import numpy as np

import autodiff_jit as ad


def f(x):
    """Our function: f(x) = x² + 3x + 2"""
    return x**2 + 3*x + 2


def numerical_derivative(f, x, h=1e-7):
    """Compute derivative using the limit definition."""
    return (f(x + h) - f(x)) / h


def main():
    out = {}
    x = 2.0
    print(f"f({x}) = {f(x)}")
    print(f"f'({x}) numerical  = {numerical_derivative(f, x):.6f}")
    print(f"f'({x}) analytical = {2*x + 3:.6f}")

    # The same derivative with autograd
    x = ad.tensor(2.0, requires_grad=True)
    y = x**2 + 3*x + 2
    y.backward()
    print(f"x = {x.item()}")
    print(f"y = x² + 3x + 2 = {y.item()}")
    print(f"dy/dx = {x.grad.item()}")
    out["dydx"] = x.grad.item()
    out["y_grad_fn"] = y.grad_fn.name()

    # Chain rule
    x = ad.tensor(2.0, requires_grad=True)
    u = 3 * x + 1      # g(x) = 3x + 1 → u = 7.0
    y = u ** 2          # f(u) = u²    → y = 49.0
    y.backward()
    print(f"x = {x.item()}")
    print(f"u = 3x + 1 = {u.item()}")
    print(f"y = u² = {y.item()}")
    print(f"dy/dx (autograd) = {x.grad.item()}")
    print(f"dy/dx (manual)   = 2 * u * 3 = {2 * u.item() * 3}")
    out["chain"] = x.grad.item()

    # Computational graph: z = xy + x²
    x = ad.tensor(2.0, requires_grad=True)
    y = ad.tensor(3.0, requires_grad=True)
    a = x * y          # a = 6.0
    b = x ** 2         # b = 4.0
    z = a + b          # z = 10.0
    print(f"x = {x.item()}, requires_grad = {x.requires_grad}")
    print(f"y = {y.item()}, requires_grad = {y.requires_grad}")
    print(f"a = x*y = {a.item()}, grad_fn = {a.grad_fn}")
    print(f"b = x² = {b.item()}, grad_fn = {b.grad_fn}")
    print(f"z = a+b = {z.item()}, grad_fn = {z.grad_fn}")
    z.backward()
    print(f"dz/dx = {x.grad.item()}")
    print(f"dz/dy = {y.grad.item()}")
    out["partials"] = (x.grad.item(), y.grad.item())
    out["graph_names"] = (a.grad_fn.name(), b.grad_fn.name(), z.grad_fn.name())

    # requires_grad, backward, grad
    w = ad.tensor(0.5, requires_grad=True)
    b = ad.tensor(0.1, requires_grad=True)
    x = ad.tensor(2.0)   # Input — no gradient needed
    z = w * x + b
    loss = (z - 1.0) ** 2
    print(f"z = w*x + b = {z.item():.4f}")
    print(f"loss = (z - 1.0)² = {loss.item():.4f}")
    print(f"w.grad before backward: {w.grad}")
    print(f"b.grad before backward: {b.grad}")
    out["grad_before"] = (w.grad, b.grad)
    loss.backward()
    print(f"w.grad = {w.grad.item():.4f}")
    print(f"b.grad = {b.grad.item():.4f}")
    out["wb_grads"] = (w.grad.item(), b.grad.item())

    # Gradient accumulation
    x = ad.tensor(3.0, requires_grad=True)
    y1 = x ** 2
    y1.backward()
    print(f"After 1st backward: x.grad = {x.grad.item()}")
    acc = [x.grad.item()]
    y2 = x ** 3
    y2.backward()
    print(f"After 2nd backward: x.grad = {x.grad.item()}")
    acc.append(x.grad.item())
    x.grad.zero_()
    y3 = x ** 3
    y3.backward()
    print(f"After zero + backward: x.grad = {x.grad.item()}")
    acc.append(x.grad.item())
    out["accumulation"] = acc

    # no_grad and detach
    x = ad.tensor(2.0, requires_grad=True)
    y = x ** 2
    print(f"y.requires_grad = {y.requires_grad}")
    print(f"y.grad_fn = {y.grad_fn}")
    with ad.no_grad():
        y_no_grad = x ** 2
        print(f"y_no_grad.requires_grad = {y_no_grad.requires_grad}")
        print(f"y_no_grad.grad_fn = {y_no_grad.grad_fn}")
    x_detached = x.detach()
    y_detached = x_detached ** 2
    print(f"x_detached.requires_grad = {x_detached.requires_grad}")
    print(f"y_detached.requires_grad = {y_detached.requires_grad}")
    out["no_grad"] = (y.requires_grad, y_no_grad.requires_grad, y_no_grad.grad_fn,
                      x_detached.requires_grad, y_detached.requires_grad)

    # Gradient descent on f(x) = (x - 3)²
    x = ad.tensor(0.0, requires_grad=True)
    learning_rate = 0.1
    print("Gradient Descent: minimize f(x) = (x - 3)²")
    print(f"{'Step':>4} {'x':>8} {'f(x)':>8} {'grad':>8}")
    print("-" * 36)
    xs = []
    for step in range(10):
        loss = (x - 3.0) ** 2
        loss.backward()
        grad = x.grad.item()
        print(f"{step:4d} {x.item():8.4f} {loss.item():8.4f} {grad:8.4f}")
        with ad.no_grad():
            x -= learning_rate * x.grad
        x.grad.zero_()
        xs.append(x.item())
    print(f"\nFinal x = {x.item():.4f} (target: 3.0)")
    out["descent"] = xs
    return out


if __name__ == "__main__":
    main()
