"""Tape mode: Tensor semantics (PyTorch's), and tape/compiled/interpreter gradient agreement."""
import gc

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit import tape
from autodiff_jit.tape import Tensor, no_grad, tensor
from helpers import assert_within_rounding



# ---------------------------------------------------------------------------------------------
# basics

def test_scalar_example_and_grad_fn_names():
    x, w, b = (tensor(v, requires_grad=True) for v in (1., 2., 3.))
    y = w * x + b
    assert y.grad_fn.name() == "AddBackward0"
    assert repr(y) == "tensor(5., grad_fn=<AddBackward0>)"
    y.backward()
    assert (x.grad.item(), w.grad.item(), b.grad.item()) == (2.0, 1.0, 1.0)
    assert repr(x.grad) == "tensor(2.)"
    assert x.is_leaf and not y.is_leaf and x.grad_fn is None


@pytest.mark.parametrize("expr,name", [
    (lambda x: x + 1, "AddBackward0"), (lambda x: x - 1, "SubBackward0"),
    (lambda x: x * 3, "MulBackward0"), (lambda x: x / 2, "DivBackward0"),
    (lambda x: x ** 2, "PowBackward0"), (lambda x: -x, "NegBackward0"),
    (lambda x: np.exp(x), "ExpBackward0"), (lambda x: np.log(x), "LogBackward0"),
    (lambda x: x.sum(), "SumBackward0"), (lambda x: x.mean(), "MeanBackward0"),
    (lambda x: ad.mean(x), "MeanBackward0"), (lambda x: np.mean(x), "MeanBackward0"),
    (lambda x: np.tanh(x), "TanhBackward0"), (lambda x: ad.sigmoid(x), "SigmoidBackward0"),
    (lambda x: x @ x, "DotBackward0"),
    (lambda x: np.ones((2, 3), np.float32) @ x, "MvBackward0"),
    (lambda x: x.reshape(3, 1) @ x.reshape(1, 3), "MmBackward0"),
])
def test_grad_fn_names(expr, name):
    x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert expr(x).grad_fn.name() == name
    assert name in repr(expr(x).grad_fn)


def test_reprs():
    assert repr(tensor(2.)) == "tensor(2.)"
    assert repr(tensor([1., 2.], requires_grad=True)) == "tensor([1., 2.], requires_grad=True)"
    assert repr(tensor(0.4)) == "tensor(0.4000)"
    assert repr(tensor([[0.0], [0.0]])) == "tensor([[0.],\n        [0.]])"
    assert repr(tensor([1, 2])) == "tensor([1, 2])"
    assert repr(tensor([1.5], dtype=np.float64)) == "tensor([1.5000], dtype=float64)"
    assert f"{tensor(0.0612):.2f}" == "0.06"


def test_next_functions_walk():
    x = tensor(2.0, requires_grad=True)
    y = tensor(3.0, requires_grad=True)
    z = x * y + x ** 2
    names = []
    stack = [z.grad_fn]
    while stack:
        fn = stack.pop()
        names.append(fn.name())
        stack.extend(f for f, _ in fn.next_functions if f is not None)
    assert names.count("AccumulateGrad") == 3
    assert set(names) == {"AddBackward0", "MulBackward0", "PowBackward0", "AccumulateGrad"}
    acc = z.grad_fn.next_functions[1][0].next_functions[0][0]
    assert acc.variable is x


def test_chain_rule_and_partials():
    x = tensor(2.0, requires_grad=True)
    ((3 * x + 1) ** 2).backward()
    assert x.grad.item() == 42.0
    x = tensor(2.0, requires_grad=True)
    y = tensor(3.0, requires_grad=True)
    (x * y + x ** 2).backward()
    assert (x.grad.item(), y.grad.item()) == (7.0, 2.0)


def test_accumulation_and_zeroing():
    x = tensor([2.0, 3.0], requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    (x * 2).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]          # doubles on a second backward
    x.grad.zero_()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x.grad = None
    (x * 5).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_grad_is_not_aliased_between_leaves():
    a = tensor(1.0, requires_grad=True)
    b = tensor(2.0, requires_grad=True)
    (a + b).backward()
    a.grad.zero_()
    assert b.grad.item() == 1.0


def test_retain_graph():
    x = tensor(3.0, requires_grad=True)
    y = x ** 2
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    x.grad = None
    y = x ** 2
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 12.0


def test_retain_graph_composite():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x.mean()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_create_graph_double_backward():
    x = tensor(2.0, requires_grad=True)
    y = x ** 3
    y.backward(create_graph=True)
    g = x.grad
    assert g.item() == 12.0 and g.requires_grad
    x.grad = None
    g.backward()
    assert x.grad.item() == 12.0  # d²/dx² x³ = 6x
    x = tensor([1.0, -2.0], requires_grad=True, dtype=np.float64)
    (gx,) = tape.grad(np.sum(np.tanh(x) * x), x, create_graph=True)
    (hx,) = tape.grad(np.sum(gx), x)
    t = np.tanh(x.numpy() if not x.requires_grad else x.detach().numpy())
    expected = 2 * (1 - t ** 2) - 2 * x.detach().numpy() * t * (1 - t ** 2)
    np.testing.assert_allclose(hx.numpy(), expected, rtol=1e-12)


def test_third_derivative():
    x = tensor(1.5, requires_grad=True, dtype=np.float64)
    y = np.sin(x) * x
    (g1,) = tape.grad(y, x, create_graph=True)
    (g2,) = tape.grad(g1, x, create_graph=True)
    (g3,) = tape.grad(g2, x)
    v = 1.5
    assert g3.item() == pytest.approx(-3 * np.sin(v) - v * np.cos(v), rel=1e-12)


def test_no_grad_detach_and_modes():
    x = tensor(2.0, requires_grad=True)
    with no_grad():
        z = x * 2
        assert not ad.is_grad_enabled()
        with ad.enable_grad():
            assert (x * 2).requires_grad
    assert ad.is_grad_enabled()
    assert not z.requires_grad and z.grad_fn is None
    d = (x ** 2).detach()
    assert not d.requires_grad and d.item() == 4.0

    @no_grad()
    def f(v):
        return v * 3
    assert not f(x).requires_grad
    assert x.data.requires_grad is False and x.data.item() == 2.0


def test_inplace_under_no_grad_and_error():
    w = tensor(1.0, requires_grad=True)
    (w * 3).backward()
    with pytest.raises(RuntimeError, match="in-place"):
        w -= 0.1 * w.grad
    with no_grad():
        w -= 0.1 * w.grad
    assert w.item() == pytest.approx(0.7) and w.is_leaf and w.requires_grad
    v = tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        v += 1
        v *= 2
    assert v.tolist() == [4.0, 6.0]
    v.data.sub_(tensor([1.0, 1.0]))
    assert v.tolist() == [3.0, 5.0]
    v.requires_grad_(False)
    v.add_(1.0)
    v.copy_(tensor([9.0, 9.0]))
    assert v.tolist() == [9.0, 9.0]
    assert v.zero_().tolist() == [0.0, 0.0]


def test_inplace_on_nonleaf_records():
    x = tensor(2.0, requires_grad=True)
    y = x * 1
    y *= x
    y.backward()
    assert x.grad.item() == 4.0


def test_conversions():
    x = tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.dtype == np.float32 and x.T.shape == (2, 2)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x[1, 0].item() == 3.0
    assert isinstance(np.exp(x), Tensor) and isinstance(np.sum(x), Tensor)
    assert np.asarray(x.detach()).dtype == np.float32
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        np.asarray(x)  # as torch: an implicit conversion would drop the gradient
    assert ad.tensor(3).dtype == np.int64 and ad.tensor(3.0).dtype == np.float32
    assert ad.randn(3, 2).dtype == np.float32 and ad.zeros(2).tolist() == [0.0, 0.0]


def test_indexing_gradients():
    x = tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = (x[:, 1:] ** 2).sum() + x[0, 0] * 3 + x[np.array([1, 1])].sum()
    y.backward()
    expected = np.array([[3.0, 2.0, 4.0], [2.0, 2 * 4.0 + 2, 2 * 5.0 + 2]])
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_custom_function():
    class MultiplyByTwo(ad.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input * 2

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 2

    x = tensor(3.0, requires_grad=True)
    y = MultiplyByTwo.apply(x)
    assert y.item() == 6.0 and y.grad_fn.name() == "MultiplyByTwoBackward"
    (y * y).backward()
    assert x.grad.item() == 2 * 6.0 * 2


def test_backward_with_gradient_argument():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(tensor([1.0, 10.0]))
    assert x.grad.tolist() == [3.0, 30.0]


def test_retain_grad_nonleaf():
    x = tensor(2.0, requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y ** 2).backward()
    assert y.grad.item() == 12.0 and x.grad.item() == 36.0


# ---------------------------------------------------------------------------------------------
# grad(f, mode="tape") matches compiled and interpreted gradients

rng = np.random.default_rng(0)
A = rng.standard_normal((4, 3))
W1, B1, W2 = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal((5, 2))
LABELS = np.array([0, 1, 1, 0])
YS = np.array([1.0, 0.0, 1.0, 1.0])


def poly(x, y, z):
    return x * y * z + x ** 2 * y - z ** 3


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def logistic(w):
    z = A @ w
    return np.mean(np.log1p(np.exp(-z)) * YS + np.log1p(np.exp(z)) * (1 - YS))


def mlp(params):
    w1, b1, w2 = params["w1"], params["b1"], params["w2"]
    h = np.tanh(A @ w1 + b1)
    return np.sum((h @ w2) ** 2) / 2


def softmax_xent(w):
    logits = A @ w
    m = np.max(logits, axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.sum(np.exp(logits - m), axis=1))
    return np.mean(lse - logits[np.arange(4), LABELS])


def slicing(x):
    return np.sum(x[::2] * x[1::2]) + x[-1] ** 3 + np.sum(x[np.array([0, 0, 2])])


def broadcasting(x, v):
    return np.sum((x[:, None] * v[None, :] + v) ** 2) + np.sum(np.max(x * 2.0, axis=0))


def reductions(x):
    return np.sum(np.prod(x, axis=0)) + np.var(x) + np.std(x, axis=1).sum() + np.mean(x, axis=0)[1]


def selects(x):
    return np.sum(np.where(x > 0, x ** 2, -x) + np.maximum(x, 0.3) + np.clip(x, -0.5, 0.5))


def matmuls(a, b):
    return np.sum((a @ b) ** 2) + np.dot(a[0], b[:, 0]) + np.sum(np.outer(a[:, 0], b[0]))


def constants(x, c):
    # constant operands (Python scalars, broadcast arrays, an argument not differentiated) on
    # either side of each binary primitive: only the Tensor side gets a cotangent
    k = np.array([[1.0], [2.0], [0.5]])
    return (np.sum(100.0 * x + 1.0 - x * k - k / x + 2.0 / (x + 3.0) + c * x - x ** c)
            + np.sum(np.maximum(x, 0.1) + np.minimum(0.2, x) + np.power(1.5, x) - x[None] * c))


CASES = [
    (poly, (1.5, -2.0, 0.5), (0, 1, 2)),
    (rosenbrock, (np.linspace(-1, 1.5, 10),), 0),
    (logistic, (rng.standard_normal(3),), 0),
    (mlp, ({"w1": W1, "b1": B1, "w2": W2},), 0),
    (softmax_xent, (rng.standard_normal((3, 2)),), 0),
    (slicing, (rng.standard_normal(6),), 0),
    (broadcasting, (rng.standard_normal(4), rng.standard_normal(3)), (0, 1)),
    (reductions, (rng.standard_normal((3, 4)),), 0),
    (selects, (rng.standard_normal(7),), 0),
    (matmuls, (rng.standard_normal((3, 4)), rng.standard_normal((4, 2))), (0, 1)),
    (constants, (rng.uniform(0.5, 2.0, 4), rng.uniform(0.5, 2.0, 4)), 0),
]


def _assert_tree_close(a, b):
    from autodiff_jit import tree
    la, ta = tree.flatten(a)
    lb, tb = tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        assert type(x) is type(y), (type(x), type(y))
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn,args,argnums", CASES, ids=[c[0].__name__ for c in CASES])
def test_tape_compiled_interpret_agree(fn, args, argnums):
    gt = ad.value_and_grad(fn, argnums=argnums, mode="tape")(*args)
    gc = ad.value_and_grad(fn, argnums=argnums)(*args)
    gi = ad.value_and_grad(fn, argnums=argnums, mode="interpret")(*args)
    _assert_tree_close(gt, gc)
    _assert_tree_close(gt, gi)


def test_tape_grad_has_aux_and_errors():
    def f(x):
        return np.sum(x ** 2), {"m": np.mean(x), "n": 3}
    g, aux = ad.grad(f, has_aux=True, mode="tape")(np.array([1.0, 2.0]))
    gc, auxc = ad.grad(f, has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, gc)
    assert aux["m"] == auxc["m"] and type(aux["m"]) is type(auxc["m"])
    with pytest.raises(TypeError, match="scalar"):
        ad.grad(lambda x: x * 2, mode="tape")(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="floating-point"):
        ad.grad(lambda x: x * 2.0, mode="tape")(3)
    # output independent of the input: zero gradient
    assert ad.grad(lambda x: 1.0, mode="tape")(2.0) == 0.0


def test_tape_grad_float32_and_scalar_types():
    x = np.float32(2.0)
    g = ad.grad(lambda x: x ** 3, mode="tape")(x)
    gc = ad.grad(lambda x: x ** 3)(x)
    assert type(g) is type(gc) and g == gc



# ---------------------------------------------------------------------------------------------
# engine internals: 0-d values held as numpy scalars, creation-order walk, in-place rewiring

def test_zero_d_values_behave_as_arrays():
    x = tensor(2.0, requires_grad=True, dtype=np.float64)
    y = x * 3.0 + 1.0
    d = y.detach()
    arr = d.numpy()
    assert type(arr) is np.ndarray and arr.shape == () and arr.dtype == np.float64
    assert type(np.asarray(d)) is np.ndarray and np.asarray(d) == 7.0
    d.zero_()  # detach shares storage with y, as in PyTorch
    assert y.item() == 0.0 and arr == 0.0
    z = x * 2.0
    with no_grad():
        z += 1.0
        z *= 2.0
    assert z.item() == 10.0 and repr(z) == "tensor(10., dtype=float64, grad_fn=<MulBackward0>)"
    w = (x * 1.0).detach()
    w.fill_(5.0)
    w[()] = 6.0
    assert w.item() == 6.0 and x.item() == 2.0
    assert isinstance(x.data.numpy(), np.ndarray) and f"{y:.1f}" == "0.0"
    assert tape.from_numpy(np.array(1.5)).numpy().shape == ()


def test_zero_d_leaf_optimizer_and_grad_accumulation():
    w = tensor(1.0, requires_grad=True, dtype=np.float64)
    opt = ad.optim.SGD([w], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ((w - 3.0) ** 2).backward()
        opt.step()
    assert abs(w.item() - (3.0 - 2.0 * 0.8 ** 3)) < 1e-12
    assert type(w.grad.numpy()) is np.ndarray
    opt.zero_grad(set_to_none=False)
    (w * 2.0).backward()
    (w * 2.0).backward()
    assert w.grad.item() == 4.0


def test_walk_follows_creation_order_through_shared_subgraphs():
    x = tensor([0.5, -1.0, 2.0], requires_grad=True, dtype=np.float64)
    a = np.tanh(x)
    b = a * a
    c = b + a          # a reached through two paths of different lengths
    d = np.sum(c * b) + np.sum(a)
    d.backward()
    xv = x.detach().numpy()
    t = np.tanh(xv)
    # d = sum((t^2 + t) t^2) + sum(t) -> dd/dt = 4t^3 + 3t^2 + 1
    np.testing.assert_allclose(x.grad.numpy(), (4 * t**3 + 3 * t**2 + 1) * (1 - t**2),
                               rtol=1e-12)


def test_inplace_rewiring_keeps_a_topological_order():
    # `a` is an input of `b`'s node before `a += y` re-points it at a newer node: creation
    # order is then not topological, and backward must still reach every contribution once.
    # b = 3 (x * 1) was recorded before the write, so its cotangent goes to a's old history
    # (PyTorch's edges are fixed when a node is recorded): b + a = 3x + (x + y).
    earlier = set(tape._REWIRED)   # rewired nodes other tests' objects still hold
    x = tensor(2.0, requires_grad=True)
    y = tensor(5.0, requires_grad=True)
    a = x * 1
    b = a * 3
    a += y
    assert tape._REWIRED - earlier
    (b + a).backward()
    assert (x.grad.item(), y.grad.item()) == (4.0, 1.0)   # (was (4, 4): b's gradient reached y)
    del a, b
    # once those nodes are gone they leave the set (the creation-order walk is used again
    # when no other rewired node is alive)
    gc.collect()
    assert not tape._REWIRED - earlier
    x.grad = None
    ((x * x) * x).backward()
    assert x.grad.item() == 12.0


def test_double_backward_on_scalars_and_retain():
    x = tensor(1.5, requires_grad=True, dtype=np.float64)
    y = x ** 4 / (1.0 + x * x)
    (g,) = tape.grad(y, x, create_graph=True)
    (h,) = tape.grad(g, x)
    xv = 1.5
    f1 = (4 * xv**3 * (1 + xv**2) - xv**4 * 2 * xv) / (1 + xv**2) ** 2
    assert abs(g.item() - f1) < 1e-12
    eps = 1e-6
    num = ((lambda v: (4 * v**3 * (1 + v**2) - v**4 * 2 * v) / (1 + v**2) ** 2)(xv + eps)
           - (lambda v: (4 * v**3 * (1 + v**2) - v**4 * 2 * v) / (1 + v**2) ** 2)(xv - eps))
    assert abs(h.item() - num / (2 * eps)) < 1e-6
    z = x * x
    z.backward(retain_graph=True)
    z.backward()
    assert x.grad.item() == 6.0
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


@pytest.mark.parametrize("shape", [(3, 4), (130, 140)])  # a fresh array / a broadcast view
def test_sum_and_slice_gradients_small_and_large(shape):
    # reduce_sum's and slice's rules take a plain-numpy path in tape backward; the results must
    # match compiled mode for full and partial reductions, strided slices, and float32
    rng_ = np.random.default_rng(1)
    for dt in (np.float64, np.float32):
        x0 = rng_.standard_normal(shape).astype(dt)

        def f(x):
            return (np.sum(x) * 0.5 + np.sum(np.sum(x, axis=1) ** 2) + np.sum(x[1::2] * 3.0)
                    + np.sum(np.sum(x, axis=0, keepdims=True) * x[:1]))
        gt = ad.grad(f, mode="tape")(x0)
        gc = ad.grad(f)(x0)
        assert gt.dtype == gc.dtype == dt and gt.shape == shape
        x = tensor(x0, requires_grad=True)
        (g,) = tape.grad(f(x), x, create_graph=True)   # double backward, same rules on Tensors
        if dt == np.float32:   # against float64 under the sum bound (orders differ by CPU)
            g64 = ad.grad(f)(x0.astype(np.float64))
            # f is a polynomial with nonnegative coefficients: its gradient at |x| bounds the
            # sum of the magnitudes of the terms in each gradient entry
            mag = ad.grad(f)(np.abs(x0).astype(np.float64))
            for got in (gt, gc, g.detach().numpy()):
                assert_within_rounding(got, g64, mag, sum(shape))
        else:
            np.testing.assert_allclose(gt, gc, rtol=1e-10)
            np.testing.assert_allclose(g.detach().numpy(), gc, rtol=1e-10)


def test_grad_of_tape_mode_grad_stays_on_the_tape():
    # the inner tape-mode grad sees the outer tape's Tensors: its result must stay connected
    assert ad.grad(ad.grad(lambda x: x ** 3, mode="tape"), mode="tape")(2.0) == pytest.approx(12.0)
    f = lambda x: np.sum(np.sin(x) * x ** 2)  # noqa: E731
    w = np.array([1.0, -2.0])
    x = np.array([0.3, 1.2])
    hvp_tape = ad.grad(lambda x: np.sum(ad.grad(f, mode="tape")(x) * w), mode="tape")(x)
    hvp_compiled = ad.grad(lambda x: np.sum(ad.grad(f)(x) * w))(x)
    np.testing.assert_allclose(hvp_tape, hvp_compiled, rtol=1e-12)
