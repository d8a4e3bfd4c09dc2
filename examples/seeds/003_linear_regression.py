"""Seed 003 (PyTorch AutoGrad: Automatic Differentiation for Deep Learning), in tape mode.

The tutorial's `forward` lost its `X @ W` to the page extraction ("return + b") and its loop
lost `loss.backward()` / `optimizer.step()`; both are restored here, as the tutorial's printed
results (W = 2.0195605754852295, b = 0.7054842114448547) require.
"""
import autodiff_jit as ad
import autodiff_jit.optim as optim


def forward(X, W, b):
    return X @ W + b


def loss_fn(y_pred, y_true):
    return ad.mean((y_pred - y_true) ** 2)


def main():
    out = {}
    X = ad.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=ad.float32)
    y = ad.tensor([[3.0], [5.0], [7.0], [9.0]], dtype=ad.float32)
    W = ad.tensor([[0.0]], requires_grad=True, dtype=ad.float32)
    b = ad.tensor([[0.0]], requires_grad=True, dtype=ad.float32)

    y_pred = forward(X, W, b)
    print(y_pred)
    loss = ad.mean((y_pred - y) ** 2)
    print(loss)
    print(f'Gradient Function for Prediction: {y_pred.grad_fn}')
    print(f'Gradient Function for Loss: {loss.grad_fn}')
    out["grad_fns"] = (y_pred.grad_fn.name(), loss.grad_fn.name())
    out["loss_first"] = loss.item()
    loss.backward()
    print(f'Gradient for W: {W.grad}')
    print(f'Gradient for b: {b.grad}')
    out["first_grads"] = (W.grad.item(), b.grad.item())

    learning_rate = 0.001
    with ad.no_grad():
        W -= learning_rate * W.grad
        b -= learning_rate * b.grad
    print(f'Current value of W: {W.detach().item()}')
    print(f'Current value of b: {b.detach().item()}')
    out["first_step"] = (W.detach().item(), b.detach().item())
    W.grad = None
    b.grad = None

    # Putting it all together
    learning_rate = 0.001
    num_epochs = 200
    print_every = 20
    W = ad.tensor([[0.0]], requires_grad=True, dtype=ad.float32)
    b = ad.tensor([[0.0]], requires_grad=True, dtype=ad.float32)
    optimizer = optim.SGD(params=[W, b], lr=learning_rate)
    losses = []
    for epoch in range(1, num_epochs + 1):
        W.grad = None
        b.grad = None
        y_pred = forward(X, W, b)
        loss = loss_fn(y_pred, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if epoch % print_every == 0:
            print(f'Epoch: {epoch:02} - MSE Loss: {loss:.2f}')
    print(f'Current value of W: {W.detach().item()}')
    print(f'Current value of b: {b.detach().item()}')
    out.update(W=W.detach().item(), b=b.detach().item(), losses=losses)
    return out


if __name__ == "__main__":
    main()
