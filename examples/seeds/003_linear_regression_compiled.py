"""Seed 003 in compiled mode: the linear fit with ad.value_and_grad on a numpy loss and the
functional SGD (`opt.update(params, grads)`)."""
import numpy as np

import autodiff_jit as ad
import autodiff_jit.optim as optim


def forward(X, W, b):
    return X @ W + b


def loss_fn(params, X, y):
    W, b = params
    return np.mean((forward(X, W, b) - y) ** 2)


def main():
    X = np.array([[1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
    y = np.array([[3.0], [5.0], [7.0], [9.0]], dtype=np.float32)
    params = (np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32))
    loss, (gW, gb) = ad.value_and_grad(loss_fn)(params, X, y)
    print(f"loss {loss}, Gradient for W: {gW}, Gradient for b: {gb}")
    first = (float(gW[0, 0]), float(gb[0, 0]))
    step = ad.value_and_grad(loss_fn)
    opt = optim.SGD(lr=0.001)
    losses = []
    for epoch in range(1, 201):
        loss, grads = step(params, X, y)
        params = opt.update(params, grads)
        losses.append(float(loss))
        if epoch % 20 == 0:
            print(f"Epoch: {epoch:02} - MSE Loss: {loss:.2f}")
    W, b = params
    print(f"Current value of W: {W.item()}")
    print(f"Current value of b: {b.item()}")
    return {"W": W.item(), "b": b.item(), "losses": losses, "first_grads": first}


if __name__ == "__main__":
    main()
