"""Seed 004 (Understanding Autograd and Gradient Calculation in PyTorch), in tape mode."""
import autodiff_jit as ad
import autodiff_jit.nn as nn
from autodiff_jit import Function


class MultiplyByTwo(Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input * 2

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 2


def main():
    out = {}
    x = ad.tensor([2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y.sum()
    print("z:", z)
    z.backward()
    print("Gradient of x:", x.grad)
    out["grad_x"] = x.grad.tolist()

    with ad.no_grad():
        y = x * 3
    out["no_grad"] = y.requires_grad
    y = x.detach()

    # Gradient accumulation
    x = ad.tensor([2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y.sum()
    z.backward()
    print(x.grad)  # First backward
    first = x.grad.tolist()
    x.grad.zero_()
    z = (x * 3).sum()
    z.backward()
    print(x.grad)  # Second backward
    out["accumulation"] = (first, x.grad.tolist())
    print(z.grad_fn)
    out["z_grad_fn"] = z.grad_fn.name()

    # Partial derivatives: z = mean(x²)
    x = ad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    z = y.mean()
    z.backward()
    print(x.grad)
    out["mean_grad"] = x.grad.tolist()

    x = ad.tensor([5.0], requires_grad=True)
    y = x * 3
    z = y + 4
    print(z.grad_fn)
    print(y.grad_fn)
    out["grad_fns"] = (z.grad_fn.name(), y.grad_fn.name())

    # Chaining
    x = ad.tensor(1.0, requires_grad=True)
    y = x * 2
    z = y * y
    z.backward()
    print(x.grad)
    out["chain"] = x.grad.item()

    # Loss function gradient
    x = ad.tensor([0.5, 1.5], requires_grad=True)
    target = ad.tensor([1.0, 2.0])
    loss_fn = nn.MSELoss()
    loss = loss_fn(x, target)
    loss.backward()
    print(x.grad)
    out["mse_grad"] = x.grad.tolist()
    out["mse_grad_fn"] = loss.grad_fn.name()

    x = ad.tensor([2.0], requires_grad=True)
    y = x * 5
    with ad.no_grad():
        z = y * 3
    print(z.requires_grad)  # False
    out["detach"] = [z.requires_grad]
    z = (y * 3).detach()
    print(z.requires_grad)  # False
    out["detach"].append(z.requires_grad)

    # Accumulation in training
    x = ad.tensor([1.0, 2.0], requires_grad=True)
    y1 = x * 2
    z1 = y1.sum()
    z1.backward()
    print("Grad after first backward:", x.grad)
    x.grad.zero_()
    y2 = x * 3
    z2 = y2.sum()
    z2.backward()
    print("Grad after second backward:", x.grad)
    out["training_acc"] = x.grad.tolist()

    # Custom gradients
    x = ad.tensor(3.0, requires_grad=True)
    y = MultiplyByTwo.apply(x)
    y.backward()
    print(x.grad)
    out["custom"] = x.grad.item()
    out["custom_name"] = y.grad_fn.name()
    return out


if __name__ == "__main__":
    main()
