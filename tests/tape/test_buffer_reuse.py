"""The backward engine adds a cotangent into a pending one in place when nothing but the
engine holds that array (engine._accumulate). These tests make the engine's arrays reachable
from user code (hooks, retain_grad, autograd.grad on non-leaves, user-given gradients,
returned gradients) on graphs where a value is used several times, so that a buffer reused
behind the user's back would change a value they hold; each value is checked against its
analytic gradient after the whole backward pass, and results must not share memory."""
from __future__ import annotations

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.primitives.elementwise import integer_pow_p
from autodiff_jit.tape import engine

X0 = np.array([0.3, -1.2, 2.0, 0.7])
Y0 = np.array([1.5, 0.4, -0.8, 0.1])


def t64(v):
    return ad.tensor(np.array(v, dtype=np.float64), requires_grad=True)


def test_owned_refcount_is_the_engines_own():
    # an array held only by a list (the pending entry) is accumulated in place; one that
    # anything else holds is not
    a = [np.ones(3)]
    engine._accumulate(a, 0, np.full(3, 2.0))
    first = id(a[0])     # (an id, not a reference: a reference is a second holder)
    engine._accumulate(a, 0, np.full(3, 2.0))
    assert id(a[0]) == first and np.array_equal(a[0], np.full(3, 5.0))
    held = a[0]          # a second holder: the next sum must be a new array
    engine._accumulate(a, 0, np.ones(3))
    assert a[0] is not held and np.array_equal(held, np.full(3, 5.0))
    view_base = np.ones(4)
    b = [view_base[:3]]  # a view: never written
    del view_base
    engine._accumulate(b, 0, np.ones(3))
    assert np.array_equal(b[0], np.full(3, 2.0)) and b[0].base is None


def test_hook_argument_not_overwritten():
    # y = x * x is used three times; the hook on h = y + y sees the cotangent that add's rule
    # passes on (the same array) to y, where the other two uses are then added
    seen = []
    x = t64(X0)
    y = x * x
    h = y + y
    h.register_hook(lambda g: seen.append(g))
    loss = (h.sum() + (y * 3.0).sum() + (y * y).sum())
    loss.backward()
    np.testing.assert_array_equal(seen[0].numpy(), np.ones(4))
    # dloss/dy = 2 + 3 + 2y ; dy/dx = 2x
    np.testing.assert_allclose(x.grad.numpy(), (5.0 + 2 * X0 ** 2) * 2 * X0, rtol=1e-14)


def test_hook_result_kept_by_user_not_overwritten():
    keep = []

    def hook(g):
        r = g * 1.0
        keep.append(r)
        return r
    x = t64(X0)
    y = x * 2.0
    z = y + y          # add's rule gives y the hook's returned array twice
    z.register_hook(hook)
    (z.sum() + (y * y).sum()).backward()
    np.testing.assert_array_equal(keep[0].numpy(), np.ones(4))
    np.testing.assert_allclose(x.grad.numpy(), (2.0 + 2 * 2 * X0) * 2.0, rtol=1e-14)


def test_retained_grads_keep_their_values():
    x = t64(X0)
    y = x * 1.5
    y.retain_grad()
    s = y + y
    s.retain_grad()
    loss = (s * s).sum() + (y * y * y).sum()
    loss.backward()
    np.testing.assert_allclose(s.grad.numpy(), 2 * (2 * 1.5 * X0), rtol=1e-14)
    gy = 2 * s.grad.numpy() + 3 * (1.5 * X0) ** 2
    np.testing.assert_allclose(y.grad.numpy(), gy, rtol=1e-14)
    np.testing.assert_allclose(x.grad.numpy(), 1.5 * gy, rtol=1e-14)
    assert not np.shares_memory(y.grad.numpy(), s.grad.numpy())
    assert not np.shares_memory(y.grad.numpy(), x.grad.numpy())


def test_autograd_grad_on_non_leaves():
    x = t64(X0)
    y = x * 2.0
    w = y + y
    loss = (w * w).sum() + (y * y).sum()
    gw, gy, gx = ad.autograd.grad(loss, (w, y, x))
    np.testing.assert_allclose(gw.numpy(), 2 * 4 * X0, rtol=1e-14)
    np.testing.assert_allclose(gy.numpy(), 2 * gw.numpy() + 2 * 2 * X0, rtol=1e-14)
    np.testing.assert_allclose(gx.numpy(), 2 * gy.numpy(), rtol=1e-14)


def test_user_gradient_not_modified():
    g = np.array([1.0, 2.0, 3.0, 4.0])
    g_copy = g.copy()
    x = t64(X0)
    y = x * 1.0
    out = y + y + y * 2.0
    out.backward(g)
    np.testing.assert_array_equal(g, g_copy)
    np.testing.assert_allclose(x.grad.numpy(), 4 * g, rtol=1e-14)


def test_leaf_used_many_times_and_grad_accumulates_across_calls():
    x = t64(X0)
    for _ in range(2):
        loss = (x * x).sum() + (x * 3.0).sum() + np.exp(x).sum()
        loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * X0 + 3 + np.exp(X0)), rtol=1e-14)


def test_forward_values_unchanged_by_backward():
    x = t64(X0)
    y = np.exp(x)
    z = y + y
    yv, zv = y.detach().numpy().copy(), z.detach().numpy().copy()
    (z * y).sum().backward(retain_graph=True)
    np.testing.assert_array_equal(y.detach().numpy(), yv)
    np.testing.assert_array_equal(z.detach().numpy(), zv)
    first = x.grad.numpy().copy()
    x.grad = None
    (z * y).sum().backward()   # the retained graph gives the same gradient again
    np.testing.assert_array_equal(x.grad.numpy(), first)


@pytest.mark.parametrize("f", [
    lambda x, y: np.sum(np.exp(x + y)),
    lambda x, y: np.sum(x + y) + np.sum((x + y) ** 2),
    lambda x, y: np.sum(np.tanh(x * y) + x * y),
], ids=["shared-add", "add-twice", "mul-twice"])
def test_grad_results_do_not_share_memory(f):
    gx, gy = ad.grad(f, argnums=(0, 1), mode="tape")(X0, Y0)
    cx, cy = ad.grad(f, argnums=(0, 1))(X0, Y0)
    np.testing.assert_allclose(gx, cx, rtol=1e-12)
    np.testing.assert_allclose(gy, cy, rtol=1e-12)
    assert not np.shares_memory(gx, gy)
    gx += 1.0   # writing one result leaves the other alone
    np.testing.assert_allclose(gy, cy, rtol=1e-12)


def test_tree_argument_leaves_do_not_share_memory():
    f = lambda p: np.sum(np.exp(p["a"] + p["b"]))   # noqa: E731
    g = ad.grad(f, mode="tape")({"a": X0, "b": Y0})
    assert not np.shares_memory(g["a"], g["b"])
    np.testing.assert_allclose(g["a"], np.exp(X0 + Y0), rtol=1e-14)


def test_gradient_of_a_large_sum_is_a_writable_array():
    # the rule broadcasts the cotangent back as a read-only view for large inputs
    n = 1 << 15
    g = ad.grad(lambda x: np.sum(x), mode="tape")(np.zeros(n))
    assert g.flags.writeable and g.strides == (8,)
    g[0] = 5.0
    np.testing.assert_array_equal(g[1:], np.ones(n - 1))


@pytest.mark.parametrize("n", [9, 5000])   # below and above elementwise._FRESH_MIN
@pytest.mark.parametrize("y", [2, 3])
def test_integer_pow_rule_writes_only_its_own_buffer(n, y):
    # x ** y's VJP multiplies g into its derivative buffer (y x^(y-1), fresh) on large arrays:
    # the input, the saved output and the upstream cotangent keep their values
    x = np.linspace(-1.5, 2.0, n)
    g = np.cos(x)
    keep_x, keep_g = x.copy(), g.copy()
    out = x ** y
    keep_out = out.copy()
    (ct,) = integer_pow_p.vjp(g, out, x, y=y)
    np.testing.assert_array_equal(ct, g * (2.0 * x) if y == 2 else g * (3.0 * x ** 2))
    assert np.array_equal(x, keep_x) and np.array_equal(g, keep_g) and \
        np.array_equal(out, keep_out)
    assert not any(np.shares_memory(ct, v) for v in (x, g, out))
    # and through the tape: the gradient of sum(x ** y), exactly y x^(y-1)
    got = ad.grad(lambda v: np.sum(v ** y), mode="tape")(x)
    np.testing.assert_array_equal(got, 2.0 * x if y == 2 else 3.0 * (x ** 2))
    assert np.array_equal(x, keep_x)


def test_doubled_is_in_place_only_for_an_unshared_cotangent():
    # x * x and x + x send one array to both inputs (one Tensor): the engine doubles it, in
    # place only when the rule's result is held by nothing else
    fresh = np.arange(3.0)
    fid = id(fresh)
    cts = (fresh, fresh)
    del fresh
    out = engine._doubled(cts)
    assert id(out) == fid and np.array_equal(out, [0.0, 2.0, 4.0])
    held = np.arange(3.0)
    out = engine._doubled((held, held))
    assert out is not held and np.array_equal(held, [0.0, 1.0, 2.0])
    assert np.array_equal(out, [0.0, 2.0, 4.0])


def test_square_and_self_sum_gradients_with_hooks():
    # x * x (a fresh g x per input) and y + y (the pass-through g, seen by a hook) next to
    # other uses of x and y: every value against the analytic gradient
    seen = []
    x = t64(np.linspace(-2.0, 3.0, 5000))
    y = np.sin(x)
    s = y + y
    s.register_hook(lambda g: seen.append(g))
    loss = (x * x).sum() + (s * 0.5).sum() + (3.0 * x).sum()
    loss.backward()
    xv = np.linspace(-2.0, 3.0, 5000)
    np.testing.assert_array_equal(seen[0].numpy(), np.full(5000, 0.5))
    np.testing.assert_allclose(x.grad.numpy(), 2 * xv + np.cos(xv) + 3.0, rtol=1e-14,
                               atol=1e-14)
    g = ad.grad(lambda x: np.sum(x * x) + np.sum(np.tanh(x) + np.tanh(x)), mode="tape")(xv)
    np.testing.assert_allclose(g, 2 * xv + 2 * (1 - np.tanh(xv) ** 2), rtol=1e-14, atol=1e-14)


def test_shared_fresh_cotangent_of_two_tensors_not_written_into():
    # a * b with b a detached copy of a (one array): mul's rule gives both inputs the same
    # fresh g b; each input already holds a read-only broadcast gradient (of a large sum), so
    # the engine would add into the new cotangent, which it must not do while the second
    # input still needs it
    v = np.linspace(-1.0, 2.0, 20000)
    a = t64(v)
    b = a.detach().requires_grad_()
    loss = (a * b).sum() + a.sum() + b.sum()
    loss.backward()
    np.testing.assert_array_equal(a.grad.numpy(), v + 1.0)
    np.testing.assert_array_equal(b.grad.numpy(), v + 1.0)


def test_fresh_cotangent_takes_a_pending_view():
    # x's first cotangent is a transposed view (of the einsum's rule), the second a fresh
    # product: the sum is the analytic gradient, and the returned gradient owns its memory
    rng = np.random.default_rng(3)
    L = rng.standard_normal((5, 2, 2))
    xv = rng.standard_normal((1000, 5, 2))
    q = rng.standard_normal((1, 5, 2))
    f = lambda x: np.sum(np.einsum("kij,nkj->nki", L, x) * 2.0 + q * x)  # noqa: E731
    g = ad.grad(f, mode="tape")(xv)
    want = np.broadcast_to(2.0 * np.sum(L, axis=1)[None] + q, xv.shape)
    np.testing.assert_allclose(g, want, rtol=1e-14, atol=1e-14)
    assert g.flags.writeable


def test_slices_added_into_the_pending_cotangent():
    # the columns of one (n, 4) tensor used by several slices (bundle adjustment's camera
    # columns): the second and later slices add into the engine's pending cotangent
    # (slice's vjp_add); hooks, retained grads and a leaf's gradient keep their values
    rng = np.random.default_rng(0)
    a0 = rng.standard_normal((6, 4))
    a = ad.tensor(a0, requires_grad=True)
    c = a * 2.0
    c.retain_grad()
    seen = []
    c.register_hook(lambda g: seen.append(g))
    loss = (c[:, 0:2] * c[:, 0:2]).sum() + (3.0 * c[:, 1]).sum() + c[::2, 3].sum() + \
        (a[:, 2] * a[:, 2]).sum() + a[1:, 0].sum()
    loss.backward()
    gc = np.zeros((6, 4))
    gc[:, 0:2] += 2 * 2.0 * a0[:, 0:2]
    gc[:, 1] += 3.0
    gc[::2, 3] += 1.0
    ga = 2.0 * gc
    ga[:, 2] += 2 * a0[:, 2]
    ga[1:, 0] += 1.0
    np.testing.assert_allclose(c.grad.numpy(), gc, rtol=1e-14)
    np.testing.assert_allclose(seen[0].numpy(), gc, rtol=1e-14)
    assert not np.shares_memory(seen[0].numpy(), c.grad.numpy())
    np.testing.assert_allclose(a.grad.numpy(), ga, rtol=1e-14)
    # a second backward accumulates into .grad as before
    a.grad = None
    x = ad.tensor(a0, requires_grad=True)
    for _ in range(2):
        (x[:, 0].sum() + x[:, 0:3].sum() * 2.0).backward()
    expect = np.zeros((6, 4))
    expect[:, 0] += 1.0
    expect[:, 0:3] += 2.0
    np.testing.assert_allclose(x.grad.numpy(), 2 * expect, rtol=1e-14)


def test_slice_add_leaves_a_held_cotangent_alone():
    # a pending cotangent that something else holds (here: autograd.grad's target y, whose
    # gradient the caller receives) is not written by a later slice's rule
    x = t64(X0)
    y = x * 1.0
    gy, gx = ad.autograd.grad((y * y).sum() + y[1:3].sum(), (y, x))
    expect = 2 * X0
    expect[1:3] += 1.0
    np.testing.assert_allclose(gy.numpy(), expect, rtol=1e-14)
    np.testing.assert_allclose(gx.numpy(), expect, rtol=1e-14)


def test_slices_added_into_the_pending_cotangent_give_the_signs_of_zeros_a_sum_gives():
    # each slice's cotangent is g scattered into zeros, so adding it puts +0.0 in the other
    # entries: a -0.0 from another slice there becomes +0.0 (as interpret and compiled mode,
    # and torch's slice backward, give); entries every slice covers keep the raw sum
    a0 = np.arange(24.0).reshape(6, 4) - 5.0
    for leaf_slices in (False, True):
        a = ad.tensor(a0, requires_grad=True)
        c = a if leaf_slices else a * 2.0
        if not leaf_slices:
            c.retain_grad()
        loss = (c[:, 0] * -0.0).sum() + (c[:, 1] * 0.0).sum() + (c[:, 0:2] * -0.0).sum()
        loss.backward()
        got = a.grad.numpy() if leaf_slices else c.grad.numpy()
        assert not np.signbit(got).any()
        # three slices that all cover column 0: its -0.0 terms sum to -0.0 there
        a = ad.tensor(a0, requires_grad=True)
        c = a if leaf_slices else a * 2.0
        if not leaf_slices:
            c.retain_grad()
        loss = (c[:, 0] * -0.0).sum() + (c[:, 0:2] * -0.0).sum() + (c[:, :1] * -0.0).sum()
        loss.backward()
        got = a.grad.numpy() if leaf_slices else c.grad.numpy()
        want = np.zeros((6, 4))
        want[:, 0] = -0.0
        assert np.array_equal(np.signbit(got), np.signbit(want)), leaf_slices

        def f(x):
            return np.sum(x[:, 0] * -0.0) + np.sum(x[:, 0:2] * -0.0) + np.sum(x[:, :1] * -0.0)
        for mode in ("interpret", "compiled"):
            assert np.array_equal(np.signbit(ad.grad(f, mode=mode)(a0)), np.signbit(want))


@pytest.mark.parametrize("slices,common", [
    (lambda x: (x[1:], x[:-1]), True),                          # boxes that overlap (1-D)
    (lambda x: (x[1:, :3], x[:-1, 1:], x[2:4, :]), True),       # boxes that overlap (2-D)
    (lambda x: (x[::2], x[1:]), True),                          # strided: the mask path
    (lambda x: (x[::-1], x[2:]), True),                         # a negative step
    (lambda x: (x[:, 0], x[:, 2]), False),                      # apart
    (lambda x: (x[1:3], x[1:3]), True),                         # the same slice twice
])
def test_overlapping_slices_give_the_interpreters_signed_zeros(slices, common):
    # every slice's cotangent is -0.0: the entries all slices cover sum -0.0 terms and stay
    # -0.0, the others get +0.0 from some slice's zeros, as in the other modes
    x0 = np.linspace(-2.0, 2.0, 30).reshape(6, 5)

    def f(x):
        parts = slices(x)
        total = np.sum(parts[0] * -0.0)
        for p in parts[1:]:
            total = total + np.sum(p * -0.0)
        return total
    want = ad.grad(f, mode="interpret")(x0)
    assert np.signbit(want).any() == common and not np.signbit(want).all()
    for mode in ("tape", "compiled"):
        got = ad.grad(f, mode=mode)(x0)
        assert np.array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want)), mode


@pytest.mark.parametrize("start,stop", [(1, -1), (5, -6), (1, -25)])
def test_two_slices_of_a_vector_give_the_interpreters_signed_zeros(start, stop):
    # Rosenbrock's x[1:] and x[:-1]: the second slice adds into the first one's pending
    # cotangent (vjp_add); the entries it leaves get +0.0 there (a few read in Python, more
    # as slabs, most of the vector at the end of the walk)
    x0 = np.linspace(-2.0, 2.0, 60)

    def f(x):
        return np.sum(x[start:] * -0.0) + np.sum(x[:stop] * -0.0)
    want = ad.grad(f, mode="interpret")(x0)
    assert np.signbit(want).any() and not np.signbit(want).all()
    for mode in ("tape", "compiled"):
        got = ad.grad(f, mode=mode)(x0)
        assert np.array_equal(np.signbit(got), np.signbit(want)), mode
