"""The IR: printer golden text, parse(print(f)) round trips, and the verifier's rejections."""
import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.errors import IRError
from autodiff_jit.interpret import run
from autodiff_jit.ir import AVal, Eqn, Function, Lit, Var, parse, verify
from autodiff_jit.primitives import get_primitive

import inspect

from helpers import CASES, strip_locations


def f_small(x, y):
    return np.sum(np.sin(x) * y) + 2.0


def f_mlp(x, w):
    return np.sum(np.tanh(x @ w) ** 2)


GOLDEN_FORWARD = """\
func f_small(x: f64[3], y: f64[3]) -> f64[]
  v0: f64[3] = sin(x)
  v1: f64[3] = mul(v0, y)
  v2: f64[] = reduce_sum(v1) {axes=(0,)}
  v3: f64[] = add(v2, 2.0)
  return v3"""

GOLDEN_ADJOINT = """\
func grad_f_small(x: f64[3], y: f64[3]) -> f64[3]
  v0: f64[] = broadcast_to(1.0) {shape=()}
  v1: f64[1] = reshape(v0) {shape=(1,)}
  v2: f64[3] = broadcast_to(v1) {shape=(3,)}
  v3: f64[3] = mul(v2, y)
  v4: f64[3] = cos(x)
  v5: f64[3] = mul(v3, v4)
  return v5"""

GOLDEN_MLP_ADJOINT = """\
func grad_f_mlp(x: f64[2,3], w: f64[3]) -> f64[3]
  v0: f64[] = broadcast_to(1.0) {shape=()}
  v1: f64[2] = dot_general(x, w) {batch=((), ()), contract=((1,), (0,))}
  v2: f64[2] = tanh(v1)
  v3: f64[1] = reshape(v0) {shape=(1,)}
  v4: f64[2] = broadcast_to(v3) {shape=(2,)}
  v5: f64[2] = mul(2.0, v2)
  v6: f64[2] = mul(v4, v5)
  v7: f64[2] = mul(v2, v2)
  v8: f64[2] = sub(1.0, v7)
  v9: f64[2] = mul(v6, v8)
  v10: f64[3] = dot_general(x, v9) {batch=((), ()), contract=((0,), (0,))}
  return v10"""

GOLDEN_MLP_OPTIMIZED = """\
func grad_f_mlp(x: f64[2,3], w: f64[3]) -> f64[3]
  v0: f64[2] = dot_general(x, w) {batch=((), ()), contract=((1,), (0,))}
  v1: f64[2] = tanh(v0)
  v2: f64[2] = mul(2.0, v1)
  v3: f64[2] = mul(v1, v1)
  v4: f64[2] = sub(1.0, v3)
  v5: f64[2] = mul(v2, v4)
  v6: f64[3] = dot_general(x, v5) {batch=((), ()), contract=((0,), (0,))}
  return v6"""


def _with_locations(golden, locs):
    """Golden text with a `# file:line` comment on each equation line, in order."""
    lines, it = golden.splitlines(), iter(locs)
    return "\n".join(ln + (f"  # {next(it)}" if " = " in ln else "") for ln in lines)


def test_golden_forward():
    line = f"test_ir.py:{inspect.getsourcelines(f_small)[1] + 1}"
    got = str(ad.make_ir(f_small)(np.ones(3), np.ones(3)))
    assert got == _with_locations(GOLDEN_FORWARD, [line] * 4)
    assert strip_locations(got) == GOLDEN_FORWARD


def test_golden_adjoint():
    line = f"test_ir.py:{inspect.getsourcelines(f_small)[1] + 1}"
    got = str(ad.make_ir(ad.grad(f_small))(np.ones(3), np.ones(3)))
    assert strip_locations(got) == GOLDEN_ADJOINT
    # the seed is no user line's; the derivative's equations point at the line they
    # differentiate, marked as adjoint code; the forward sin's cos is adjoint code too
    adj = f"{line} (adjoint)"
    assert got == "\n".join(
        [GOLDEN_ADJOINT.splitlines()[0], GOLDEN_ADJOINT.splitlines()[1]] +
        [ln + f"  # {adj}" for ln in GOLDEN_ADJOINT.splitlines()[2:-1]] +
        [GOLDEN_ADJOINT.splitlines()[-1]])


def test_golden_mlp_adjoint_and_optimized():
    g = ad.grad(f_mlp, argnums=1, mode="interpret")
    args = (np.ones((2, 3)), np.ones(3))
    assert strip_locations(ad.make_ir(g)(*args)) == GOLDEN_MLP_ADJOINT
    assert strip_locations(g.ir(*args)) == GOLDEN_MLP_OPTIMIZED


def test_locations_round_trip_and_name_the_line():
    line = inspect.getsourcelines(f_mlp)[1] + 1
    fn = ad.make_ir(ad.grad(f_mlp, argnums=1))(np.ones((2, 3)), np.ones(3))
    locs = [e.loc for e in fn.eqns]
    assert f"test_ir.py:{line}" in locs and f"test_ir.py:{line} (adjoint)" in locs
    back = parse(fn.to_text())
    assert [e.loc for e in back.eqns] == locs and back == fn
    # a comment is optional in hand-written IR text
    plain = parse(strip_locations(fn.to_text()))
    assert all(e.loc is None for e in plain.eqns) and verify(plain)


def test_golden_constants_and_float32_literals():
    c = np.array([1.0, 2.0, 3.0], np.float32)
    ir = ad.make_ir(lambda x: np.sum(x * c + np.float32(2.5)))(np.ones(3, np.float32))
    assert strip_locations(ir) == (
        "func lambda(x: f32[3]) -> f32[]\n"
        "  c0: f32[3] = const [1.0, 2.0, 3.0]\n"
        "  v1: f32[3] = mul(x, c0)\n"
        "  v2: f32[3] = add(v1, 2.5:f32)\n"
        "  v3: f32[] = reduce_sum(v2) {axes=(0,)}\n"
        "  return v3")
    big = ad.make_ir(lambda x: np.sum(x * np.arange(20.0)))(np.ones(20))
    assert "c0: f64[20] = const <20 values, first " in str(big)
    assert "const [0.0, 1.0, 2.0," in big.to_text()


def test_elided_constant_summary_is_plain():
    big = ad.make_ir(lambda x: np.sum(x * np.arange(20.0)))(np.ones(20))
    assert "const <20 values, first 0.0 ... last 19.0>" in str(big)


def test_parse_of_golden_text_runs():
    fn = parse(GOLDEN_ADJOINT)
    verify(fn)
    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(run(fn, [x, y])[0], y * np.cos(x))
    assert str(fn) == GOLDEN_ADJOINT


# ---------------------------------------------------------------------------------------------
# round trips

def _round_trip(fn):
    text = fn.to_text()
    back = parse(text)
    verify(back)
    assert back == fn, f"\n{text}\n---\n{back.to_text()}"
    assert back.to_text() == text
    return back


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_forward_adjoint_optimized(name):
    f, args = CASES[name]
    argnums = tuple(range(len(args)))
    _round_trip(ad.make_ir(f)(*args))
    adj = _round_trip(ad.make_ir(ad.grad(f, argnums=argnums))(*args))
    spec = ad.grad(f, argnums=argnums, mode="interpret").specialize(*args)
    opt = _round_trip(spec.optimized)   # (captured arrays are its trailing hidden arguments)
    # the parsed functions compute the same thing
    ref = run(ad.make_ir(ad.grad(f, argnums=argnums))(*args), list(args))
    for a, b in zip(run(adj, list(args)), ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for a, b in zip(run(opt, list(args) + list(spec.hidden)), ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@ad.custom_vjp
def _clipped_sin(x):
    return np.sin(x)


_clipped_sin.defvjp(lambda x: (np.sin(x), np.cos(x)), lambda c, g: (np.clip(g * c, -0.5, 0.5),))


def _custom_loss(x):
    return np.sum(_clipped_sin(x) * x)


def test_custom_vjp_call_regions_print_and_verify():
    fn = ad.make_ir(_custom_loss)(np.ones(2))
    text = str(fn)
    assert "custom_vjp_call(x) {num_outputs=1}" in text
    assert "    fwd:\n      func _clipped_sin_fwd(" in text
    assert "    bwd:\n      func _clipped_sin_bwd(" in text
    verify(fn)
    eqn, = [e for e in fn.eqns if e.prim.name == "custom_vjp_call"]
    assert set(eqn.params) == {"fwd", "bwd", "num_outputs"}
    assert [str(a) for a in eqn.params["bwd"].in_avals] == ["f64[2]", "f64[2]"]


def test_custom_vjp_call_round_trip_semantics():
    # parse(to_text()) reproduces the regions' behaviour, even where the text is not identical
    for fn in (ad.make_ir(_custom_loss)(np.ones(2)), ad.make_ir(ad.grad(_custom_loss))(np.ones(2))):
        back = parse(fn.to_text())
        verify(back)
        x = np.array([0.3, -1.2])
        np.testing.assert_allclose(run(back, [x])[0], run(fn, [x])[0], rtol=0, atol=0)
        eqn, = [e for e in back.eqns if e.prim.name == "custom_vjp_call"]
        assert eqn.params["fwd"].name == "_clipped_sin_fwd"
        assert len(eqn.params["bwd"].args) == 2


def test_custom_vjp_call_round_trip_text():
    _round_trip(ad.make_ir(_custom_loss)(np.ones(2)))
    _round_trip(ad.make_ir(ad.grad(_custom_loss))(np.ones(2)))


def test_round_trip_pytree_arguments():
    _round_trip(ad.make_ir(lambda p: np.sum(p[0] * p[1]))((np.ones(2), np.ones(2))))


def test_round_trip_inf_nan():
    _round_trip(ad.make_ir(lambda x: np.sum(np.minimum(x, np.inf) * np.array([np.nan, 1.0])))(np.ones(2)))


def test_round_trip_custom_vjp_of_lambda():
    f = ad.custom_vjp(lambda x: np.sin(x))
    f.defvjp(lambda x: (np.sin(x), np.cos(x)), lambda c, g: (g * c,))
    parse(ad.make_ir(lambda x: np.sum(f(x)))(np.ones(2)).to_text())


def test_parse_errors_are_ir_errors():
    with pytest.raises(IRError, match="unknown primitive 'frobnicate'"):
        parse("func f(x: f64[]) -> f64[]\n  v0: f64[] = frobnicate(x)\n  return v0")
    with pytest.raises(IRError, match=r"cannot parse type ' ?f16\[3\]'"):
        parse("func f(x: f16[3]) -> f16[3]\n  return x")
    with pytest.raises(IRError, match="missing 'return'"):
        parse("func f(x: f64[]) -> f64[]\n  v0: f64[] = neg(x)")
    with pytest.raises(IRError, match="unknown value 'zz'"):
        parse("func f(x: f64[]) -> f64[]\n  v0: f64[] = neg(zz)\n  return v0")
    with pytest.raises(IRError, match="elided"):
        parse(str(ad.make_ir(lambda x: np.sum(x * np.arange(20.0)))(np.ones(20))))


# ---------------------------------------------------------------------------------------------
# verifier

F64 = np.dtype(np.float64)


def _v(shape=(3,), hint=None):
    return Var(AVal(shape, F64), hint)


def test_verifier_accepts_hand_built_ir():
    x, y = _v(hint="x"), _v()
    fn = Function("ok", [x], {}, [Eqn(get_primitive("sin"), [x], {}, [y])], [y])
    assert verify(fn) is fn


def test_verifier_rejects_double_assignment():
    x, y = _v(hint="x"), _v()
    eqns = [Eqn(get_primitive("sin"), [x], {}, [y]), Eqn(get_primitive("cos"), [x], {}, [y])]
    with pytest.raises(IRError, match="assigned twice.*SSA"):
        verify(Function("bad", [x], {}, eqns, [y]))
    # an equation may not redefine an argument either
    with pytest.raises(IRError, match="assigned twice"):
        verify(Function("bad", [x], {}, [Eqn(get_primitive("sin"), [x], {}, [x])], [x]))


def test_verifier_rejects_use_before_definition():
    x, y, z = _v(hint="x"), _v(), _v()
    eqns = [Eqn(get_primitive("mul"), [x, z], {}, [y]), Eqn(get_primitive("sin"), [x], {}, [z])]
    with pytest.raises(IRError, match="used in 'mul' before it is defined"):
        verify(Function("bad", [x], {}, eqns, [y]))
    with pytest.raises(IRError, match="used in return before it is defined"):
        verify(Function("bad", [x], {}, [], [z]))


def test_verifier_rejects_wrong_output_shape():
    x, y = _v(hint="x"), _v((4,))
    with pytest.raises(IRError, match=r"'sin' outputs \['f64\[4\]'\] but its shape rule gives \['f64\[3\]'\]"):
        verify(Function("bad", [x], {}, [Eqn(get_primitive("sin"), [x], {}, [y])], [y]))
    s = _v(())
    with pytest.raises(IRError, match=r"'reduce_sum' outputs \['f64\[\]'\] but its shape rule gives \['f64\[3\]'\]"):
        verify(Function("bad", [x], {}, [Eqn(get_primitive("reduce_sum"), [x], {"axes": ()}, [s])], [s]))


def test_verifier_rejects_wrong_output_dtype():
    x, y = _v(hint="x"), Var(AVal((3,), np.float32))
    with pytest.raises(IRError, match=r"f32\[3\].*shape rule gives.*f64\[3\]"):
        verify(Function("bad", [x], {}, [Eqn(get_primitive("neg"), [x], {}, [y])], [y]))


def test_verifier_rejects_inputs_the_shape_rule_refuses():
    x, w, y = _v(hint="x"), _v((4,), "w"), _v()
    with pytest.raises(IRError, match=r"'add' rejects its inputs: add: shapes \(3,\) and \(4,\)"):
        verify(Function("bad", [x, w], {}, [Eqn(get_primitive("add"), [x, w], {}, [y])], [y]))


def test_verifier_rejects_bad_constant():
    c = _v()
    with pytest.raises(IRError, match="constant .* holds"):
        verify(Function("bad", [], {c: np.zeros(4)}, [], [c]))


def test_verifier_checks_literals_and_regions():
    x, y = _v(hint="x"), _v()
    ok = Function("ok", [x], {}, [Eqn(get_primitive("mul"), [x, Lit(2.0, F64)], {}, [y])], [y])
    verify(ok)
    i = Lit(2, np.int64)
    bad = Function("bad", [x], {}, [Eqn(get_primitive("mul"), [x, i], {}, [_v()])], [x])
    with pytest.raises(IRError, match="different dtypes"):
        verify(bad)
    # an error inside a region body is found too
    a, b = _v(hint="a"), _v((5,))
    body = Function("body", [a], {}, [Eqn(get_primitive("sin"), [a], {}, [b])], [b])
    fwd = ad.make_ir(lambda x: (np.sin(x), np.cos(x)))(np.zeros(3))
    outs = [_v(), _v()]
    eqn = Eqn(get_primitive("custom_vjp_call"), [x], {"fwd": fwd, "bwd": body, "num_outputs": 1}, outs)
    with pytest.raises(IRError, match=r"'sin' outputs \['f64\[5\]'\]"):
        verify(Function("outer", [x], {}, [eqn], [outs[0]]))


def test_docs_ir_md_shows_current_output_and_every_primitive():
    import pathlib
    from autodiff_jit.primitives import all_primitives
    doc = (pathlib.Path(__file__).parent.parent / "docs" / "ir.md").read_text()
    args = (np.ones((2, 3)), np.ones(3))

    def f(x, w):
        return np.sum(np.tanh(x @ w) ** 2)

    assert strip_locations(ad.make_ir(f)(*args)) in doc
    assert strip_locations(ad.make_ir(ad.grad(f, argnums=1))(*args)) in doc
    assert strip_locations(ad.grad(f, argnums=1, mode="interpret").ir(*args)) in doc
    missing = [n for n in all_primitives() if f"| `{n}` |" not in doc]
    assert not missing, f"docs/ir.md's primitive table lacks {missing}"
