"""PyTorch semantics of tape mode that users rely on, checked against what torch documents
(and against torch itself where it is installed; those tests skip otherwise)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit import tape

NUMPY_MSG = r"Can't call numpy\(\) on Tensor that requires grad"


def t64(v, rg=True):
    return ad.tensor(np.asarray(v, dtype=np.float64), requires_grad=rg)


# --- Tensor -> numpy conversions --------------------------------------------------------------

@pytest.mark.parametrize("convert", [
    lambda x: np.asarray(x),
    lambda x: np.array([x[0], x[1]]),
    lambda x: np.full(3, x[0]),
    lambda x: np.mean([x, 2 * x]),
    lambda x: np.vectorize(lambda v: 2 * v)(x),
], ids=["asarray", "array-of-list", "full", "mean-of-list", "vectorize"])
def test_numpy_conversion_of_grad_tensor_raises_torch_error(convert):
    x = t64([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match=NUMPY_MSG):
        convert(x)
    # without requires_grad the conversion is allowed, as in torch
    assert np.asarray(convert(x.detach())).size >= 1


@pytest.mark.parametrize("f", [
    lambda x: float(x[0]) * x[1],
    lambda x: math.exp(x[0]) * x[1],
    lambda x: sum(x.tolist()) * x[0],
], ids=["float", "math.exp", "tolist"])
def test_tape_grad_refuses_conversions_that_drop_the_gradient(f):
    # these used to detach silently and return a zero gradient
    with pytest.raises(RuntimeError):
        ad.grad(f, mode="tape")(np.array([1.0, 3.0, 5.0]))


@pytest.mark.parametrize("f, want", [
    (lambda x: np.sum(np.asarray(x) ** 2), lambda x: 2 * x),
    (lambda x: np.sum(np.array([x[0], x[1]]) ** 2), lambda x: 2 * x * [1, 1, 0]),
    (lambda x: np.mean([x, 2 * x]) * 2, lambda x: np.full(3, 1.0)),
    (lambda x: np.sum(np.full(3, x[0])), lambda x: np.array([3.0, 0.0, 0.0])),  # routed too
], ids=["asarray", "array-of-list", "mean-of-list", "full"])
def test_tape_grad_builds_lists_of_tensors(f, want):
    # inside a tape-mode grad call numpy's np.array/np.mean of Tensors are routed
    # (numpy/lists.py) and keep the gradient; outside one they raise (test above)
    x = np.array([1.0, 3.0, 5.0])
    np.testing.assert_allclose(ad.grad(f, mode="tape")(x), want(x), rtol=1e-15)


def test_number_conversions_outside_a_tape_grad_follow_torch():
    # torch: float(t), t.tolist(), t.item() of a grad-requiring tensor return values; float()
    # (which math.exp and numpy's `y[0] = t` call) warns, as torch does, that the value detaches
    x = t64(2.5)
    with pytest.warns(UserWarning, match="requires_grad=True to a scalar"):
        assert float(x) == 2.5
    with pytest.warns(UserWarning, match="Consider using tensor.detach"):
        assert math.exp(x) == math.exp(2.5)
    with pytest.warns(UserWarning, match="requires_grad=True to a scalar"):
        y = np.zeros(2)
        y[0] = x
    assert y[0] == 2.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.item() == 2.5 and float(x.detach()) == 2.5
    assert t64([1.0, 2.0]).tolist() == [1.0, 2.0]
    # .item() stays available inside a tape grad: value-dependent control flow
    g = ad.grad(lambda v: v * 2 if v.item() > 0 else v * 3, mode="tape")(1.5)
    assert g == 2.0


# --- in-place assignment into tensors (CopySlices) -----------------------------------------

def test_setitem_into_plain_tensor_records_copyslices():
    a = t64([1.0, 2.0])
    t = ad.zeros(3, dtype=np.float64)
    t[0] = a[0] * 3
    t[2] = a[1] ** 2
    assert t.grad_fn.name() == "CopySlices" and not t.is_leaf
    t.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])


def test_setitem_into_nonleaf_overwrites_its_gradient():
    x = t64([1.0, 2.0, 3.0])
    y = x * 2
    y[1] = 0.0  # the overwritten element no longer depends on x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 2.0])


def test_setitem_into_leaf_that_requires_grad_raises():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x[0] = 5.0


def test_zeros_like_then_setitem_in_tape_grad():
    def f(x):
        y = np.zeros_like(x)
        y[0] = x[1] ** 2
        return np.sum(y + x)
    np.testing.assert_allclose(ad.grad(f, mode="tape")(np.array([1.0, 16.5, 2.0])),
                               [1.0, 34.0, 1.0])


def test_copy_is_a_new_node():
    f = lambda x: (y := x.copy(), y.__setitem__(0, 2.0), np.sum(x * y))[2]  # noqa: E731
    np.testing.assert_array_equal(ad.grad(f, mode="tape")(np.array([1.0, 3.0])), [2.0, 6.0])
    g = lambda x: (y := np.copy(x), y.__setitem__(0, 2.0), np.sum(x * y))[2]  # noqa: E731
    np.testing.assert_array_equal(ad.grad(g, mode="tape")(np.array([1.0, 3.0])), [2.0, 6.0])
    x = t64([1.0, 2.0])
    c = x.copy()
    assert c is not x and c.grad_fn.name() == "CloneBackward0"


# --- version counters ---------------------------------------------------------------------

def test_modifying_a_saved_tensor_in_place_raises_at_backward():
    x = t64([1.0, 2.0])
    y = x * 1
    z = y * y  # saves y
    with ad.no_grad():
        y += 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_modifying_a_saved_tensor_on_the_graph_raises_too():
    x = t64([1.0, 2.0])
    y = x.exp()
    z = y * y
    y += 1.0  # an in-place op recorded on the graph: z's saved y is now stale
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_write_through_detach_view_bumps_the_shared_counter():
    x = t64([1.0, 2.0])
    y = x * 1
    z = y * y
    y.detach().zero_()  # detach shares storage (and the version counter) with y
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_on_inputs_whose_values_backward_does_not_read_is_fine():
    # torch: AddBackward0 saves nothing, MulBackward0 by a constant saves only the constant
    x = t64([1.0, 2.0])
    a = x * 1
    b = a + 1.0
    c = a * 3.0
    a += 5.0
    (b.sum() + c.sum() + a.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0])


def test_version_counter_counts_writes():
    x = ad.zeros(2, dtype=np.float64)
    assert x._version_count == 0
    x += 1.0
    x[0] = 3.0
    x.zero_()
    assert x._version_count == 3


# --- size / dim / numel: both conventions ---------------------------------------------------

def test_size_is_numpys_int_and_torchs_method():
    x = ad.tensor(np.zeros((2, 3), np.float32))
    assert x.size == 6 and isinstance(x.size, int)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.dim() == 2 and x.ndim == 2 and x.numel() == 6 and x.shape == (2, 3)
    assert (x * x.size).dtype == np.float32 and (x.size * x).dtype == np.float32
    assert list(range(x.size)) == list(range(6))


def test_numpy_code_using_size_runs_in_tape_mode():
    f = lambda x: np.sum(x * x) / x.size  # noqa: E731
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(ad.grad(f, mode="tape")(x), ad.grad(f)(x))


# --- retain_grad and hooks -------------------------------------------------------------------

def test_retain_grad():
    x = t64([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    (y * y).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [6.0, 12.0])
    z = x * 2
    (z * z).sum().backward()
    assert z.grad is None  # non-leaf grads are not kept unless asked
    with pytest.raises(RuntimeError):
        ad.tensor([1.0]).retain_grad()


def test_register_hook_sees_and_replaces_gradients():
    x = t64([1.0, 2.0])
    seen = []
    hx = x.register_hook(lambda g: seen.append(("x", g.numpy().copy())))
    y = x * 3
    y.register_hook(lambda g: g * 10)  # replaces dL/dy before it flows on
    y.retain_grad()
    y.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [10.0, 10.0])  # retain_grad sees the hooked value
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])
    assert seen[0][0] == "x"
    np.testing.assert_array_equal(seen[0][1], [30.0, 30.0])
    hx.remove()
    x.grad = None
    (x * 1).sum().backward()
    assert len(seen) == 1
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        ad.tensor([1.0]).register_hook(lambda g: g)


def test_leaf_hook_applies_to_autograd_grad():
    x = t64([1.0, 2.0])
    x.register_hook(lambda g: g * 2)
    (g,) = tape.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [4.0, 8.0])


# --- nested and compiled compositions ------------------------------------------------------

def test_nested_tape_grad_with_closure_over_outer_argument():
    def outer(y):
        return ad.grad(lambda x: np.sin(x * y) * x, mode="tape")(1.3) * y
    want = ad.grad(lambda y: ad.grad(lambda x: np.sin(x * y) * x)(1.3) * y)(0.8)
    got = ad.grad(outer, mode="tape")(0.8)
    assert abs(got - 1.5090350176232121) < 1e-12 and abs(got - want) < 1e-12


def test_tape_grad_through_compiled_functions():
    x = np.array([1.0, 3.0, 5.0])
    jg = ad.jit(lambda v: np.sum(np.sin(v)))
    np.testing.assert_allclose(ad.grad(lambda v: jg(v) * 2, mode="tape")(x), 2 * np.cos(x))
    cg = ad.grad(lambda v: np.sum(np.sin(v)))
    np.testing.assert_allclose(ad.grad(lambda v: np.sum(cg(v)), mode="tape")(x), -np.sin(x))


def test_python_float_argument_is_float64_as_in_compiled_mode():
    g = ad.grad(lambda x, c: x * c * x, mode="tape")(1.5, 2.0)
    assert type(g) is type(ad.grad(lambda x, c: x * c * x)(1.5, 2.0)) is np.float64


def test_reflected_bool_operators():
    x = ad.tensor([1.0, -1.0, 2.0])
    np.testing.assert_array_equal((True & (x > 0)).numpy(), [True, False, True])
    np.testing.assert_array_equal((False | (x > 0)).numpy(), [True, False, True])
    np.testing.assert_array_equal((True ^ (x > 0)).numpy(), [False, True, False])
    np.testing.assert_array_equal(((x > 0) ^ True).numpy(), [False, True, False])
    f = lambda v: np.sum(np.where(True & (v > 0), v * v, 0.0))  # noqa: E731
    np.testing.assert_array_equal(ad.grad(f, mode="tape")(np.array([1.0, -1.0])), [2.0, 0.0])


# --- torch-style reductions refuse numpy keywords they do not handle -------------------------

def test_tensor_methods_accept_both_conventions_and_refuse_the_rest():
    x = ad.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.sum(dim=1).numpy(), [3.0, 12.0])
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).numpy(), [[3.0], [12.0]])
    np.testing.assert_array_equal(x.mean(dim=0, keepdim=True).numpy(), [[1.5, 2.5, 3.5]])
    assert x.var(unbiased=True).item() == pytest.approx(np.var(np.arange(6.0), ddof=1))
    assert x.std(correction=1).item() == pytest.approx(np.std(np.arange(6.0), ddof=1))
    # numpy keywords the numpy layer implements work; the others are refused by name
    m = np.array([[True, False, True], [False, True, True]])
    assert x.sum(where=m).item() == np.arange(6.0).reshape(2, 3).sum(where=m)
    assert x.mean(where=m).item() == np.arange(6.0).reshape(2, 3).mean(where=m)
    np.testing.assert_allclose(x.var(where=m).item(), np.arange(6.0).reshape(2, 3).var(where=m))
    assert x.var(mean=1.0).item() == np.arange(6.0).reshape(2, 3).var(mean=1.0)
    with pytest.raises(NotImplementedError, match="out="):
        x.var(out=np.empty(()))
    with pytest.raises(NotImplementedError, match="foo"):
        x.sum(foo=1)
    with pytest.raises(TypeError):
        x.sum(axis=0, dim=0)


# --- against torch itself (skipped without torch) --------------------------------------------

def test_against_torch_copyslices_hooks_and_versions():
    torch = pytest.importorskip("torch")
    a_np = np.array([1.0, 2.0, 3.0])
    # CopySlices
    ta = torch.tensor(a_np, requires_grad=True)
    tt = torch.zeros(3, dtype=torch.float64)
    tt[0] = ta[1] * 3
    tt[1:] = ta[:2] ** 2
    (tt * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    aa = ad.tensor(a_np, requires_grad=True)
    at = ad.zeros(3, dtype=np.float64)
    at[0] = aa[1] * 3
    at[1:] = aa[:2] ** 2
    (at * np.array([1.0, 2.0, 3.0])).sum().backward()
    assert tt.grad_fn.name().endswith("CopySlices") and at.grad_fn.name() == "CopySlices"
    np.testing.assert_allclose(aa.grad.numpy(), ta.grad.numpy())
    # hooks
    tx, ax = torch.tensor(a_np, requires_grad=True), ad.tensor(a_np, requires_grad=True)
    for x in (tx, ax):
        y = x * x
        y.register_hook(lambda g: g * 2)
        y.retain_grad()
        (y * 3).sum().backward()
    np.testing.assert_allclose(ax.grad.numpy(), tx.grad.numpy())
    # version counter: both raise
    for mk, ng in ((lambda: torch.tensor(a_np, requires_grad=True), torch.no_grad),
                   (lambda: ad.tensor(a_np, requires_grad=True), ad.no_grad)):
        x = mk()
        y = x.exp()
        z = y * y
        with ng():
            y.mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()
    # numpy conversion
    with pytest.raises(RuntimeError, match=NUMPY_MSG):
        np.asarray(torch.tensor(a_np, requires_grad=True))
    with pytest.raises(RuntimeError, match=NUMPY_MSG):
        np.asarray(ad.tensor(a_np, requires_grad=True))
    # size conventions
    assert tuple(torch.zeros(2, 3).size()) == ad.zeros(2, 3).size()
    assert torch.zeros(2, 3).size(1) == ad.zeros(2, 3).size(1)
    assert torch.zeros(2, 3).dim() == ad.zeros(2, 3).dim()
    assert torch.zeros(2, 3).numel() == ad.zeros(2, 3).numel()


def test_optimizer_step_is_an_inplace_write():
    w = ad.nn.Parameter(np.array([1.0, 2.0]))
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    ad.optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()  # torch raises too: the saved w changed


def test_composites_retain_and_release_like_torch():
    x = t64([1.0, 2.0, 3.0])
    m = np.mean(x * x)
    assert m.grad_fn.name() == "MeanBackward0"
    m.backward(retain_graph=True)
    m.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * np.array([1.0, 2.0, 3.0]) / 3)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        m.backward()


def test_tape_mode_jvp_with_python_float_and_negative_power():
    # used to raise AttributeError ('float' object has no attribute 'dtype')
    got = ad.jvp(lambda x: x ** -2, (1.5,), (1.0,), mode="tape")
    want = ad.jvp(lambda x: x ** -2, (1.5,), (1.0,))
    assert got == want and type(got[1]) is np.float64
    assert abs(got[1] - (-2 * 1.5 ** -3)) < 1e-15


def test_to_takes_torchs_arguments_and_refuses_other_devices():
    t = t64([1.0, 2.0])
    assert t.to("cpu") is t and t.to(device="cpu:0") is t and t.to(np.float64) is t
    assert t.to("float32").dtype == np.float32 and t.to("cpu", np.float32).dtype == np.float32
    assert t.to(ad.as_tensor(np.ones(1, np.float32))).dtype == np.float32
    c = t.to(copy=True)
    assert c is not t and c.grad_fn is not None   # a CloneBackward0 on the graph, as torch's
    with pytest.raises(RuntimeError, match="live on the CPU"):
        t.to("cuda")
    with pytest.raises(RuntimeError, match="live on the CPU"):
        t.to(device="mps")
    with pytest.raises(NotImplementedError, match="memory_format"):
        t.to(memory_format="channels_last")
