"""torch.autograd.functional-style helpers (ad.autograd.functional): jacobian, hessian, vjp,
against analytic values, compiled mode, and torch itself where installed."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.tape import functional as F


def test_jacobian_of_elementwise_and_matrix_functions():
    x = np.array([0.5, -1.0, 2.0])
    J = F.jacobian(lambda t: np.sin(t) * t, ad.tensor(x, dtype=np.float64))
    np.testing.assert_allclose(J.numpy(), np.diag(np.cos(x) * x + np.sin(x)), rtol=1e-14)
    A = np.arange(6.0).reshape(2, 3)
    J = F.jacobian(lambda t: A @ t, ad.tensor(x, dtype=np.float64))
    np.testing.assert_array_equal(J.numpy(), A)


def test_jacobian_tuple_inputs_and_outputs_follow_torch_nesting():
    a, b = ad.tensor(np.array([1.0, 2.0]), dtype=np.float64), ad.tensor(3.0, dtype=np.float64)
    J = F.jacobian(lambda u, v: (u * v, np.sum(u) + v), (a, b))
    assert len(J) == 2 and len(J[0]) == 2
    np.testing.assert_array_equal(J[0][0].numpy(), 3.0 * np.eye(2))
    np.testing.assert_array_equal(J[0][1].numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(J[1][0].numpy(), [1.0, 1.0])
    assert J[1][1].item() == 1.0
    # the caller's tensors are not touched
    assert a.grad is None and not a.requires_grad


def test_hessian_matches_compiled_mode():
    def f(x):
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    x = np.array([0.3, -0.7, 1.2, 0.4])
    H = F.hessian(f, ad.tensor(x, dtype=np.float64))
    np.testing.assert_allclose(H.numpy(), ad.hessian(f)(x), rtol=1e-12, atol=1e-12)
    assert np.allclose(H.numpy(), H.numpy().T)


def test_vjp_and_jacobian_with_create_graph_are_differentiable():
    x = ad.tensor(np.array([0.4, 1.1]), requires_grad=True, dtype=np.float64)
    out, (g,) = F.vjp(lambda t: np.sum(t ** 3), (x,), create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2)
    np.sum(g).backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy())
    with pytest.raises(RuntimeError, match="single element"):
        F.vjp(lambda t: t * 2, ad.tensor(np.ones(2)))


def test_jacobian_of_empty_output():
    J = F.jacobian(lambda t: t[:0] * 2, ad.tensor(np.ones(3), dtype=np.float64))
    assert J.shape == (0, 3)


def test_against_torch():
    torch = pytest.importorskip("torch")
    x = np.array([0.3, -0.7, 1.2])

    def f_np(t):
        return np.sum(np.exp(t) * t[::-1]) + np.sum(t * t * t)

    def f_torch(t):
        return torch.sum(torch.exp(t) * t.flip(0)) + torch.sum(t * t * t)
    H = F.hessian(f_np, ad.tensor(x, dtype=np.float64))
    Ht = torch.autograd.functional.hessian(f_torch, torch.tensor(x))
    np.testing.assert_allclose(H.numpy(), Ht.numpy(), rtol=1e-12)
    J = F.jacobian(lambda t: np.exp(t) * t[::-1], ad.tensor(x, dtype=np.float64))
    Jt = torch.autograd.functional.jacobian(lambda t: torch.exp(t) * t.flip(0), torch.tensor(x))
    np.testing.assert_allclose(J.numpy(), Jt.numpy(), rtol=1e-12)
