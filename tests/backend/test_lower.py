"""The LLVM backend against the interpreter (the reference): every primitive, many small
functions, gradients, odd shapes, non-contiguous inputs, inspection and error paths."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import autodiff_jit as ad
from autodiff_jit import interpret
from autodiff_jit.backend import compile_function
from autodiff_jit.backend.compiled import CompiledFunction
from autodiff_jit.backend.emitters import EMITTERS
from autodiff_jit.backend.lower import load_emitters
from autodiff_jit.errors import BackendError
from autodiff_jit.ir import AVal, Eqn, Function, Lit, Var
from autodiff_jit.primitives import all_primitives, get_primitive
from helpers import assert_within_rounding, float64_twin

F64, F32, I64, I32, B = np.float64, np.float32, np.int64, np.int32, np.bool_


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if np.dtype(dtype) == np.float32 else \
        dict(rtol=1e-12, atol=1e-12)


def _rand(rng, shape, dtype, low=-2.0, high=2.0):
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind == "i":
        return rng.integers(-5, 6, size=shape).astype(dt)
    return rng.uniform(low, high, size=shape).astype(dt)


def single(name, avals, params=None, lits=None):
    """A Function applying one primitive to fresh arguments (or literals at given positions)."""
    prim = get_primitive(name)
    params = params or {}
    args, inputs = [], []
    for i, av in enumerate(avals):
        if lits and i in lits:
            inputs.append(Lit(lits[i], av.dtype))
        else:
            v = Var(av, f"a{i}")
            args.append(v)
            inputs.append(v)
    outs = [Var(a) for a in prim.abstract_eval([i.aval for i in inputs], params)]
    return Function(name, args, {}, [Eqn(prim, inputs, params, outs)], outs)


def check_fn(fn, arrays, dtype=None):
    try:
        want = interpret.run(fn, arrays)
    except TypeError as exc:  # numpy has no loop for this dtype: nothing to match
        pytest.skip(f"reference rejects it: {exc}")
    exe = compile_function(fn)
    assert isinstance(exe, CompiledFunction), exe
    got = exe(arrays)
    assert len(got) == len(want)
    refs = _float64_reference(fn, arrays)
    for k, (g, w, r) in enumerate(zip(got, want, fn.results)):
        g = np.asarray(g)
        assert g.shape == w.shape, (g.shape, w.shape)
        assert g.dtype == np.dtype(r.dtype), (g.dtype, r.dtype)
        if w.dtype == np.float32 and refs is not None:
            ref, mag, terms = refs[0][k], refs[1][k], refs[2]
            assert_within_rounding(g, ref, mag, terms, what=fn.eqns[0].prim.name)
        elif w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, equal_nan=True, **_tol(w.dtype))
        else:
            np.testing.assert_array_equal(g, w)
    return exe


# primitives whose result adds many rounded terms: their float32 error bound grows with the
# number of terms and the sum of their magnitudes (see helpers.rounding_bound)
def _summed_terms(eqn, arrays):
    name, p = eqn.prim.name, eqn.params
    if name == "reduce_sum":
        return int(np.prod([arrays[0].shape[a] for a in p["axes"]]))
    if name == "cumsum":
        return arrays[0].shape[p["axis"]] if arrays[0].ndim else 1
    if name == "dot_general":
        return int(np.prod([arrays[0].shape[a] for a in p["contract"][0]]))
    return None


def _float64_reference(fn, arrays):
    """(float64 results, magnitudes, rounded terms) of a one-equation float32 function: the
    same equation evaluated in float64 on the same inputs; None where that does not apply."""
    twin = float64_twin(fn)
    if twin is None or len(fn.eqns) != 1 or fn.eqns[0].params.get("regions"):
        return None
    up = [a.astype(F64) if a.dtype == F32 else a for a in arrays]
    with np.errstate(all="ignore"):
        ref = interpret.run(twin, up)
        eqn = fn.eqns[0]
        terms = _summed_terms(eqn, arrays)
        if terms is not None:   # magnitude: the same sum over absolute values
            mag = interpret.run(twin, [np.abs(a) if a.dtype.kind == "f" else a for a in up])
        elif eqn.prim.name == "reduce_prod":   # relative error of n products: n eps
            terms, mag = int(np.prod(arrays[0].shape)) or 1, ref
        else:   # one operation, our float32 math computed in double and rounded once
            terms, mag = 1, ref
    return ref, mag, terms


# ---------------------------------------------------------------------------------------------
# coverage

def test_every_primitive_has_an_emitter():
    load_emitters()
    missing = sorted(set(all_primitives()) - set(EMITTERS))
    assert not missing, f"primitives without an LLVM emitter: {missing}"


def test_missing_emitter_falls_back_with_warning(monkeypatch):
    fn = single("add", [AVal((3,), F64)] * 2)
    monkeypatch.delitem(EMITTERS, "add")
    with pytest.warns(RuntimeWarning, match="add"):
        exe = compile_function(fn)
    x = np.arange(3.0)
    np.testing.assert_allclose(exe([x, x])[0], 2 * x)


# ---------------------------------------------------------------------------------------------
# elementwise

UNARY_FLOAT = ["neg", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "tanh", "sinh",
               "cosh", "arcsin", "arccos", "arctan", "abs", "sign", "floor", "ceil", "round",
               "stop_gradient"]
DOMAIN = {"log": (0.1, 3), "sqrt": (0.0, 3), "log1p": (-0.9, 3), "arcsin": (-1, 1),
          "arccos": (-1, 1)}


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("name", UNARY_FLOAT)
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (0, 4)])
def test_unary(rng, name, dtype, shape):
    lo, hi = DOMAIN.get(name, (-3, 3))
    fn = single(name, [AVal(shape, dtype)])
    x = _rand(rng, shape, dtype, lo, hi)
    if name == "round" and x.size:
        x.flat[0] = 2.5  # half to even
    check_fn(fn, [x])


@pytest.mark.parametrize("dtype", [I64, I32, B])
@pytest.mark.parametrize("name", ["neg", "abs", "sign", "logical_not"])
def test_unary_int(rng, name, dtype):
    if dtype == B and name == "neg":
        pytest.skip("numpy rejects negative of bool")
    fn = single(name, [AVal((9,), dtype)])
    check_fn(fn, [_rand(rng, (9,), dtype)])


@pytest.mark.parametrize("dtype", [F64, F32, I64, I32])
@pytest.mark.parametrize("y", [0, 1, 2, 3, 5, -1, -2])
def test_integer_pow(rng, dtype, y):
    if np.dtype(dtype).kind == "i" and y < 0:
        x = rng.integers(1, 4, size=(6,)).astype(dtype)
    else:
        x = _rand(rng, (6,), dtype, 0.5, 2.0)
    check_fn(single("integer_pow", [AVal((6,), dtype)], {"y": y}), [x])


@pytest.mark.parametrize("src", [F64, F32, I64, I32, B])
@pytest.mark.parametrize("dst", [F64, F32, I64, I32, B])
def test_convert(rng, src, dst):
    x = _rand(rng, (11,), src, -5, 5)
    check_fn(single("convert_element_type", [AVal((11,), src)], {"dtype": np.dtype(dst)}), [x])


BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "lt", "le", "gt", "ge", "eq",
          "ne", "logical_and", "logical_or", "logical_xor"]
SHAPES = [((4, 3), (4, 3)), ((4, 3), (3,)), ((4, 1), (1, 3)), ((), (2, 3)), ((2, 1, 3), (4, 1)),
          ((0, 3), (3,)), ((1,), ())]


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", SHAPES)
def test_binary(rng, name, dtype, shapes):
    sa, sb = shapes
    lo = 0.1 if name == "pow" else -2
    a, b = _rand(rng, sa, dtype, lo, 2), _rand(rng, sb, dtype, -2, 2)
    if name in ("eq", "ne", "maximum", "minimum") and a.size and b.size:
        a.flat[0] = b.flat[0] if a.shape == b.shape else a.flat[0]
    check_fn(single(name, [AVal(sa, dtype), AVal(sb, dtype)]), [a, b])


@pytest.mark.parametrize("dtype", [I64, I32, B])
@pytest.mark.parametrize("name", ["add", "mul", "maximum", "minimum", "lt", "le", "eq", "ne",
                                  "logical_and", "logical_or", "logical_xor", "sub"])
def test_binary_int(rng, name, dtype):
    if dtype == B and name == "sub":
        pytest.skip("numpy rejects bool subtraction")
    a, b = _rand(rng, (3, 4), dtype), _rand(rng, (4,), dtype)
    check_fn(single(name, [AVal((3, 4), dtype), AVal((4,), dtype)]), [a, b])


def test_binary_literal_and_nan(rng):
    fn = single("maximum", [AVal((5,), F64), AVal((), F64)], lits={1: 0.5})
    x = np.array([0.1, np.nan, 3.0, -1.0, 0.5])
    check_fn(fn, [x])
    fn = single("minimum", [AVal((5,), F64), AVal((5,), F64)])
    check_fn(fn, [x, x[::-1].copy()])


@pytest.mark.parametrize("dtype", [F64, I64, B])
def test_select(rng, dtype):
    fn = single("select", [AVal((3, 4), B), AVal((4,), dtype), AVal((3, 1), dtype)])
    check_fn(fn, [_rand(rng, (3, 4), B), _rand(rng, (4,), dtype), _rand(rng, (3, 1), dtype)])


# ---------------------------------------------------------------------------------------------
# reductions, scans

@pytest.mark.parametrize("name", ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("shape,axes", [((7,), (0,)), ((3, 4), (0,)), ((3, 4), (1,)),
                                        ((3, 4), (0, 1)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (1,)),
                                        ((2, 3, 4), ()), ((0, 3), (0,)), ((3, 0), (0,)),
                                        ((1000,), (0,))])
@pytest.mark.parametrize("dtype", [F64, F32, I64])
def test_reduce(rng, name, shape, axes, dtype):
    if name in ("reduce_max", "reduce_min") and any(shape[a] == 0 for a in axes):
        pytest.skip("numpy raises on empty max/min")
    lo, hi = (0.5, 1.5) if name == "reduce_prod" else (-2, 2)
    x = _rand(rng, shape, dtype, lo, hi)
    if name == "reduce_prod" and np.dtype(dtype).kind == "i":
        x = rng.integers(-2, 3, size=shape).astype(dtype)
    check_fn(single(name, [AVal(shape, dtype)], {"axes": axes}), [x])


def test_reduce_max_nan():
    fn = single("reduce_max", [AVal((2, 3), F64)], {"axes": (1,)})
    check_fn(fn, [np.array([[1.0, np.nan, 0.0], [1.0, 2.0, 3.0]])])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 1)])
@pytest.mark.parametrize("dtype", [F64, F32, I64, B])
def test_arg(rng, name, shape, axis, dtype):
    x = _rand(rng, shape, dtype)
    if np.dtype(dtype).kind == "f":
        x = np.round(x)  # ties: first occurrence wins
    check_fn(single(name, [AVal(shape, dtype)], {"axis": axis}), [x])


def test_argmax_nan():
    fn = single("argmax", [AVal((5,), F64)], {"axis": 0})
    check_fn(fn, [np.array([1.0, np.nan, 5.0, np.nan, 0.0])])


@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 1),
                                        ((0, 3), 1)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [F64, I64])
def test_cumsum(rng, shape, axis, reverse, dtype):
    fn = single("cumsum", [AVal(shape, dtype)], {"axis": axis, "reverse": reverse})
    check_fn(fn, [_rand(rng, shape, dtype)])


# ---------------------------------------------------------------------------------------------
# shape and indexing

@pytest.mark.parametrize("src,dst", [((2, 6), (3, 4)), ((12,), (2, 2, 3)), ((), (1, 1)),
                                     ((3, 1), (3,)), ((0, 2), (2, 0))])
def test_reshape(rng, src, dst):
    check_fn(single("reshape", [AVal(src, F64)], {"shape": dst}), [_rand(rng, src, F64)])


@pytest.mark.parametrize("shape,perm", [((2, 3), (1, 0)), ((2, 3, 4), (2, 0, 1)),
                                        ((2, 3, 4), (1, 2, 0)), ((1, 3), (1, 0))])
def test_transpose(rng, shape, perm):
    check_fn(single("transpose", [AVal(shape, F64)], {"perm": perm}), [_rand(rng, shape, F64)])


@pytest.mark.parametrize("src,dst", [((3,), (2, 3)), ((), (4,)), ((3, 1), (3, 5)),
                                     ((1, 4), (2, 3, 4)), ((2,), (0, 2))])
def test_broadcast_to(rng, src, dst):
    check_fn(single("broadcast_to", [AVal(src, B)], {"shape": dst}), [_rand(rng, src, B)])
    check_fn(single("broadcast_to", [AVal(src, F32)], {"shape": dst}), [_rand(rng, src, F32)])


@pytest.mark.parametrize("shapes,axis", [(((2, 3), (4, 3)), 0), (((2, 3), (2, 1), (2, 2)), 1),
                                         (((0, 3), (2, 3)), 0)])
def test_concatenate(rng, shapes, axis):
    fn = single("concatenate", [AVal(s, F64) for s in shapes], {"axis": axis})
    check_fn(fn, [_rand(rng, s, F64) for s in shapes])


SLICES = [((10,), (1,), (2,), (4,)), ((10,), (9,), (-1,), (10,)), ((10,), (8,), (-3,), (3,)),
          ((4, 5), (1, 4), (2, -2), (2, 3)), ((4, 5), (0, 0), (1, 1), (0, 5))]


@pytest.mark.parametrize("shape,start,step,out", SLICES)
def test_slice_and_scatter(rng, shape, start, step, out):
    fn = single("slice", [AVal(shape, F64)], {"start": start, "step": step, "shape": out})
    check_fn(fn, [_rand(rng, shape, F64)])
    fn = single("scatter_slice", [AVal(out, F64)],
                {"start": start, "step": step, "in_shape": shape})
    check_fn(fn, [_rand(rng, out, F64)])


# (x shape, runs): steps -1/1/0 on every axis; an outer axis of several runs (read through a
# table); an innermost axis of more runs than MAX_RUN_LOOPS (a table); a run list of one axis
RUNS = [((5, 4), (((2, 2, -1), (0, 5, 1), (4, 3, 0)), ((1, 3, 1), (3, 2, -1), (0, 2, 0)))),
        ((3, 4), (((0, 3, 1),), tuple((k % 4, 1, 1) for k in range(11)))),
        ((6,), (((3, 3, -1), (0, 6, 1), (5, 4, 0)),)),
        ((2, 3, 4), (((1, 1, 1), (0, 2, 1)), ((0, 3, 1),), ((1, 1, 1), (0, 4, 1), (2, 1, 1)))),
        # take_runs_add stores the block that reads each axis once in order, and adds the rest:
        # blocks that begin inside a reflecting run (np.pad's reflect, edge), or none
        ((5, 6), (((2, 3, -1), (1, 4, 1), (3, 2, -1)), ((0, 3, 0), (1, 5, 1), (5, 2, 0)))),
        ((5,), (((2, 3, -1), (1, 4, 1), (3, 2, -1)),)),
        ((4, 3), (((0, 4, 1), (0, 4, 1)), ((2, 3, -1),)))]


@pytest.mark.parametrize("shape,runs", RUNS)
@pytest.mark.parametrize("dtype", [F64, I64])
def test_take_runs_and_take_runs_add(rng, shape, runs, dtype):
    fn = single("take_runs", [AVal(shape, dtype)], {"runs": runs})
    x = _rand(rng, shape, dtype) if dtype == F64 else rng.integers(-9, 9, shape)
    check_fn(fn, [x])
    out = fn.eqns[0].outputs[0].aval.shape
    fn = single("take_runs_add", [AVal(out, dtype)], {"runs": runs, "in_shape": shape})
    g = _rand(rng, out, dtype) if dtype == F64 else rng.integers(-9, 9, out)
    check_fn(fn, [g])


@pytest.mark.parametrize("xshape,ishape,axis", [((5,), (3,), 0), ((4, 3), (2, 2), 0),
                                                 ((4, 3), (5,), 1), ((4, 3), (), 0)])
def test_take_and_take_add(rng, xshape, ishape, axis):
    idx = rng.integers(-xshape[axis], xshape[axis], size=ishape)
    if idx.size > 1:
        idx.flat[1] = idx.flat[0]  # repeated indices accumulate in take_add
    fn = single("take", [AVal(xshape, F64), AVal(ishape, I64)], {"axis": axis})
    check_fn(fn, [_rand(rng, xshape, F64), idx])
    gshape = xshape[:axis] + ishape + xshape[axis + 1:]
    fn = single("take_add", [AVal(gshape, F64), AVal(ishape, I64)],
                {"axis": axis, "size": xshape[axis]})
    check_fn(fn, [_rand(rng, gshape, F64), idx])


# ---------------------------------------------------------------------------------------------
# dot_general

DOTS = [((3, 4), (4, 5), ((1,), (0,)), ((), ())),        # small matmul: loops
        ((64, 80), (80, 48), ((1,), (0,)), ((), ())),   # BLAS
        ((80, 64), (80, 48), ((0,), (0,)), ((), ())),   # A^T B
        ((64, 80), (48, 80), ((1,), (1,)), ((), ())),   # A B^T
        ((80, 64), (48, 80), ((0,), (1,)), ((), ())),   # A^T B^T
        ((100, 90), (90,), ((1,), (0,)), ((), ())),     # gemv
        ((90,), (90, 100), ((0,), (0,)), ((), ())),     # vector @ matrix
        ((90, 100), (90,), ((0,), (0,)), ((), ())),     # A^T x
        ((7, 30, 40), (7, 40, 20), ((2,), (1,)), ((0,), (0,))),   # batched
        ((30, 7, 40), (40, 20, 7), ((2,), (0,)), ((1,), (2,))),   # batched, odd layout
        ((5,), (5,), ((0,), (0,)), ((), ())),           # inner product
        ((3,), (4,), ((), ()), ((), ())),               # outer
        ((2, 3, 4), (3, 4, 5), ((1, 2), (0, 1)), ((), ())),  # two contracted axes
        ((60, 3, 40), (3, 40, 50), ((1, 2), (0, 1)), ((), ())),  # two contracted, BLAS
        ((0, 4), (4, 3), ((1,), (0,)), ((), ())),
        ((3, 0), (0, 3), ((1,), (0,)), ((), ())),
        ((500, 4, 3), (500, 4, 5), ((0,), (0,)), ((1,), (1,))),  # tall contraction: accumulate
        ((500, 6), (500, 7), ((0,), (0,)), ((), ()))]              # into the small output


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("sa,sb,contract,batch", DOTS)
def test_dot_general(rng, sa, sb, contract, batch, dtype):
    # float32: the summation order (BLAS kernel, vector width) differs between CPUs; check_fn
    # compares with the float64 result under K * eps * (|a| @ |b|), K the contracted length
    fn = single("dot_general", [AVal(sa, dtype), AVal(sb, dtype)],
                {"contract": contract, "batch": batch})
    check_fn(fn, [_rand(rng, sa, dtype), _rand(rng, sb, dtype)])


def test_dot_int(rng):
    fn = single("dot_general", [AVal((3, 4), I64), AVal((4, 2), I64)],
                {"contract": ((1,), (0,)), "batch": ((), ())})
    check_fn(fn, [_rand(rng, (3, 4), I64), _rand(rng, (4, 2), I64)])


# ---------------------------------------------------------------------------------------------
# whole functions through the API, compiled vs interpreted

def _compare(f, *args, grad=False, dtype=F64):
    """Compiled against interpreted; float32 against the interpreter in float64 on the same
    inputs (see below)."""
    ref_args = [a.astype(F64) for a in args] if dtype == F32 else args
    if grad:
        got = ad.grad(f, argnums=tuple(range(len(args))))(*args)
        want = ad.grad(f, argnums=tuple(range(len(args))), mode="interpret")(*ref_args)
    else:
        got, want = ad.jit(f)(*args), ad.jit(f, mode="interpret")(*ref_args)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        if dtype == F32:
            # a whole function: norm-wise first-order bound, every value accumulating at most
            # as many roundings as there are input elements, each of the size of the largest
            # result (these test functions are well conditioned)
            terms = sum(a.size for a in args)
            mag = np.max(np.abs(w)) if np.size(w) else 0.0
            assert np.asarray(g).dtype == F32
            assert_within_rounding(g, w, mag, terms, what=getattr(f, "__name__", "f"))
        else:
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), **_tol(dtype))


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logsumexp_rows(x):
    m = np.max(x, axis=1, keepdims=True)
    return np.sum(np.log(np.sum(np.exp(x - m), axis=1)) + m[:, 0])


def mlp(x, w1, b1, w2):
    h = np.tanh(x @ w1 + b1)
    return np.mean((h @ w2) ** 2)


def softmax_xent(w, x, y):
    z = x @ w
    z = z - np.max(z, axis=1, keepdims=True)
    p = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)
    return -np.mean(np.log(np.sum(p * y, axis=1)))


def misc(x, y):
    a = np.where(x > 0, np.sqrt(np.abs(x)), np.sin(y))
    b = np.concatenate([a, y[::-1]], axis=0)
    c = np.cumsum(b * 2.0)
    return np.sum(c * np.cos(b)) + np.prod(np.tanh(x) + 2.0) + np.sum(np.clip(y, -0.5, 0.5) ** 3)


def indexing(x, idx):
    return np.sum(x[idx] ** 2) + np.sum(x[::2, 1:] * 3.0) + np.sum(np.transpose(x) @ x)


def gmm_small(alphas, means, icf, x):
    from autodiff_jit.bench.objectives import make_gmm
    return make_gmm(3, 4)(alphas, means, icf, x)


def short_dot_chain(x, w, v):
    # K = 3 contractions computed inline inside their consumers' loops
    return np.sum(np.tanh(x @ w) * 2.0) + np.sum(np.einsum("kij,nkj->nki", v, x.reshape(-1, 2, 3))
                                                  ** 2)


def pads(x):
    # its gradient adds padding views (scatter_slice) along axis 0 and axis 1: the store loop
    # is split at the axis-0 pad boundaries
    return np.sum(np.sin(x[1:, :] - x[:-1, :]) ** 2) + np.sum(x[2:, 1:] * x[:-2, :-1])


FUNCS = [
    (pads, lambda r: [r.normal(size=(7, 5))]),
    (pads, lambda r: [r.normal(size=(3, 2))]),
    (gmm_small, lambda r: [r.normal(size=4), r.normal(size=(4, 3)), 0.1 * r.normal(size=(4, 6)),
                           r.normal(size=(50, 3))]),
    (short_dot_chain, lambda r: [r.normal(size=(40, 3)), r.normal(size=(3, 5)),
                                 r.normal(size=(2, 4, 3))]),
    (rosen, lambda r: [r.uniform(-1, 1, 10)]),
    (rosen, lambda r: [r.uniform(-1, 1, 1)]),
    (rosen, lambda r: [r.uniform(-1, 1, 2)]),
    (logsumexp_rows, lambda r: [r.normal(size=(5, 7))]),
    (mlp, lambda r: [r.normal(size=(16, 20)), r.normal(size=(20, 8)) * 0.3, r.normal(size=8),
                     r.normal(size=(8, 3))]),
    (mlp, lambda r: [r.normal(size=(64, 100)), r.normal(size=(100, 70)) * 0.1,
                     r.normal(size=70), r.normal(size=(70, 10))]),
    (softmax_xent, lambda r: [r.normal(size=(6, 4)), r.normal(size=(10, 6)),
                              np.eye(4)[r.integers(0, 4, 10)]]),
    (misc, lambda r: [r.normal(size=6), r.normal(size=6)]),
    (lambda x, y, z: x * x * y + y * z ** 3 + x * z, lambda r: [1.5, -0.5, 2.0]),
]


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("k", range(len(FUNCS)))
def test_functions(rng, k, grad):
    f, make = FUNCS[k]
    _compare(f, *make(rng), grad=grad)


def test_indexing_function(rng):
    x = rng.normal(size=(5, 4))
    idx = np.array([0, 2, 2, 4])
    got = ad.grad(indexing)(x, idx)
    want = ad.grad(indexing, mode="interpret")(x, idx)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(ad.jit(indexing)(x, idx), indexing(x, idx), rtol=1e-12)


def test_float32_function(rng):
    x = rng.normal(size=(8, 5)).astype(np.float32)
    w = rng.normal(size=(5, 3)).astype(np.float32)
    f = lambda x, w: np.sum(np.tanh(x @ w) ** 2)  # noqa: E731
    _compare(f, x, w, grad=True, dtype=F32)
    _compare(f, x, w, dtype=F32)


def test_noncontiguous_inputs(rng):
    big = rng.normal(size=(10, 12))
    x = big[::2, ::3]          # strided view
    y = big.T[:4, :5]          # transposed view (Fortran order)
    f = lambda x, y: np.sum(np.exp(x[:, :4]) * y[:5, :4].T.T)  # noqa: E731
    f = lambda x, y: np.sum(np.exp(x[:4, :4]) * y[:4, :4])  # noqa: E731
    _compare(f, x, y)
    _compare(f, x, y, grad=True)


def test_results_literal_const_and_arg(rng):
    def f(x):
        return x, 3.0, np.arange(4.0), x * 2.0, x * 2.0
    x = rng.normal(size=3)
    got = ad.jit(f)(x)
    want = f(x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w)
    assert got[0] is not x


def test_threads(rng):
    n = 200_000   # large enough for a heap arena
    f = ad.grad(lambda x: np.sum(np.sin(x) * np.cos(x[::-1]) + x ** 2))
    xs = [rng.normal(size=n) for _ in range(4)]
    want = [ad.grad(lambda x: np.sum(np.sin(x) * np.cos(x[::-1]) + x ** 2),
                    mode="interpret")(x) for x in xs]
    f(xs[0])
    errors = []

    def work(i):
        for _ in range(5):
            if not np.allclose(f(xs[i]), want[i], rtol=1e-12):
                errors.append(i)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_custom_vjp_inlined(rng):
    @ad.custom_vjp
    def softplus(x):
        return np.log1p(np.exp(x))

    def fwd(x):
        return softplus(x), x

    def bwd(x, g):
        return (g / (1.0 + np.exp(-x)),)
    softplus.defvjp(fwd, bwd)
    f = lambda x: np.sum(softplus(x) * 2.0)  # noqa: E731
    x = rng.normal(size=7)
    _compare(f, x, grad=True)
    fn = ad.jit(f).ir(x)
    exe = compile_function(fn)
    assert isinstance(exe, CompiledFunction)


# ---------------------------------------------------------------------------------------------
# fusion, inspection, errors

def test_fused_chain_is_one_loop(rng):
    f = lambda x, y: np.sum(np.exp(x) * y + np.sin(x) * 2.0)  # noqa: E731
    x, y = rng.normal(size=1000), rng.normal(size=1000)
    jf = ad.jit(f)
    text = jf.llvm_ir(x, y)
    body = text.split("define internal void")[1].split("\n}")[0]
    assert body.count(".head:") == 1       # one loop
    assert "alloca double" in body and "x i8" not in body  # no intermediate arrays
    np.testing.assert_allclose(jf(x, y), f(x, y), rtol=1e-12)


def test_llvm_ir_and_asm_text(rng):
    x = rng.normal(size=64)
    jf = ad.jit(lambda x: np.sum(x * x))
    assert "define" in jf.llvm_ir(x)
    asm = jf.asm(x)
    assert isinstance(asm, str) and "ret" in asm
    exe = jf.specialize(x).executable
    assert "define" in exe.llvm_ir(optimized=True)


def test_vectorized(rng):
    x = rng.normal(size=4096)
    exe = ad.jit(lambda x: np.sum(np.exp(x) * 2.0 + x)).specialize(x).executable
    assert "x double>" in exe.llvm_ir(optimized=True)


def test_verification_failure_is_an_exception():
    fn = single("add", [AVal((3,), F64)] * 2)
    with pytest.raises(BackendError, match="LLVM"):
        CompiledFunction(fn, transform_ir=lambda t: t.replace("ret void", "", 1))


def test_compiled_matches_after_reuse(rng):
    jf = ad.jit(lambda x: x * 2.0 + 1.0)
    for _ in range(3):
        x = rng.normal(size=(4, 3))
        np.testing.assert_allclose(jf(x), x * 2.0 + 1.0)


# ---------------------------------------------------------------------------------------------
# loop nests (fuse.Nest): groups sharing loops, compiled vs interpreted and vs no nests

def _softmax_rows(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def _mixed_reductions(x, w):
    # 3-D: reductions over axis 0 (across the outer loop), axis 1 (across an inner nest),
    # axes (0, 2), trailing axes, and elementwise consumers of row results
    y = np.tanh(x) * w
    a = np.sum(y, axis=0)
    b = np.max(y, axis=1)
    c = np.sum(y * y, axis=(0, 2))
    d = np.sum(np.exp(y), axis=(1, 2))
    z = y / (1.0 + d[:, None, None])
    return np.sum(a) + np.sum(b * 2.0) + np.sum(c) + np.sum(z * z), z


NEST_FUNCS = [
    (_softmax_rows, lambda r: [r.normal(size=(30, 7))]),
    (lambda x: np.sum(np.sum(np.exp(x), axis=1) * np.max(x, axis=1)),
     lambda r: [r.normal(size=(50, 8))]),
    (lambda x, w: _mixed_reductions(x, w)[0],
     lambda r: [r.normal(size=(6, 5, 4)), r.normal(size=(5, 4))]),
    (lambda x, w: _mixed_reductions(x, w)[1],
     lambda r: [r.normal(size=(6, 5, 4)), r.normal(size=(5, 4))]),
    (gmm_small, lambda r: [r.normal(size=4), r.normal(size=(4, 3)), 0.1 * r.normal(size=(4, 6)),
                           r.normal(size=(50, 3))]),
]


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("k", range(len(NEST_FUNCS)))
def test_loop_nests(rng, k, grad, monkeypatch):
    from autodiff_jit.passes import fuse
    f, make = NEST_FUNCS[k]
    args = make(rng)
    if grad and k in (0, 3):
        f = (lambda g: lambda *a: np.sum(g(*a) ** 3))(f)
    _compare(f, *args, grad=grad)
    monkeypatch.setattr(fuse, "NESTS", False)
    _compare(f, *args, grad=grad)


def test_loop_nest_shares_the_row_loop(rng):
    x = rng.normal(size=(30, 7))
    text = ad.jit(_softmax_rows).llvm_ir(x)
    body = text.split("define internal void")[1].split("\n}")[0]
    assert body.count("n0.head:") == 1     # one loop over the rows ...
    assert body.count(".head:") == 1 + 3   # ... containing max, exp + sum, div loops
    np.testing.assert_allclose(ad.jit(_softmax_rows)(x), _softmax_rows(x), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# recompute (fuse.RECOMPUTE): cheap values read at shifted indices are recomputed at each use

def _shift_2d(x):
    y = x * x - 0.5
    return np.sum(y[:, 1:] * y[:, :-1]) + np.sum(np.transpose(y)[1:, :] ** 3)


def _shift_nested(x):
    y = x * 2.0 + x * x
    z = y[1:] - y[:-1]
    return np.sum(z[2:] * z[:-2]) + np.sum(np.sin(z[::2]))


def _shift_strided(x):
    y = np.abs(x) + 1.0
    z = np.maximum(x, 0.5) * 3.0
    return np.sum(y[::2] * y[1::2]) + np.sum(y[::-1] * y) + np.sum(z[::-3] / z[2::3])


RECOMPUTE_FUNCS = [
    (rosen, lambda r: [r.uniform(-1, 1, 1000)]),
    (rosen, lambda r: [r.uniform(-1, 1, 3)]),
    (pads, lambda r: [r.normal(size=(7, 5))]),
    (_shift_2d, lambda r: [r.normal(size=(6, 9))]),
    (_shift_nested, lambda r: [r.normal(size=37)]),
    (_shift_strided, lambda r: [r.normal(size=30)]),
    (lambda x: (lambda y: (y[1:] - y[:-1], y[2:] * 2.0))(x * 3.0 - 1.0),
     lambda r: [r.normal(size=(9, 2))]),
]


@pytest.mark.parametrize("recompute", [True, False])
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("k", range(len(RECOMPUTE_FUNCS)))
def test_recompute(rng, k, grad, recompute, monkeypatch):
    from autodiff_jit.passes import fuse
    monkeypatch.setattr(fuse, "RECOMPUTE", recompute)
    f, make = RECOMPUTE_FUNCS[k]
    args = make(rng)
    if grad and k == len(RECOMPUTE_FUNCS) - 1:
        f = (lambda g: lambda x: np.sum(g(x)[0] ** 2) + np.sum(g(x)[1]))(f)
    _compare(f, *args, grad=grad)
    if not grad:
        _compare(f, *[a.astype(F32) for a in args], dtype=F32)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fill", [0.0, 1.5, -0.0])
@pytest.mark.parametrize("shape,widths", [
    ((40, 30), 8), ((40, 30), ((0, 0), (3, 1))), ((40, 30), ((2, 0), (0, 5))),
    ((5, 6, 7), ((1, 2), (0, 0), (3, 1))), ((300, 2), ((0, 0), (1, 1))), ((1, 9), 2)])
def test_constant_pad_exact(rng, shape, widths, fill, threads, monkeypatch):
    from autodiff_jit.backend import parallel
    # a padding view split along axis 0 and the last axis (tiny MIN_WORK: the chunked split
    # too), and the inside mask read as a literal per piece: still numpy's values, bit for bit
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    monkeypatch.setattr(ad.config, "num_threads", threads)
    x = rng.normal(size=shape)
    x.flat[0] = -0.0

    def f(x):
        return np.pad(x, widths, mode="constant", constant_values=fill)
    want = np.pad(x, widths, mode="constant", constant_values=fill)
    got = ad.jit(f)(x)
    assert got.tobytes() == want.tobytes()
    w = rng.normal(size=want.shape)
    g = ad.grad(lambda x: np.sum(f(x) * w))(x)
    inside = tuple(slice(a, a + d) for a, d in
                   zip(np.broadcast_to(np.asarray(widths), (len(shape), 2))[:, 0], shape))
    np.testing.assert_array_equal(g, w[inside])


def test_constant_pad_reads_no_mask(rng, monkeypatch):
    from autodiff_jit.backend import parallel
    # every piece of the split loop is inside or outside the array along both axes: no mask
    # load, no clamped index, no select left (1000x1000: 3.6x numpy's time before)
    monkeypatch.setattr(parallel, "MIN_WORK", 1 << 62)
    x = rng.normal(size=(50, 40))
    fn = ad.jit(lambda x: np.pad(x, 8, mode="constant", constant_values=1.5)).ir(x)
    module = compile_function(fn).llvm_ir(optimized=True)
    assert "load i8," not in module and " select " not in module and "x double>" in module


def test_rosenbrock_gradient_is_one_loop_without_intermediates(rng, monkeypatch):
    from autodiff_jit.backend import parallel
    from autodiff_jit.passes import fuse
    # the loop's structure, unsplit (tests/backend/test_parallel.py checks the split one)
    monkeypatch.setattr(parallel, "MIN_WORK", 1 << 62)
    x = rng.uniform(-1, 1, 100_000)
    fn = ad.grad(rosen, mode="interpret").ir(x)
    want = interpret.run(fn, [x])[0]
    monkeypatch.setattr(fuse, "RECOMPUTE", False)
    before = compile_function(fn)
    assert before.lowered.arena_bytes >= 8 * (x.size - 1)   # 200*(x[1:]-x[:-1]**2) stored
    monkeypatch.setattr(fuse, "RECOMPUTE", True)
    exe = compile_function(fn)
    assert exe.lowered.arena_bytes == 0                      # recomputed at i and i-1
    body = exe.llvm_ir().split("define internal void")[1].split("\n}")[0]
    # one store loop, split at the pad boundaries: element 0, the body loop, the last element
    assert body.count(".head:") == 1 and body.count("seg.head:") == 1
    assert "select" not in body                              # no bounds checks left
    assert "x double>" in exe.llvm_ir(optimized=True)        # vectorized
    np.testing.assert_allclose(exe([x])[0], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(before([x])[0], want, rtol=1e-12, atol=1e-12)
