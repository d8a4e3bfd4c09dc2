"""Seed 000 (PyTorch Autograd — From Tensors to Optimization), in tape mode.

Ported from the PyTorch tutorial: `torch.X` -> `ad.X`, `torch.nn` -> `ad.nn`, `torch.optim` ->
`ad.optim`. Random values differ from torch's generator; the behaviour is the same.
"""
import autodiff_jit as ad
import autodiff_jit.nn as nn
import autodiff_jit.optim as optim


def main():
    out = {}
    # Basic autograd example 1 - scalar operations
    x = ad.tensor(1., requires_grad=True)
    w = ad.tensor(2., requires_grad=True)
    b = ad.tensor(3., requires_grad=True)
    y = w * x + b    # y = 2 * 1 + 3 = 5
    y.backward()
    print(x.grad)    # x.grad = 2
    print(w.grad)    # w.grad = 1
    print(b.grad)    # b.grad = 1
    out["scalar"] = (x.grad.item(), w.grad.item(), b.grad.item())

    # Basic autograd example 2 - training a linear model
    ad.manual_seed(0)
    x = ad.randn(10, 3)
    y = ad.randn(10, 2)
    linear = nn.Linear(3, 2)
    print('w:', linear.weight)
    print('b:', linear.bias)
    criterion = nn.MSELoss()
    optimizer = optim.SGD(linear.parameters(), lr=0.01)
    pred = linear(x)
    loss = criterion(pred, y)
    print('loss:', loss.item())
    loss.backward()
    print('dL/dw:', linear.weight.grad)
    print('dL/db:', linear.bias.grad)
    out.update(x=x.numpy(), y=y.numpy(), w0=linear.weight.detach().numpy().copy(),
               b0=linear.bias.detach().numpy().copy(), loss0=loss.item(),
               dw=linear.weight.grad.numpy().copy(), db=linear.bias.grad.numpy().copy())
    optimizer.step()
    # Optional manual update (not recommended)
    # linear.weight.data.sub_(0.01 * linear.weight.grad.data)
    pred = linear(x)
    loss = criterion(pred, y)
    print('loss after 1 step optimization:', loss.item())
    out["loss1"] = loss.item()
    out["grad_fn"] = loss.grad_fn.name()
    return out


if __name__ == "__main__":
    main()
