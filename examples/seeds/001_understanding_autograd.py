"""Seed 001 (Understanding PyTorch Autograd), in tape mode."""
import autodiff_jit as ad


def main():
    out = {}
    # 1. Tensors and gradients
    x = ad.tensor(3.0, requires_grad=True)
    y = x ** 2 + 2 * x + 1  # y = x² + 2x + 1
    y.backward()  # dy/dx = 2x + 2
    print(f"x = {x.item()}, y = {y.item()}, dy/dx = {x.grad.item()}")
    out["dydx"] = x.grad.item()

    # 2. The computational graph
    a = ad.tensor(2.0, requires_grad=True)
    b = a * 3
    c = b + 1
    print(f"a.grad_fn = {a.grad_fn}")   # None — leaf tensor
    print(f"b.grad_fn = {b.grad_fn}")   # MulBackward
    print(f"c.grad_fn = {c.grad_fn}")   # AddBackward
    out["grad_fns"] = (a.grad_fn, b.grad_fn.name(), c.grad_fn.name())

    # 3. Gradients with vectors
    x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x ** 3          # [1, 8, 27]
    y.sum().backward()   # dy/dx = 3x²
    print(f"x     = {x.tolist()}")
    print(f"dy/dx = {x.grad.tolist()}")  # [3, 12, 27]
    out["vector"] = x.grad.tolist()

    # 4. Detaching from the graph
    x = ad.tensor(5.0, requires_grad=True)
    y = x ** 2
    y_detached = y.detach()
    print(f"y_detached.requires_grad = {y_detached.requires_grad}")
    with ad.no_grad():
        z = x * 2
        print(f"z.requires_grad = {z.requires_grad}")
    out["detach"] = (y_detached.requires_grad, z.requires_grad)

    # 5. A mini training loop
    ad.manual_seed(42)
    x_data = ad.linspace(0, 1, 50)
    y_data = 2 * x_data + 1 + 0.1 * ad.randn(50)
    w = ad.tensor(0.0, requires_grad=True)
    b = ad.tensor(0.0, requires_grad=True)
    lr = 0.1
    for epoch in range(200):
        y_pred = w * x_data + b
        loss = ((y_pred - y_data) ** 2).mean()
        loss.backward()
        with ad.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad.zero_()
        b.grad.zero_()
    print(f"Learned: y = {w.item():.3f}x + {b.item():.3f}")
    print(f"True:    y = 2.000x + 1.000")
    out.update(w=w.item(), b=b.item(), x_data=x_data.numpy(), y_data=y_data.numpy())
    return out


if __name__ == "__main__":
    main()
