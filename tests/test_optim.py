"""optim: PyTorch's SGD/Adam formulas, tape mode (step) and functional mode (update) agree."""
import math

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit import nn, optim, tape



def reference_sgd(p, grads, lr, momentum=0.0, dampening=0.0, wd=0.0, nesterov=False):
    buf = None
    for g in grads:
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.3, -0.2]), np.array([-1.0, 0.0, 0.7])]
P0 = np.array([1.0, 2.0, -3.0])


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                dict(momentum=0.5, dampening=0.1, weight_decay=0.01)])
def test_sgd_matches_reference_both_modes(kw):
    ref = reference_sgd(P0, GRADS, 0.1, kw.get("momentum", 0.0), kw.get("dampening", 0.0),
                        kw.get("weight_decay", 0.0), kw.get("nesterov", False))
    p = ad.tensor(P0.copy(), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, **kw)
    for g in GRADS:
        p.grad = ad.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-12)
    fopt = optim.SGD(lr=0.1, **kw)
    q = {"w": P0.copy()}
    for g in GRADS:
        q = fopt.update(q, {"w": g})
    np.testing.assert_allclose(q["w"], ref, rtol=1e-12)


def test_adam_matches_reference_both_modes():
    # PyTorch: p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
    def ref():
        p, m, v = P0.copy(), np.zeros(3), np.zeros(3)
        for t, g in enumerate(GRADS, 1):
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            p = p - 0.01 / (1 - 0.9 ** t) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** t) + 1e-8)
        return p
    p = ad.tensor(P0.copy(), requires_grad=True)
    opt = optim.Adam([p], lr=0.01)
    for g in GRADS:
        p.grad = ad.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), ref(), rtol=1e-12)
    fopt = optim.Adam(lr=0.01)
    q = [P0.copy()]
    for g in GRADS:
        q = fopt.update(q, [g])
    np.testing.assert_allclose(q[0], ref(), rtol=1e-12)


def test_zero_grad_and_in_place_step():
    p = ad.tensor([1.0], requires_grad=True)
    ref = p.data
    opt = optim.SGD([p], lr=1.0)
    (p * 2).sum().backward()
    opt.step()
    assert ref.item() == -1.0       # updated in place, as torch
    opt.zero_grad()
    assert p.grad is None
    (p * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0]


def test_linear_mse_sgd_step_matches_compiled_gradients():
    ad.manual_seed(1)
    x, y = ad.randn(10, 3), ad.randn(10, 2)
    lin = nn.Linear(3, 2)
    assert lin.weight.shape == (2, 3) and lin.bias.shape == (2,)
    assert np.all(np.abs(lin.weight.detach().numpy()) <= 1 / math.sqrt(3))
    crit = nn.MSELoss()
    opt = optim.SGD(lin.parameters(), lr=0.01)
    loss = crit(lin(x), y)
    loss.backward()

    def f(params, xx, yy):
        w, b = params
        return np.mean((xx @ w.T + b - yy) ** 2)
    w0, b0 = lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()
    gw, gb = ad.grad(f)((w0, b0), x.numpy(), y.numpy())
    np.testing.assert_allclose(lin.weight.grad.numpy(), gw, rtol=1e-5)
    np.testing.assert_allclose(lin.bias.grad.numpy(), gb, rtol=1e-5)
    opt.step()
    loss2 = crit(lin(x), y)
    assert loss2.item() < loss.item()


def test_training_loop_both_ways_agree():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 3))
    Y = X @ np.array([1.0, -2.0, 0.5]) + 0.3

    def loss(params, X, Y):
        return np.mean((X @ params["w"] + params["b"] - Y) ** 2)
    params = {"w": np.zeros(3), "b": np.float64(0.0)}
    opt = optim.Adam(lr=0.05)
    step = ad.grad(loss)
    for _ in range(30):
        params = opt.update(params, step(params, X, Y))
    w = ad.tensor(np.zeros(3), requires_grad=True)
    b = ad.tensor(np.float64(0.0), requires_grad=True)
    topt = optim.Adam([w, b], lr=0.05)
    for _ in range(30):
        topt.zero_grad()
        loss({"w": w, "b": b}, X, Y).backward()
        topt.step()
    np.testing.assert_allclose(w.detach().numpy(), params["w"], rtol=1e-10)
    assert b.item() == pytest.approx(float(params["b"]), rel=1e-10)
