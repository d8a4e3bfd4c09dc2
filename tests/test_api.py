"""API behaviour: argnums, has_aux, pytrees, scalars, dtypes, caching and retracing, closures,
Python loops, stop_gradient, custom_vjp, make_ir."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.ir import Function, verify

from helpers import MODES, assert_close, check_grads, strip_locations, tree_allclose


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


# ---------------------------------------------------------------------------------------------
# argnums

def test_argnums_int_selects_one_argument(mode):
    f = lambda x, y: np.sum(x * y ** 2)  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x, y), y ** 2)
    np.testing.assert_allclose(ad.grad(f, argnums=1, mode=mode)(x, y), 2 * x * y)
    np.testing.assert_allclose(ad.grad(f, argnums=-1, mode=mode)(x, y), 2 * x * y)


def test_argnums_tuple_gives_tuple(mode):
    f = lambda x, y, z: np.sum(x * y) * z  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    g = ad.grad(f, argnums=(2, 0), mode=mode)(x, y, 2.0)
    assert isinstance(g, tuple) and len(g) == 2
    assert g[0] == pytest.approx(np.sum(x * y))
    np.testing.assert_allclose(g[1], 2.0 * y)
    g1 = ad.grad(f, argnums=(1,), mode=mode)(x, y, 2.0)
    assert isinstance(g1, tuple) and len(g1) == 1
    np.testing.assert_allclose(g1[0], 2.0 * x)


def test_decorator_forms():
    @ad.grad
    def f(x):
        return x ** 3

    @ad.grad(argnums=1, mode="interpret")
    def h(x, y):
        return x * y ** 2

    assert f(2.0) == pytest.approx(12.0)
    assert h(2.0, 3.0) == pytest.approx(12.0)


def test_non_differentiated_arguments_may_be_integers(mode):
    f = lambda x, n: np.sum(x ** 2) * n  # noqa: E731
    np.testing.assert_allclose(ad.grad(f, mode=mode)(np.array([1.0, 2.0]), 3), [6.0, 12.0])


# ---------------------------------------------------------------------------------------------
# has_aux

def test_has_aux(mode):
    def f(x):
        y = x ** 2
        return np.sum(y), {"y": y, "mean": np.mean(x)}

    x = np.array([1.0, 2.0, 3.0])
    g, aux = ad.grad(f, has_aux=True, mode=mode)(x)
    np.testing.assert_allclose(g, 2 * x)
    np.testing.assert_allclose(aux["y"], x ** 2)
    assert aux["mean"] == pytest.approx(2.0)
    (value, aux2), g2 = ad.value_and_grad(f, has_aux=True, mode=mode)(x)
    assert value == pytest.approx(14.0)
    np.testing.assert_allclose(g2, 2 * x)
    np.testing.assert_allclose(aux2["y"], x ** 2)


def test_aux_does_not_contribute_to_gradient(mode):
    f = lambda x: (np.sum(x), np.sum(x ** 3))  # noqa: E731
    np.testing.assert_allclose(ad.grad(f, has_aux=True, mode=mode)(np.ones(3))[0], np.ones(3))


# ---------------------------------------------------------------------------------------------
# pytrees

def test_pytree_gradients_have_argument_structure(mode):
    def loss(params, x):
        (w1, b1), layers = params["first"], params["rest"]
        h = np.tanh(x @ w1 + b1)
        for w in layers:
            h = h @ w
        return np.sum(h ** 2) + params["scale"] ** 2

    rng = np.random.default_rng(0)
    params = {"first": (rng.standard_normal((3, 4)), rng.standard_normal(4)),
              "rest": [rng.standard_normal((4, 4)), rng.standard_normal((4, 2))],
              "scale": 1.5}
    x = rng.standard_normal((5, 3))
    g = ad.grad(loss, mode=mode)(params, x)
    assert set(g) == {"first", "rest", "scale"}
    assert isinstance(g["first"], tuple) and isinstance(g["rest"], list)
    assert [a.shape for a in g["rest"]] == [(4, 4), (4, 2)]
    assert g["scale"] == pytest.approx(3.0)

    # against finite differences, leaf by leaf
    def loss_flat(w1, b1, r0, r1, s, x):
        return loss({"first": (w1, b1), "rest": [r0, r1], "scale": s}, x)

    flat = [params["first"][0], params["first"][1], params["rest"][0], params["rest"][1],
            np.float64(1.5)]
    check_grads(loss_flat, flat + [x], modes=(mode,), argnums=range(5))
    expected = ad.grad(loss_flat, argnums=tuple(range(5)), mode=mode)(*flat, x)
    tree_allclose(g, {"first": (expected[0], expected[1]), "rest": [expected[2], expected[3]],
                      "scale": expected[4]}, rtol=1e-12)


def test_pytree_nested_tuple_list_dict_argnums_tuple(mode):
    f = lambda a, b: np.sum(a[0] * b["k"][1]) + a[1][0] ** 2  # noqa: E731
    a = (np.array([1.0, 2.0]), [3.0])
    b = {"k": [0.0, np.array([4.0, 5.0])]}
    ga, gb = ad.grad(f, argnums=(0, 1), mode=mode)(a, b)
    np.testing.assert_allclose(ga[0], [4.0, 5.0])
    assert isinstance(ga[1], list) and ga[1][0] == pytest.approx(6.0)
    assert gb["k"][0] == pytest.approx(0.0)
    np.testing.assert_allclose(gb["k"][1], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------
# scalars and dtypes

def test_python_floats_and_0d_arrays_are_scalars(mode):
    g = ad.grad(lambda x: x ** 2, mode=mode)
    for x in (3.0, np.float64(3.0), np.array(3.0)):
        r = g(x)
        assert np.shape(r) == () and r == pytest.approx(6.0)
    assert ad.grad(lambda x, y: x * y, argnums=1, mode=mode)(np.array(2.0), 5.0) == pytest.approx(2.0)


def test_float32_inputs_give_float32_gradients(mode):
    x = np.array([1.0, 2.0, 3.0], np.float32)
    g = ad.grad(lambda x: np.sum(np.exp(x) * 2.0 + x ** 2), mode=mode)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * np.exp(x) + 2 * x, rtol=1e-6)
    v, g = ad.value_and_grad(lambda x: np.mean(x * x), mode=mode)(x)
    assert np.asarray(v).dtype == np.float32 and g.dtype == np.float32
    gs = ad.grad(lambda x: x * 3.0, mode=mode)(np.float32(2.0))
    assert np.asarray(gs).dtype == np.float32


def test_mixed_float32_float64_arguments(mode):
    x32 = np.array([1.0, 2.0], np.float32)
    y64 = np.array([3.0, 4.0])
    gx, gy = ad.grad(lambda x, y: np.sum(x * y), argnums=(0, 1), mode=mode)(x32, y64)
    assert gx.dtype == np.float32 and gy.dtype == np.float64
    np.testing.assert_allclose(gx, y64)
    np.testing.assert_allclose(gy, x32)


# ---------------------------------------------------------------------------------------------
# caching and retracing

def test_same_signature_does_not_retrace(mode):
    count = [0]

    def f(x):
        count[0] += 1
        return np.sum(np.sin(x))

    g = ad.grad(f, mode=mode)
    g(np.ones(3))
    g(np.zeros(3))
    g(np.arange(3.0))
    assert count[0] == 1
    g(np.ones(4))  # new shape: retrace
    assert count[0] == 2
    g(np.ones(3, np.float32))  # new dtype: retrace
    assert count[0] == 3
    g(np.ones(4))
    g(np.ones(3))
    assert count[0] == 3
    np.testing.assert_allclose(g(np.arange(3.0)), np.cos(np.arange(3.0)))


def test_python_scalars_are_cached_by_type_not_value(mode):
    count = [0]

    def f(x, y):
        count[0] += 1
        return x * y

    g = ad.grad(f, mode=mode)
    assert g(2.0, 3.0) == pytest.approx(3.0)
    assert g(5.0, 7.0) == pytest.approx(7.0)
    assert count[0] == 1


def test_static_argnums_retrace_on_value(mode):
    count = [0]

    def f(x, n):
        count[0] += 1
        return np.sum(x ** n)

    g = ad.jit(f, mode=mode, static_argnums=1)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(g(x, 2), 5.0)
    np.testing.assert_allclose(g(x, 2), 5.0)
    np.testing.assert_allclose(g(x, 3), 9.0)
    assert count[0] == 2
    assert ad.make_ir(f, static_argnums=1)(x, 3).count("integer_pow") == 1


def test_jit_results_and_structure(mode):
    f = ad.jit(lambda x, y: {"s": np.sum(x * y), "p": (x + y, x - y)}, mode=mode)
    out = f(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert out["s"] == pytest.approx(11.0)
    np.testing.assert_allclose(out["p"][0], [4.0, 6.0])
    np.testing.assert_allclose(out["p"][1], [-2.0, -2.0])


# ---------------------------------------------------------------------------------------------
# closures, loops, composition

def test_closure_arrays_are_constants_of_make_ir_and_hidden_arguments_of_calls(mode):
    w = np.array([1.0, 2.0, 3.0])
    f = lambda x: np.sum(w * x ** 2)  # noqa: E731
    ir = ad.make_ir(f)(np.ones(3))    # a closed IR: the array's value as a constant
    assert len(ir.args) == 1 and len(ir.consts) == 1
    np.testing.assert_array_equal(list(ir.consts.values())[0], w)
    g = ad.grad(f, mode=mode)
    np.testing.assert_allclose(g(np.ones(3)), 2 * w)
    spec = g.specialize(np.ones(3))   # what runs reads the user's array itself
    assert len(spec.traced.args) == 2 and spec.hidden[0] is w and not spec.traced.consts


def test_a_captured_array_is_one_constant_in_forward_and_adjoint():
    # the adjoint of X @ W reads X again: it must be the same constant, not a second copy
    X = np.arange(12.0).reshape(4, 3)
    f = lambda w: np.sum(np.tanh(X @ w)) + np.sum(X * X) * w[0]  # noqa: E731
    fn = ad.make_ir(ad.grad(f))(np.ones(3))
    big = [v for v in fn.consts.values() if np.shape(v) == X.shape]
    assert len(big) == 1, fn
    np.testing.assert_array_equal(big[0], X)
    fn = ad.grad(f).ir(np.ones(3))   # compiled: one hidden argument, no copy
    assert [a.aval.shape for a in fn.args] == [(3,), X.shape] and not \
        [v for v in fn.consts.values() if np.shape(v) == X.shape], fn


def test_captured_arrays_are_read_on_each_call():
    X = np.arange(3.0)
    f = ad.jit(lambda w: np.sum(X * w))
    assert f(np.ones(3)) == 3.0
    X[:] = 100.0  # numpy's answer (jax.jit would keep the traced value): tests/test_captured.py
    assert f(np.ones(3)) == 300.0


def test_python_loops_unroll(mode):
    def f(x):
        acc = x
        for _ in range(5):
            acc = np.sin(acc)
        return np.sum(acc)

    ir = ad.make_ir(f)(np.ones(2))
    assert ir.count("sin") == 5
    check_grads(f, [np.array([0.3, -0.7])], modes=(mode,))


def test_grad_inside_jit_and_jit_inside_grad(mode):
    f = lambda x: np.sum(x ** 3)  # noqa: E731
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(ad.jit(ad.grad(f, mode=mode), mode=mode)(x), 3 * x ** 2)
    inner = ad.jit(lambda x: x ** 3, mode=mode)
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(inner(x)), mode=mode)(x), 3 * x ** 2)


def test_grad_of_closure_over_outer_traced_value(mode):
    # d/dy [d/dx (x*y)^2 at x=2] = d/dy 2 x y^2 = 4 x y = 24 at y=3
    def outer(y):
        return ad.grad(lambda x: (x * y) ** 2, mode=mode)(2.0)
    assert ad.grad(outer, mode=mode)(3.0) == pytest.approx(24.0)


# ---------------------------------------------------------------------------------------------
# stop_gradient

def test_stop_gradient(mode):
    f = lambda x: np.sum(x * ad.stop_gradient(x))  # noqa: E731
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(ad.grad(f, mode=mode)(x), x)
    assert ad.stop_gradient(x) is x  # identity outside of tracing
    g = ad.grad(lambda x: ad.stop_gradient(x ** 2) * x, mode=mode)(3.0)
    assert g == pytest.approx(9.0)


# ---------------------------------------------------------------------------------------------
# custom_vjp

def test_custom_vjp_rule_is_used_even_when_wrong(mode):
    @ad.custom_vjp
    def f(x):
        return np.sin(x)

    def f_fwd(x):
        return np.sin(x), x

    def f_bwd(x, g):
        return (g * 10.0,)  # deliberately not cos(x)

    f.defvjp(f_fwd, f_bwd)
    x = np.array([0.1, 0.2])
    np.testing.assert_allclose(f(x), np.sin(x))  # plain call runs the function
    np.testing.assert_allclose(ad.jit(f, mode=mode)(x), np.sin(x))
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(f(x)), mode=mode)(x), [10.0, 10.0])
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(f(x) ** 2), mode=mode)(x),
                               20.0 * np.sin(x))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the naive version overflows, on purpose
def test_custom_vjp_numerically_stable_rule(mode):
    # log(1 + exp(x)) overflows its naive gradient exp(x)/(1+exp(x)) -> inf/inf = nan at x=1000
    @ad.custom_vjp
    def softplus(x):
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))

    def fwd(x):
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))), x

    def bwd(x, g):
        return (g * np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))),
                             np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x)))),)

    softplus.defvjp(fwd, bwd)
    x = np.array([-1000.0, -2.0, 0.0, 3.0, 1000.0])
    g = ad.grad(lambda x: np.sum(softplus(x)), mode=mode)(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [0.0, 0.11920292202211755, 0.5, 0.9525741268224334, 1.0],
                               rtol=1e-12, atol=1e-300)
    naive = ad.grad(lambda x: np.sum(np.log(1.0 + np.exp(x))), mode=mode)(x)
    with np.errstate(all="ignore"):
        assert np.isnan(naive[-1])  # what the custom rule avoids


def test_custom_vjp_multiple_arguments_and_pytree_output(mode):
    @ad.custom_vjp
    def f(x, y):
        return {"p": x * y, "s": x + y}

    def fwd(x, y):
        return {"p": x * y, "s": x + y}, (x, y)

    def bwd(res, g):
        x, y = res
        return (g["p"] * y + g["s"], g["p"] * x + g["s"])

    f.defvjp(fwd, bwd)
    loss = lambda x, y: np.sum(f(x, y)["p"] + 2 * f(x, y)["s"])  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    gx, gy = ad.grad(loss, argnums=(0, 1), mode=mode)(x, y)
    np.testing.assert_allclose(gx, y + 2)
    np.testing.assert_allclose(gy, x + 2)


def test_custom_vjp_fwd_may_call_the_function_itself(mode):
    @ad.custom_vjp
    def f(x):
        return np.sin(x)

    f.defvjp(lambda x: (f(x), np.cos(x)), lambda c, g: (g * c,))
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(f(x)), mode=mode)(np.array([0.5])),
                               np.cos([0.5]))


def test_custom_vjp_inside_grad_of_grad():
    @ad.custom_vjp
    def cube(x):
        return x ** 3

    cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3.0 * x ** 2 * g,))
    assert ad.grad(ad.grad(cube))(2.0) == pytest.approx(12.0)
    assert ad.grad(ad.grad(ad.grad(cube)))(2.0) == pytest.approx(6.0)

    @ad.custom_vjp
    def wrong(x):
        return np.sin(x)

    # the rule (not the true derivative) is what gets differentiated again: d/dx 5*x**2 = 10 x
    wrong.defvjp(lambda x: (np.sin(x), x), lambda x, g: (5.0 * x ** 2 * g,))
    assert ad.grad(ad.grad(wrong))(0.3) == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------
# make_ir

def test_make_ir_text_forward():
    def f(x, y):
        return np.sum(np.sin(x) * y)

    ir = ad.make_ir(f)(np.ones(3), np.ones(3))
    assert isinstance(ir, Function)
    assert strip_locations(ir) == (
        "func f(x: f64[3], y: f64[3]) -> f64[]\n"
        "  v0: f64[3] = sin(x)\n"
        "  v1: f64[3] = mul(v0, y)\n"
        "  v2: f64[] = reduce_sum(v1) {axes=(0,)}\n"
        "  return v2")


def test_make_ir_of_grad_shows_adjoint_ir():
    def f(x, y):
        return np.sum(np.sin(x) * y)

    ir = ad.make_ir(ad.grad(f))(np.ones(3), np.ones(3))
    text = str(ir)
    assert text.startswith("func grad_f(x: f64[3], y: f64[3]) -> f64[3]")
    assert "cos(x)" in text and "sin(x)" not in text  # value not returned: forward is pruned
    verify(ir)
    ir2 = ad.make_ir(ad.value_and_grad(f, argnums=(0, 1)))(np.ones(3), np.ones(3))
    assert [str(r.aval) for r in ir2.results] == ["f64[]", "f64[3]", "f64[3]"]
    assert ir2.count("sin") == 1 and ir2.count("cos") == 1


def test_optimized_ir_is_available():
    g = ad.grad(lambda x: np.sum(x * 1.0 + 0.0), mode="interpret")
    ir = g.ir(np.ones(3))
    verify(ir)
    assert ir.count("mul") == 0 and ir.count("add") == 0


def test_errors_do_not_poison_the_cache():
    calls = [0]

    def f(x):
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom")
        return np.sum(x)

    g = ad.grad(f)
    with pytest.raises(RuntimeError):
        g(np.ones(2))
    np.testing.assert_allclose(g(np.ones(2)), [1.0, 1.0])
