"""Passes: small before/after tests for dce, cse and simplify, and the pipeline keeping results
equal (interpreter before vs after) on every test function."""
import textwrap

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit.interpret import run
from autodiff_jit.ir import Lit, ZeroCotangent, parse, verify
from autodiff_jit.passes import cse, dce, optimize, simplify

from helpers import CASES


def ir(text):
    return verify(parse(textwrap.dedent(text).strip()))


def same(fn, text):
    verify(fn)
    assert str(fn) == textwrap.dedent(text).strip(), f"\n{fn}"


# ---------------------------------------------------------------------------------------------
# dce

def test_dce_drops_unused_equations_and_constants():
    before = ir("""
        func f(x: f64[3]) -> f64[3]
          c0: f64[3] = const [1.0, 2.0, 3.0]
          v1: f64[3] = mul(x, c0)
          v2: f64[3] = sin(x)
          v3: f64[3] = cos(v2)
          return v2
        """)
    same(dce(before), """
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = sin(x)
          return v0
        """)


def test_dce_keeps_everything_live():
    text = """
        func f(x: f64[3]) -> f64[]
          v0: f64[3] = sin(x)
          v1: f64[3] = mul(v0, x)
          v2: f64[] = reduce_sum(v1) {axes=(0,)}
          return v2
        """
    same(dce(ir(text)), text)


def test_dce_cleans_region_bodies():
    @ad.custom_vjp
    def f(x):
        return np.sin(x)

    def fwd(x):
        unused = np.exp(x) * 2.0  # noqa: F841  (dead in the fwd region)
        return np.sin(x), np.cos(x)

    f.defvjp(fwd, lambda c, g: (g * c,))
    fn = ad.make_ir(lambda x: np.sum(f(x)))(np.ones(2))
    region = [e for e in fn.eqns if e.prim.name == "custom_vjp_call"][0].params["fwd"]
    assert region.count("exp") == 0  # make_ir already ran dce, regions included
    assert region.count("sin") == 1


# ---------------------------------------------------------------------------------------------
# cse

def test_cse_merges_identical_equations():
    before = ir("""
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = sin(x)
          v1: f64[3] = sin(x)
          v2: f64[3] = mul(v0, 2.0)
          v3: f64[3] = mul(v1, 2.0)
          v4: f64[3] = add(v2, v3)
          return v4
        """)
    same(dce(cse(before)), """
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = sin(x)
          v1: f64[3] = mul(v0, 2.0)
          v2: f64[3] = add(v1, v1)
          return v2
        """)


def test_cse_respects_params_literals_and_merges_equal_constants():
    before = ir("""
        func f(x: f64[2,3]) -> f64[]
          c0: f64[3] = const [1.0, 2.0, 3.0]
          c1: f64[3] = const [1.0, 2.0, 3.0]
          v0: f64[3] = reduce_sum(x) {axes=(0,)}
          v1: f64[2] = reduce_sum(x) {axes=(1,)}
          v2: f64[3] = mul(v0, c0)
          v3: f64[3] = mul(v0, c1)
          v4: f64[3] = mul(v0, 3.0)
          v5: f64[3] = add(v2, v3)
          v6: f64[3] = add(v5, v4)
          v7: f64[] = reduce_sum(v6) {axes=(0,)}
          v8: f64[] = reduce_sum(v1) {axes=(0,)}
          v9: f64[] = add(v7, v8)
          return v9
        """)
    same(dce(cse(before)), """
        func f(x: f64[2,3]) -> f64[]
          c0: f64[3] = const [1.0, 2.0, 3.0]
          v1: f64[3] = reduce_sum(x) {axes=(0,)}
          v2: f64[2] = reduce_sum(x) {axes=(1,)}
          v3: f64[3] = mul(v1, c0)
          v4: f64[3] = mul(v1, 3.0)
          v5: f64[3] = add(v3, v3)
          v6: f64[3] = add(v5, v4)
          v7: f64[] = reduce_sum(v6) {axes=(0,)}
          v8: f64[] = reduce_sum(v2) {axes=(0,)}
          v9: f64[] = add(v7, v8)
          return v9
        """)


# ---------------------------------------------------------------------------------------------
# simplify

def test_simplify_identities():
    before = ir("""
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = mul(x, 1.0)
          v1: f64[3] = add(v0, -0.0)
          v2: f64[3] = add(-0.0, v1)
          v3: f64[3] = sub(v2, 0.0)
          v4: f64[3] = div(v3, 1.0)
          v5: f64[3] = mul(1.0, v4)
          v6: f64[3] = integer_pow(v5) {y=1}
          v7: f64[3] = reshape(v6) {shape=(3,)}
          v8: f64[3] = sin(v7)
          return v8
        """)
    same(dce(simplify(before)), """
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = sin(x)
          return v0
        """)


def test_adding_positive_zero_is_not_an_identity():
    # -0.0 + 0.0 is +0.0: x + 0.0 and x - (-0.0) are kept (numpy's x + 0.0 turns -0.0 into
    # 0.0); integers fold either way
    text = """
        func f(x: f64[3], i: i64[3]) -> (f64[3], f64[3], f64[3], i64[3])
          v0: f64[3] = add(x, 0.0)
          v1: f64[3] = add(0.0, x)
          v2: f64[3] = sub(x, -0.0)
          v3: i64[3] = add(i, 0)
          return v0, v1, v2, v3
        """
    same(dce(simplify(ir(text))), """
        func f(x: f64[3], i: i64[3]) -> (f64[3], f64[3], f64[3], i64[3])
          v0: f64[3] = add(x, 0.0)
          v1: f64[3] = add(0.0, x)
          v2: f64[3] = sub(x, -0.0)
          return v0, v1, v2, i
        """)
    x = np.array([-0.0, 1.0, 0.0])
    for mode in ("compiled", "interpret"):
        got = ad.jit(lambda x: (x + 0.0, 0.0 + x, x - -0.0, x + np.zeros(3)), mode=mode)(x)
        for g in got:
            np.testing.assert_array_equal(np.signbit(g), [False, False, False])


def test_simplify_identity_only_when_types_match():
    # x + 0 with a broadcasting zero changes the shape: not an identity
    text = """
        func f(x: f64[3]) -> f64[2,3]
          c0: f64[2,3] = const [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
          v1: f64[2,3] = add(x, c0)
          return v1
        """
    out = dce(simplify(ir(text)))
    assert out.count("add") == 1
    np.testing.assert_array_equal(run(out, [np.array([1.0, 2.0, 3.0])])[0], [[1, 2, 3]] * 2)


def test_simplify_double_negation():
    before = ir("""
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = neg(x)
          v1: f64[3] = neg(v0)
          v2: f64[3] = exp(v1)
          return v2
        """)
    same(dce(simplify(before)), """
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = exp(x)
          return v0
        """)


def _ad_zero(fn):
    """fn with its broadcast literal zeros marked as AD's (the printed IR cannot say so)."""
    for eqn in fn.eqns:
        eqn.inputs = [ZeroCotangent(i.value, i.dtype) if isinstance(i, Lit) and i.value == 0
                      else i for i in eqn.inputs]
    return fn


_TIMES_ZERO = """
    func f(x: f64[3]) -> f64[3]
      v0: f64[] = broadcast_to(0.0) {shape=()}
      v1: f64[3] = broadcast_to(v0) {shape=(3,)}
      v2: f64[3] = exp(x)
      v3: f64[3] = mul(v2, v1)
      v4: f64[3] = add(x, v3)
      return v4
    """


def test_simplify_multiplication_by_symbolic_zero():
    same(dce(simplify(_ad_zero(ir(_TIMES_ZERO)))), """
        func f(x: f64[3]) -> f64[3]
          return x
        """)


def test_simplify_keeps_a_user_zero_times_x():
    # the same IR with the user's zero (np.zeros_like(x)): exp(x) * 0 is nan where exp is inf
    after = dce(simplify(ir(_TIMES_ZERO)))
    assert [e.prim.name for e in after.eqns] == ["exp", "mul", "add"]
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(run(after, [np.array([1e3, 1.0, -np.inf])])[0],
                                      [np.nan, 1.0, -np.inf])


@pytest.mark.parametrize("mode", ["compiled", "interpret", "tape"])
def test_a_user_zeros_like_times_overflow_is_nan_as_numpy(mode):
    f = lambda x: np.exp(x) * np.zeros_like(x) + np.exp(x) * (0.0 * np.ones_like(x))  # noqa: E731
    x = np.array([1e3, 1.0, -1e3, np.inf, np.nan])
    with np.errstate(over="ignore", invalid="ignore"):
        np.testing.assert_array_equal(ad.jit(f, mode=mode)(x), f(x))


def test_the_zero_gradient_of_an_unused_argument_is_ad_zero():
    # the printed gradient is unchanged; the literal carries AD's mark
    g = ad.grad(lambda x, y: np.sum(x ** 2), argnums=(0, 1), mode="interpret")
    fn = g.ir(np.ones(3), np.ones(3))
    assert str(fn).splitlines()[2:] == ["  v1: f64[3] = broadcast_to(0.0) {shape=(3,)}",
                                        "  return v0, v1"]
    zero = fn.eqns[-1].inputs[0]
    assert isinstance(zero, ZeroCotangent)


def test_simplify_slice_of_a_select_by_a_constant_mask():
    # the gradient of a constant-mode pad: the mask is True exactly in the slice's window
    mask = np.zeros((4, 5), bool)
    mask[1:3, 1:4] = True
    before = ir("""
        func f(g: f64[4,5], h: f64[4,5]) -> (f64[2,3], f64[2,3], f64[2,3], f64[3,3])
          c0: bool[4,5] = const MASK
          v1: f64[4,5] = select(c0, g, 0.0)
          v2: f64[2,3] = slice(v1) {shape=(2, 3), start=(1, 1), step=(1, 1)}
          v3: f64[4,5] = select(c0, 0.0, h)
          v4: f64[2,3] = slice(v3) {shape=(2, 3), start=(1, 1), step=(1, 1)}
          v5: f64[2,3] = slice(v3) {shape=(2, 3), start=(0, 1), step=(3, 1)}
          v6: f64[3,3] = slice(v1) {shape=(3, 3), start=(0, 1), step=(1, 1)}
          return v2, v4, v5, v6
        """.replace("MASK", str(mask.tolist())))
    after = dce(simplify(before))
    same(after, """
        func f(g: f64[4,5], h: f64[4,5]) -> (f64[2,3], f64[2,3], f64[2,3], f64[3,3])
          c0: bool[4,5] = const <20 values, first False ... last False>
          v1: f64[4,5] = select(c0, g, 0.0)
          v2: f64[2,3] = slice(g) {shape=(2, 3), start=(1, 1), step=(1, 1)}
          v3: f64[2,3] = broadcast_to(0.0) {shape=(2, 3)}
          v4: f64[2,3] = slice(h) {shape=(2, 3), start=(0, 1), step=(3, 1)}
          v5: f64[3,3] = slice(v1) {shape=(3, 3), start=(0, 1), step=(1, 1)}
          return v2, v3, v4, v5
        """)
    r = np.random.default_rng(0)
    args = [r.standard_normal((4, 5)), r.standard_normal((4, 5))]
    for a, b in zip(run(before, args), run(after, args)):
        np.testing.assert_array_equal(a, b)


def test_simplify_keeps_user_multiplication_by_zero_like_numpy():
    # numpy: inf * 0.0 is nan, so a zero the user wrote is not a symbolic zero
    f = lambda x: x * 0.0 + x * np.zeros(3)  # noqa: E731
    x = np.array([np.inf, np.nan, 2.0])
    with np.errstate(invalid="ignore"):
        expected = f(x)
        for mode in ("interpret", "compiled"):
            np.testing.assert_array_equal(ad.jit(f, mode=mode)(x), expected)


def test_simplify_constant_folding():
    before = ir("""
        func f(x: f64[3]) -> f64[3]
          c0: f64[3] = const [1.0, 2.0, 3.0]
          v0: f64[3] = mul(c0, 2.0)
          v1: f64[3] = exp(v0)
          v2: f64[] = reduce_sum(c0) {axes=(0,)}
          v3: f64[3] = mul(x, v2)
          v4: f64[3] = add(v3, v1)
          return v4
        """)
    after = dce(simplify(before))
    same(after, f"""
        func f(x: f64[3]) -> f64[3]
          c0: f64[3] = const <3 values>
          v1: f64[3] = mul(x, 6.0)
          v2: f64[3] = add(v1, c0)
          return v2
        """.replace("<3 values>", repr(np.exp([2.0, 4.0, 6.0]).tolist())))
    np.testing.assert_allclose(run(after, [np.ones(3)])[0], 6.0 + np.exp([2.0, 4.0, 6.0]))


def test_simplify_folds_literal_arithmetic():
    before = ir("""
        func f(x: f64[]) -> f64[]
          v0: f64[] = mul(2.0, 3.0)
          v1: f64[] = add(v0, 1.0)
          v2: f64[] = mul(x, v1)
          return v2
        """)
    same(dce(simplify(before)), """
        func f(x: f64[]) -> f64[]
          v0: f64[] = mul(x, 7.0)
          return v0
        """)


def test_simplify_does_not_fold_large_constants():
    fn = ad.make_ir(lambda x: np.sum(x * np.exp(np.arange(100.0) / 100.0)))(np.ones(100))
    # np.exp on a concrete array is numpy's business; the traced multiply stays
    assert optimize(fn).count("mul") == 1


# the values where a rescaling fold would go wrong, if it ever does: signed zeros, the smallest
# subnormals, overflow at the top, infinities and nan
EDGES = np.array([0.0, -0.0, 5e-324, -1e-323, 2.5e-308, 1e-300, 0.3, -1.0, 7.0, 1e300, 8.9e307,
                  -8.99e307, 1.7e308, -1.79e308, np.inf, -np.inf, np.nan])


def _chain(c1, c2, dtype="f64", n=len(EDGES)):
    return ir(f"""
        func f(x: {dtype}[{n}]) -> {dtype}[{n}]
          v0: {dtype}[{n}] = mul({c1}, x)
          v1: {dtype}[{n}] = mul(v0, {c2})
          return v1
        """)


@pytest.mark.parametrize("c1,c2", [(2.0, 3.0), (4.0, -1.5), (-8.0, 1e300), (2.0, 1.0e5)])
def test_simplify_folds_an_exact_rescaling(c1, c2):
    # c1 = +-2^a (a >= 0) and |c2| >= 1: one rounding of (c1 c2) x is the two of c2 (c1 x)
    before = _chain(c1, c2)
    after = dce(simplify(before))
    assert after.count("mul") == 1 and str(np.float64(c1) * np.float64(c2)) in str(after)
    with np.errstate(over="ignore", invalid="ignore"):
        want = (EDGES * c1) * c2                    # numpy, in the order written
        for fn in (before, after):
            got = run(fn, [EDGES])[0]
            assert got.tobytes() == want.tobytes()  # bitwise, nan and -0.0 included


@pytest.mark.parametrize("c1,c2,x,why", [
    (2.0, 0.000390625, 1.7e308, "2x overflows to inf, (2 c2) x does not"),
    (2.0, 1.5, 1e308, "...while |c2| >= 1 overflows anyway; 0.5 would not"),
    (1.5, 2.0, 5e-324, "1.5 x rounds in the subnormals, 3 x is exact"),
    (0.5, 4.0, 5e-324, "x / 2 underflows to 0, 2 x does not"),
])
def test_simplify_keeps_a_rescaling_that_is_not_exact(c1, c2, x, why):
    before = _chain(c1, c2, n=1)
    after = dce(simplify(before))
    folded = np.float64(c1) * np.float64(c2)
    xs = np.array([x])
    with np.errstate(over="ignore", under="ignore"):
        two_roundings, one_rounding = (xs * c1) * c2, xs * folded
        got = run(after, [xs])[0]
    assert got.tobytes() == two_roundings.tobytes()
    if c2 != 1.5:   # the witness: folding would change this value, so it is not folded
        assert two_roundings.tobytes() != one_rounding.tobytes(), why
        assert after.count("mul") == 2, why
    else:           # exact (|c2| >= 1): folded, and the same value
        assert after.count("mul") == 1 and two_roundings.tobytes() == one_rounding.tobytes()


def test_simplify_rescaling_in_float32_and_through_a_chain():
    after = dce(simplify(ir("""
        func f(x: f32[3]) -> f32[3]
          v0: f32[3] = mul(x, 4.0:f32)
          v1: f32[3] = mul(2.0:f32, v0)
          v2: f32[3] = mul(v1, 3.0:f32)
          return v2
        """)))
    same(after, """
        func f(x: f32[3]) -> f32[3]
          v0: f32[3] = mul(24.0:f32, x)
          return v0
        """)
    # the MLP's mean-of-squares adjoint, 0.000390625 * (2 * v): left as written
    fn = ad.make_ir(ad.grad(lambda x: np.mean(x ** 2)))(np.ones(2560))
    text = str(optimize(fn))
    assert "mul(2.0, x)" in text and "mul(0.000390625, v0)" in text


def test_optimize_reaches_a_fixed_point_and_verifies():
    before = ir("""
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = neg(x)
          v1: f64[3] = neg(v0)
          v2: f64[3] = sin(v1)
          v3: f64[3] = sin(x)
          v4: f64[3] = mul(v2, 1.0)
          v5: f64[3] = add(v4, v3)
          return v5
        """)
    after = optimize(before)
    same(after, """
        func f(x: f64[3]) -> f64[3]
          v0: f64[3] = sin(x)
          v1: f64[3] = add(v0, v0)
          return v1
        """)
    assert str(optimize(after)) == str(after)


# ---------------------------------------------------------------------------------------------
# the pipeline keeps results equal on every test function

@pytest.mark.parametrize("name", sorted(CASES))
def test_pipeline_preserves_results(name):
    f, args = CASES[name]
    args = list(args)
    argnums = tuple(range(len(args)))
    for fn in (ad.make_ir(f)(*args), ad.make_ir(ad.value_and_grad(f, argnums=argnums))(*args)):
        opt = optimize(fn)
        verify(opt)
        assert sum(1 for _ in opt.all_eqns()) <= sum(1 for _ in fn.all_eqns())
        for a, b in zip(run(opt, args), run(fn, args)):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["mlp", "softmax_xent", "matmul_batched", "index_slices"])
def test_pipeline_shrinks_adjoint_ir(name):
    f, args = CASES[name]
    fn = ad.make_ir(ad.grad(f, argnums=tuple(range(len(args)))))(*args)
    assert sum(1 for _ in optimize(fn).all_eqns()) < sum(1 for _ in fn.all_eqns())
