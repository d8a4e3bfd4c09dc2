"""Structured control flow: fori_loop, while_loop, cond as region ops (issue 7)."""
import numpy as np
import pytest

import autodiff_jit as ad
import autodiff_jit.backend.lower_control  # noqa: F401  (registers the region-op emitters)
from autodiff_jit.control import cond, fori_loop, while_loop
from autodiff_jit.interpret import run
from autodiff_jit.ir import parse, verify
from autodiff_jit.passes import PIPELINE, optimize
from autodiff_jit.passes.licm import licm, loop_passes, merge_recorded_loops, prune_scan

MODES = ["compiled", "interpret", "tape"]
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # no interpreter fallback
LOOP_PIPELINE = PIPELINE[:2] + (("merge_loops", merge_recorded_loops), ("licm", licm),
                                ("prune_scan", prune_scan)) + PIPELINE[2:]


def fd(f, x, eps=1e-6):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


def n_eqns(fn):
    return sum(1 for _ in fn.all_eqns())


# ---------------------------------------------------------------------------------------------
# the functions of the issue

def scalar_map(x):
    return fori_loop(0, 100, lambda i, x: 0.9 * x + np.sin(x), x)


def scalar_map_grad_by_hand(x):
    g = 1.0
    for _ in range(100):
        g *= 0.9 + np.cos(x)
        x = 0.9 * x + np.sin(x)
    return g


def euler(k, y0, n=1000, checkpoint=None):
    h = 1.0 / n
    return fori_loop(0, n, lambda i, y: y - h * k * y, y0, checkpoint=checkpoint)


def euler_grads_exact(k, y0, n=1000):
    h = 1.0 / n
    q = 1 - h * k
    return y0 * n * q ** (n - 1) * (-h), q ** n


def newton_sqrt(a):
    return while_loop(lambda x: np.abs(x * x - a) > 1e-12 * a, lambda x: 0.5 * (x + a / x), a)


def piecewise(x):
    # x^3 below 1, 2 sin(x - 1) + 1 above: continuous at 1, with different slopes
    return cond(x < 1.0, lambda x: x ** 3, lambda x: 2.0 * np.sin(x - 1.0) + 1.0, x)


def nested(x):
    def outer(i, c):
        return fori_loop(0, 3, lambda j, d: d * np.cos(d) + 0.1 * i + x * j, c)
    return fori_loop(0, 4, outer, x)


def nested_unrolled(x):
    c = x
    for i in range(4):
        for j in range(3):
            c = c * np.cos(c) + 0.1 * i + x * j
    return c


# ---------------------------------------------------------------------------------------------
# plain numpy: just Python

def test_plain_numpy_runs_python():
    assert fori_loop(0, 5, lambda i, c: c + i, 0) == 10
    assert while_loop(lambda c: c < 10, lambda c: c * 2, 1) == 16
    assert cond(True, lambda a: a + 1, lambda a: a - 1, 5) == 6
    assert cond(np.bool_(False), lambda a: a + 1, lambda a: a - 1, 5) == 4
    # Python control flow on values is fine when nothing is traced
    assert fori_loop(0, 4, lambda i, c: c + 1 if c < 2 else c, 0) == 2


@pytest.mark.parametrize("mode", MODES)
def test_scalar_map(mode):
    x = 0.3
    assert np.isclose(ad.jit(scalar_map, mode=mode)(x) if mode != "tape" else scalar_map(x),
                      scalar_map(x))
    g = ad.grad(scalar_map, mode=mode)(x)
    assert np.isclose(g, scalar_map_grad_by_hand(x), rtol=1e-10, atol=1e-300)
    # fewer iterations: a gradient far from zero, against finite differences too
    f20 = lambda x: fori_loop(0, 4, lambda i, x: 0.9 * x + np.sin(x), x)  # noqa: E731
    g20 = ad.grad(f20, mode=mode)(x)
    assert abs(g20) > 1e-6
    assert np.isclose(g20, fd(f20, x), rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_euler_gradient_matches_discrete_solution(mode):
    k, y0 = 2.0, 1.5
    gk, gy0 = ad.grad(euler, argnums=(0, 1), mode=mode)(k, y0)
    ek, ey0 = euler_grads_exact(k, y0)
    assert np.isclose(gk, ek, rtol=1e-10) and np.isclose(gy0, ey0, rtol=1e-10)
    assert np.isclose(gk, fd(lambda k: euler(k, y0), k), rtol=1e-6)
    assert np.isclose(ad.jit(euler, mode=mode if mode != "tape" else "interpret")(k, y0),
                      y0 * (1 - k / 1000) ** 1000)


@pytest.mark.parametrize("mode", MODES)
def test_newton_while_loop_gradient(mode):
    for a in (2.0, 9.0, 0.3):
        assert np.isclose(ad.grad(newton_sqrt, mode=mode)(a), 1 / (2 * np.sqrt(a)), rtol=1e-9)
    assert np.isclose(newton_sqrt(2.0), np.sqrt(2.0))


@pytest.mark.parametrize("mode", MODES)
def test_cond_both_sides(mode):
    g = ad.grad(piecewise, mode=mode)
    for x in (0.2, 0.7, 0.999):
        assert np.isclose(g(x), 3 * x ** 2)
        assert np.isclose(g(x), fd(piecewise, x), rtol=1e-6)
    for x in (1.001, 1.5, 3.0):
        assert np.isclose(g(x), 2 * np.cos(x - 1.0))
        assert np.isclose(g(x), fd(piecewise, x), rtol=1e-6)
    assert np.isclose(ad.jit(piecewise, mode="interpret")(0.5), 0.125)
    assert np.isclose(ad.jit(piecewise, mode="interpret")(2.0), 2 * np.sin(1.0) + 1)


@pytest.mark.parametrize("mode", MODES)
def test_nested_loops(mode):
    x = 0.7
    assert np.isclose(ad.jit(nested, mode="interpret")(x), nested_unrolled(x))
    assert np.isclose(ad.grad(nested, mode=mode)(x), ad.grad(nested_unrolled, mode=mode)(x),
                      rtol=1e-12)
    assert np.isclose(ad.grad(nested, mode=mode)(x), fd(nested, x), rtol=1e-6)


@pytest.mark.parametrize("mode", ["compiled", "interpret"])
def test_second_order(mode):
    gg = ad.grad(ad.grad(nested, mode=mode), mode=mode)
    ref = ad.grad(ad.grad(nested_unrolled, mode=mode), mode=mode)
    assert np.isclose(gg(0.7), ref(0.7), rtol=1e-10)
    # d2/da2 sqrt(a) = -a^(-3/2) / 4, through the while loop's reverse scan
    assert np.isclose(ad.grad(ad.grad(newton_sqrt, mode=mode), mode=mode)(2.0),
                      -0.25 * 2.0 ** -1.5, rtol=1e-8)
    assert np.isclose(ad.grad(ad.grad(piecewise, mode=mode), mode=mode)(0.5), 3.0)
    assert np.isclose(ad.grad(ad.grad(piecewise, mode=mode), mode=mode)(2.0), -2 * np.sin(1.0))
    # Euler: d2y/dk2 = y0 n (n-1) q^(n-2) h^2
    k, y0, n = 2.0, 1.5, 200
    h, q = 1.0 / n, 1 - 2.0 / n
    g2 = ad.grad(ad.grad(lambda k: euler(k, y0, n), mode=mode), mode=mode)(k)
    assert np.isclose(g2, y0 * n * (n - 1) * q ** (n - 2) * h * h, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# pytrees, closures, integers, vectors

@pytest.mark.parametrize("mode", MODES)
def test_pytree_carry_and_closures(mode):
    w = np.array([0.5, -0.3, 0.8])

    def f(x, s):
        def body(i, c):
            v, acc, n = c["v"], c["acc"], c["n"]
            v = np.tanh(v * s + w * i)
            return {"v": v, "acc": acc + np.sum(v ** 2), "n": n + 1}
        out = fori_loop(0, 6, body, {"v": x, "acc": 0.0, "n": 0})
        return out["acc"] * out["n"]

    def f_py(x, s):
        v, acc = x, 0.0
        for i in range(6):
            v = np.tanh(v * s + w * i)
            acc = acc + np.sum(v ** 2)
        return acc * 6

    x = np.array([0.1, 0.2, -0.4])
    gx, gs = ad.grad(f, argnums=(0, 1), mode=mode)(x, 0.9)
    rx, rs = ad.grad(f_py, argnums=(0, 1), mode="interpret")(x, 0.9)
    np.testing.assert_allclose(gx, rx, rtol=1e-12)
    assert np.isclose(gs, rs, rtol=1e-12)


def test_body_closing_over_traced_value_with_plain_init():
    # init is a constant but the body closes over the differentiated argument: still one op
    f = lambda x: fori_loop(0, 50, lambda i, c: c * 0.99 + x, 1.0)  # noqa: E731
    ir = ad.make_ir(f)(0.5)
    assert ir.count("scan") == 1 and n_eqns(ir) < 8
    assert np.isclose(ad.grad(f, mode="interpret")(0.5), sum(0.99 ** j for j in range(50)))


@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
def test_traced_bounds_become_while(mode):
    def f(x, n):
        return fori_loop(0, n, lambda i, c: c * x + 1.0, 1.0)
    x = 0.8
    g = ad.grad(f, mode=mode)(x, np.int64(5))
    # c_5 = x^5 + x^4 + ... + 1
    assert np.isclose(g, sum(j * x ** (j - 1) for j in range(1, 6)))
    if mode == "interpret":
        assert ad.make_ir(f)(x, np.int64(5)).count("while") == 1


def test_index_is_usable_in_body():
    f = lambda x: fori_loop(2, 7, lambda i, c: c + x * i, 0.0)  # noqa: E731
    assert np.isclose(ad.jit(f, mode="interpret")(1.0), 2 + 3 + 4 + 5 + 6)
    assert np.isclose(ad.grad(f, mode="interpret")(1.0), 20.0)


def test_cond_with_pytrees_and_captures():
    y = np.array([1.0, 2.0])

    def f(x, p):
        a, b = cond(p > 0, lambda t: (t[0] * y, t[1] + 1.0), lambda t: (t[0] - y, t[1] * np.sum(x)),
                    (x, p))
        return np.sum(a) * b

    for p in (0.5, -0.5):
        g = ad.grad(f, argnums=(0, 1), mode="interpret")(np.array([0.3, 0.4]), p)
        gt = ad.grad(f, argnums=(0, 1), mode="tape")(np.array([0.3, 0.4]), p)
        np.testing.assert_allclose(g[0], gt[0])
        assert np.isclose(g[1], gt[1])


# ---------------------------------------------------------------------------------------------
# IR: O(1) size, printing, parsing, verification, passes

def test_ir_is_constant_in_trip_count():
    sizes = [n_eqns(ad.make_ir(lambda k, y0: euler(k, y0, n))(2.0, 1.5)) for n in (10, 1000, 10**5)]
    gsizes = [n_eqns(ad.make_ir(ad.grad(lambda k, y0: euler(k, y0, n), argnums=(0, 1)))(2.0, 1.5))
              for n in (10, 1000, 10**5)]
    assert len(set(sizes)) == 1 and len(set(gsizes)) == 1
    assert sizes[0] <= 5 and gsizes[0] <= 20


def test_print_parse_roundtrip_with_regions():
    for fun, arg in [(ad.grad(lambda k: euler(k, 1.5, 100, checkpoint=10)), 2.0),
                     (ad.grad(newton_sqrt), 2.0), (ad.grad(piecewise), 0.5),
                     (ad.value_and_grad(nested), 0.7)]:
        ir = ad.make_ir(fun)(arg)
        text = ir.to_text()
        assert "body:" in text or "true:" in text
        back = verify(parse(text))
        # the text of the parsed function is a fixed point, and it computes the same thing
        assert verify(parse(back.to_text())).to_text() == back.to_text()
        a = [np.float64(arg)]
        for x, y in zip(run(ir, a), run(back, a)):
            np.testing.assert_allclose(x, y, rtol=1e-14)


def test_verifier_rejects_bad_carry():
    from autodiff_jit.errors import IRError
    text = ad.make_ir(scalar_map)(0.3).to_text().replace("-> f64[]\n        v", "-> f64[]\n        v", 1)
    fn = parse(text)
    body = fn.eqns[0].params["body"]
    body.results = [body.args[0]]  # returns the i64 index as the f64 carry
    with pytest.raises(IRError, match="carry"):
        verify(fn)


def test_passes_inside_regions_and_licm():
    def f(x, w):
        def body(i, c):
            a = np.exp(w) * 2.0 + np.exp(w) * 2.0   # invariant, and a CSE candidate
            return c * np.cos(a) + np.sin(c) * x
        return fori_loop(0, 30, body, x) ** 2

    vg = ad.value_and_grad(f, argnums=(0, 1))
    ir = ad.make_ir(vg)(0.3, 0.2)
    opt = optimize(ir, LOOP_PIPELINE)
    args = [np.float64(0.3), np.float64(0.2)]
    for a, b in zip(run(ir, args), run(opt, args)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # exp/cos of the invariant are outside every loop body, once
    for e in opt.eqns:
        for r in e.regions:
            names = {x.prim.name for x in r.all_eqns()}
            assert "exp" not in names
    assert opt.count("exp") == 1
    # the forward loop runs once: the plain run and the recording re-run were fused
    assert sum(1 for e in opt.eqns if e.prim.name == "scan" and not e.params["reverse"]) == 1


def test_licm_hoists_out_of_nested_loops():
    def f(x, w):
        def outer(i, c):
            return fori_loop(0, 3, lambda j, d: d + np.sin(w) * j + c * 0.0 + np.cos(w * w), c)
        return fori_loop(0, 4, outer, x)
    ir = ad.make_ir(f)(0.3, 0.2)
    opt = loop_passes(ir)
    verify(opt)
    assert sum(1 for e in opt.eqns if e.prim.name in ("sin", "cos")) == 2
    args = [np.float64(0.3), np.float64(0.2)]
    np.testing.assert_allclose(run(ir, args), run(opt, args))


def test_merge_fuses_while_recording():
    def f(a):
        return newton_sqrt(a) * 3.0
    ir = ad.make_ir(ad.value_and_grad(f))(2.0)
    assert ir.count("while") == 2
    opt = optimize(ir, LOOP_PIPELINE)
    assert opt.count("while") == 1
    np.testing.assert_allclose(run(opt, [np.float64(2.0)]), run(ir, [np.float64(2.0)]))


def test_dead_carry_pruned():
    def f(x, c):   # c is a constant argument: its cotangent accumulator is dead
        return fori_loop(0, 5, lambda i, y: y * c + x, x)
    ir = ad.make_ir(ad.grad(f))(0.3, 0.5)
    opt = optimize(ir, LOOP_PIPELINE)
    rev = [e for e in opt.eqns if e.prim.name == "scan" and e.params["reverse"]][0]
    assert rev.params["n_carry"] == 2  # ct of y, accumulated ct of x (not of c)
    np.testing.assert_allclose(run(opt, [np.float64(0.3), np.float64(0.5)]),
                               run(ir, [np.float64(0.3), np.float64(0.5)]))


# ---------------------------------------------------------------------------------------------
# storage: only what the adjoint needs; checkpointing

def test_stores_only_needed_carries():
    def linear(x):  # the adjoint of y <- 0.5 y + x needs no stored y
        return fori_loop(0, 100, lambda i, y: 0.5 * y + x, x)
    ir = ad.make_ir(ad.grad(linear))(1.0)
    assert not any(len(o.shape) > 0 for e in ir.all_eqns() for o in e.outputs)

    def mixed(x):  # carry (a, b): only a's value matters to the adjoint
        def body(i, c):
            a, b = c
            return np.sin(a), b + a
        return np.sum(fori_loop(0, 10, body, (x, x))[1])
    ir = ad.make_ir(ad.grad(mixed))(0.5)
    stacked = [o for e in ir.all_eqns() for o in e.outputs if o.shape == (10,)]
    assert len(stacked) == 1


@pytest.mark.parametrize("ck", [7, 10, 31, True, 999])
def test_checkpoint_same_gradient(ck):
    ref = ad.grad(euler, argnums=(0, 1), mode="interpret")(2.0, 1.5)
    got = ad.grad(lambda k, y0: euler(k, y0, checkpoint=ck), argnums=(0, 1), mode="interpret")(2.0, 1.5)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert np.isclose(ad.jit(lambda k: euler(k, 1.5, checkpoint=ck), mode="interpret")(2.0),
                      euler(2.0, 1.5))


def test_checkpoint_stores_sqrt_n():
    ir = ad.make_ir(ad.grad(lambda k: euler(k, 1.5, 10000, checkpoint=True)))(2.0)
    rows = sorted({o.shape[0] for e in ir.all_eqns() for o in e.outputs if o.shape})
    assert rows == [100]


# ---------------------------------------------------------------------------------------------
# errors

def test_carry_shape_change_is_type_error():
    f = lambda x: fori_loop(0, 3, lambda i, c: np.concatenate([c, c]), x)  # noqa: E731
    with pytest.raises(TypeError, match=r"f64\[2\].*f64\[4\]"):
        ad.jit(f, mode="interpret")(np.ones(2))


def test_carry_dtype_change_is_type_error():
    f = lambda x: while_loop(lambda c: c < 3, lambda c: c + 0.5, x)  # noqa: E731
    with pytest.raises(TypeError, match=r"i64\[\].*f64\[\]"):
        ad.jit(f, mode="interpret")(np.int64(1))


def test_cond_branch_mismatch_is_type_error():
    f = lambda x: cond(x > 0, lambda x: x, lambda x: np.stack([x, x]), x)  # noqa: E731
    with pytest.raises(TypeError, match=r"true_fun.*f64\[\].*false_fun.*f64\[2\]"):
        ad.jit(f, mode="interpret")(1.0)


def test_predicate_errors():
    with pytest.raises(TypeError, match="bool scalar"):
        ad.jit(lambda x: cond(x, lambda x: x, lambda x: -x, x), mode="interpret")(1.0)
    with pytest.raises(TypeError, match="bool scalar"):
        ad.jit(lambda x: cond(x > 0, lambda x: x, lambda x: -x, x), mode="interpret")(np.ones(2))
    with pytest.raises(TypeError, match="bool scalar"):
        cond(np.array([True, False]), lambda: 1, lambda: 2)
    with pytest.raises(TypeError, match="bool scalar"):
        cond(1.0, lambda: 1, lambda: 2)
    with pytest.raises(TypeError, match="bool scalar"):
        ad.jit(lambda x: while_loop(lambda c: c, lambda c: c - 1.0, x), mode="interpret")(3.0)


def test_while_max_steps_error():
    def f(a):
        return while_loop(lambda c: c[0] < a, lambda c: (c[0] + 1.0, c[1] * 1.01), (0.0, a),
                          max_steps=10)[1]
    assert np.isclose(ad.jit(f, mode="interpret")(50.0), 50 * 1.01 ** 50)  # forward: unbounded
    assert np.isclose(ad.grad(f, mode="interpret")(5.0), 1.01 ** 5)
    with pytest.raises(RuntimeError, match="max_steps=10"):
        ad.grad(f, mode="interpret")(50.0)


def test_python_control_flow_on_tracer_points_to_cond():
    from autodiff_jit.errors import TracingError
    with pytest.raises(TracingError, match="cond"):
        ad.grad(lambda x: x if x > 0 else -x, convert=False)(1.0)


def test_compiled_loops_are_real_loops():
    sizes = []
    for n in (2 * 10**4, 10**5):  # (both big enough for a heap arena: same entry ABI)
        text = ad.grad(lambda k, y0: euler(k, y0, n), argnums=(0, 1)).llvm_ir(2.0, 1.5)
        assert "scan.head" in text
        sizes.append(len(text.splitlines()))
    assert sizes[0] == sizes[1]


def test_compiled_while_overflow_raises():
    def f(a):
        return while_loop(lambda c: c[0] < a, lambda c: (c[0] + 1.0, c[1] * 1.01), (0.0, a),
                          max_steps=10)[1]
    assert np.isclose(ad.grad(f)(5.0), 1.01 ** 5)
    with pytest.raises(RuntimeError, match="max_steps=10"):   # as the interpreter (was: NaN)
        ad.grad(f)(50.0)


# ---------------------------------------------------------------------------------------------
# forward mode: JVP rules of scan / while / cond (jvp, jacfwd, hessian = jacfwd(grad))

FWD_MODES = ["compiled", "interpret"]
W = np.array([[0.5, -0.3, 0.1], [0.2, 0.4, -0.6], [0.0, 0.3, 0.7]])
XV = np.array([0.3, -0.2, 0.5])


def dyn_fori(x, n):  # traced bounds: a while over (i, carry)
    return fori_loop(0, n, lambda i, c: c * np.cos(c) + x, x)


def vec_loop(x):  # tuple carry, captured matrix and x, the index i used as a value
    def body(i, c):
        h, s = c
        h = np.tanh(W @ h + 0.1 * x)
        return h, s + np.sum(h * x) * i
    h, s = fori_loop(0, 6, body, (x, 0.0))
    return h * s


def while_vec(x):  # integer carry, captured x, a cond inside the body
    def body(c):
        k, v = c
        return k + 1, np.sin(v) * x + cond(k < 2, lambda v: v * 2.0, lambda v: v ** 2, v)
    return while_loop(lambda c: c[0] < 5, body, (0, x))[1]


def checkpointed(x):
    return fori_loop(0, 30, lambda i, y: y - 0.01 * np.sin(x * y), x, checkpoint=5)


@pytest.mark.parametrize("mode", FWD_MODES)
@pytest.mark.parametrize("f,x", [(nested, 0.7), (newton_sqrt, 2.0), (piecewise, 0.5),
                                 (piecewise, 1.5), (lambda x: dyn_fori(x, np.int64(5)), 0.4),
                                 (lambda k: euler(k, 1.5, 100), 2.0),
                                 (lambda k: euler(k, 1.5, 100, checkpoint=7), 2.0)])
def test_loop_jvp_matches_finite_differences_and_grad(f, x, mode):
    value, tangent = ad.jvp(f, (x,), (1.0,), mode=mode)
    assert value == pytest.approx(f(x), rel=1e-12)
    assert tangent == pytest.approx(fd(f, x), rel=1e-6)
    assert tangent == pytest.approx(ad.grad(f, mode=mode)(x), rel=1e-12)


@pytest.mark.parametrize("mode", FWD_MODES)
@pytest.mark.parametrize("f", [vec_loop, while_vec, checkpointed])
def test_loop_jvp_is_grad_inner_product_and_jacfwd_is_jacrev(f, mode):
    v = np.array([0.7, -1.1, 0.4])
    _, tangent = ad.jvp(f, (XV,), (v,), mode=mode)
    g = ad.grad(lambda x: np.sum(f(x) * np.array([1.0, 2.0, -1.0])), mode=mode)(XV)
    assert np.dot(tangent, [1.0, 2.0, -1.0]) == pytest.approx(np.dot(g, v), rel=1e-10)
    np.testing.assert_allclose(ad.jacfwd(f, mode=mode)(XV), ad.jacrev(f, mode=mode)(XV),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", FWD_MODES)
def test_jacfwd_through_dynamic_fori(mode):
    jf = ad.jacfwd(dyn_fori, mode=mode)(XV, np.int64(7))
    jr = ad.jacrev(dyn_fori, mode=mode)(XV, np.int64(7))
    np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-14)


def _map20_hessian_by_hand(x):
    d, dd = 1.0, 0.0
    for _ in range(20):
        d, dd = (0.9 + np.cos(x)) * d, (0.9 + np.cos(x)) * dd - np.sin(x) * d * d
        x = 0.9 * x + np.sin(x)
    return dd


@pytest.mark.parametrize("mode", FWD_MODES)
def test_hessian_through_loops(mode):
    # (np.float64 points: jacfwd gives a Python-float point float32 tangents, which a region
    # op's operand types reject)
    f64 = np.float64
    map20 = lambda x: fori_loop(0, 20, lambda i, x: 0.9 * x + np.sin(x), x)  # noqa: E731
    assert ad.hessian(map20, mode=mode)(f64(0.3)) == pytest.approx(
        _map20_hessian_by_hand(0.3), rel=1e-9)
    for a in (2.0, 5.0):  # while_loop with a data-dependent trip count
        assert ad.hessian(newton_sqrt, mode=mode)(f64(a)) == pytest.approx(-a ** -1.5 / 4,
                                                                           rel=1e-9)
    assert ad.hessian(nested, mode=mode)(f64(0.7)) == pytest.approx(
        ad.hessian(nested_unrolled, mode=mode)(f64(0.7)), rel=1e-10)
    for x in (0.5, 1.5):
        assert ad.hessian(piecewise, mode=mode)(f64(x)) == pytest.approx(
            6 * x if x < 1 else -2 * np.sin(x - 1), rel=1e-10)
    f = lambda x: np.sum(vec_loop(x) ** 2)  # noqa: E731
    np.testing.assert_allclose(ad.hessian(f, mode=mode)(XV),
                               ad.jacrev(ad.grad(f, mode=mode), mode=mode)(XV), rtol=1e-9)


def test_tangent_ir_of_loops_verifies_parses_and_runs():
    from autodiff_jit.jvp import jvp_function
    t = np.array([1.0, 0.5, -0.3])
    for fun in (vec_loop, while_vec, checkpointed, ad.grad(lambda x: np.sum(while_vec(x))),
                ad.grad(lambda x: np.sum(checkpointed(x)))):
        tfn = verify(jvp_function(ad.make_ir(fun)(XV), [0]))
        back = verify(parse(tfn.to_text()))
        assert verify(parse(back.to_text())).to_text() == back.to_text()
        for x, y in zip(run(tfn, [XV, t]), run(back, [XV, t])):
            np.testing.assert_allclose(x, y, rtol=1e-14)
    tfn = jvp_function(ad.make_ir(scalar_map)(0.3), [0])
    scan = [e for e in tfn.eqns if e.prim.name == "scan"][-1]
    assert scan.params["n_carry"] == 2 and scan.params["length"] == 100  # (x, t_x), no record
