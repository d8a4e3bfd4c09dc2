"""Primitive-level checks: every registered primitive's VJP against central finite differences of
its numpy implementation, and its JVP against finite differences and against the VJP
(<jvp(t), g> == <t, vjp(g)>). Property tests draw random shapes with hypothesis. A coverage
test fails when a primitive is registered without a test here."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import autodiff_jit as ad
from autodiff_jit.primitives import all_primitives, get_primitive

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)


def _fd_vjp(prim, args, params, g, i, eps):
    """<g, d impl / d args[i]> by central differences, elementwise over args[i]."""
    x = np.array(args[i], copy=True)
    out = np.zeros(x.shape, np.float64)
    for k in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.reshape(-1)[k] += eps
        minus.reshape(-1)[k] -= eps
        fp = prim.impl(*args[:i], plus, *args[i + 1:], **params)
        fm = prim.impl(*args[:i], minus, *args[i + 1:], **params)
        out.reshape(-1)[k] = np.sum(g * (np.asarray(fp, np.float64) - np.asarray(fm, np.float64))) / (2 * eps)
    return out


def _float_inputs(args):
    return [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]


def _dense(ct, shape):
    """A rule's cotangent as a dense float64 array of the input's shape (None is zero)."""
    if ct is None:
        return np.zeros(shape)
    return np.broadcast_to(np.asarray(ct, np.float64), shape)


def check_primitive(name, args, params, rtol=1e-6, atol=1e-7, eps=1e-6, seed=0):
    prim = get_primitive(name)
    rng = np.random.default_rng(seed)
    args = [np.asarray(a) for a in args]
    out = np.asarray(prim.impl(*args, **params))
    # the shape rule agrees with the implementation
    aval, = prim.abstract_eval([ad.ir.AVal(a.shape, a.dtype) for a in args], params)
    assert aval.shape == out.shape and aval.dtype == out.dtype, (aval, out.shape, out.dtype)
    g = rng.standard_normal(out.shape).astype(out.dtype)
    cts = prim.vjp(g, out, *args, **params)
    assert len(cts) == len(args)
    fl = _float_inputs(args)
    for i in range(len(args)):
        if i not in fl:
            assert cts[i] is None, f"{name}: cotangent for non-float input {i}"
            continue
        got = _dense(cts[i], args[i].shape)
        expected = _fd_vjp(prim, args, params, g, i, eps)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                                   err_msg=f"{name} vjp wrt input {i}")
    if prim.jvp is None:
        return
    ts = [rng.standard_normal(a.shape).astype(a.dtype) if i in fl else None
          for i, a in enumerate(args)]
    tout = prim.jvp(ts, out, *args, **params)
    tout = _dense(tout, out.shape)
    # <jvp(t), g> == <t, vjp(g)>
    lhs = np.sum(tout * g)
    rhs = sum(np.sum(ts[i] * _dense(cts[i], args[i].shape)) for i in fl)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9 if out.dtype == np.float64 else 1e-5, atol=1e-9,
                               err_msg=f"{name}: jvp/vjp inner products differ")
    # the JVP is the directional derivative
    plus = [a + eps * t if t is not None else a for a, t in zip(args, ts)]
    minus = [a - eps * t if t is not None else a for a, t in zip(args, ts)]
    fd = (np.asarray(prim.impl(*plus, **params), np.float64) -
          np.asarray(prim.impl(*minus, **params), np.float64)) / (2 * eps)
    np.testing.assert_allclose(tout, fd, rtol=rtol, atol=atol, err_msg=f"{name} jvp")


# ---------------------------------------------------------------------------------------------
# fixed cases: name -> list of (args, params)

_r = np.random.default_rng(7)


def n(*s):
    return _r.standard_normal(s)


def pos(*s):
    return _r.uniform(0.5, 2.0, s)


def unit(*s):
    return _r.uniform(-0.8, 0.8, s)


def distinct(*s):
    k = int(np.prod(s))
    return (_r.permutation(k) * 0.31 - 1.0 + _r.uniform(0, 0.05, k)).reshape(s)


UNARY_DOMAIN = {"neg": n, "exp": n, "log": pos, "log1p": pos, "expm1": n, "sqrt": pos, "sin": n,
                "cos": n, "tan": unit, "tanh": n, "sinh": n, "cosh": n, "arcsin": unit,
                "arccos": unit, "arctan": n, "abs": distinct}
BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (3,)), ((3, 1), ())]

CASES = {name: [([dom(3, 4)], {}), ([dom(5)], {})] for name, dom in UNARY_DOMAIN.items()}
CASES["integer_pow"] = [([n(3, 4)], {"y": y}) for y in (0, 1, 2, 3)] + \
    [([-pos(4)], {"y": y}) for y in (-1, -2, 3, 4)]
CASES["convert_element_type"] = [([n(3, 4)], {"dtype": np.dtype(np.float64)})]


def _binary_cases(a_dom, b_dom):
    return [([a_dom(*sa), b_dom(*sb)], {}) for sa, sb in BINARY_SHAPES]


for _name in ("add", "sub", "mul"):
    CASES[_name] = _binary_cases(n, n)
CASES["div"] = _binary_cases(n, pos)
CASES["pow"] = _binary_cases(pos, n)
CASES["fmod"] = _binary_cases(n, pos)
CASES["cumprod"] = [([n(3, 4)], {"axis": 1}), ([n(5)], {"axis": 0}),
                    ([np.array([[1.5, 0.0, 0.8, 0.0], [0.0, 2.0, -0.4, 1.1]])], {"axis": 1}),
                    ([np.array([[1.5, 0.0], [0.0, 2.0], [0.7, 0.0]])], {"axis": 0})]
# cumprod_grad(g, out, x): its rules hold for out = cumprod(x); away from zeros the inputs
# may vary independently (at zeros: tests/numpy/test_cumprod_grad.py, gradients of gradients)
CASES["cumprod_grad"] = [([n(3, 4), n(3, 4), n(3, 4)], {"axis": 1}),
                         ([n(5), n(5), n(5)], {"axis": 0})]
CASES["maximum"] = CASES["minimum"] = _binary_cases(distinct, lambda *s: distinct(*s) + 0.013)
CASES["fmax"] = CASES["fmin"] = CASES["maximum"]  # (ties and NaNs: tests/test_ties.py)
CASES["select"] = [([n(3, 4) > 0, n(3, 4), n(3, 4)], {}), ([n(3, 4) > 0, n(4), n(3, 1)], {}),
                   ([n(4) > 0, n(3, 4), np.float64(0.5)], {})]
_AXES = [(0,), (1,), (0, 2), (0, 1, 2), ()]
CASES["reduce_sum"] = [([n(2, 3, 4)], {"axes": a}) for a in _AXES]
CASES["reduce_max"] = [([distinct(2, 3, 4)], {"axes": a}) for a in _AXES]
CASES["reduce_min"] = [([distinct(2, 3, 4)], {"axes": a}) for a in _AXES]
CASES["reduce_prod"] = [([pos(2, 3, 4)], {"axes": a}) for a in _AXES] + \
    [([np.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [1.2, 0.7, -0.4]])], {"axes": (1,)})]
CASES["cumsum"] = [([n(3, 4)], {"axis": a, "reverse": r}) for a in (0, 1) for r in (False, True)]
CASES["reshape"] = [([n(2, 6)], {"shape": (3, 4)}), ([n(3)], {"shape": (1, 3, 1)}),
                    ([n(1, 1)], {"shape": ()})]
CASES["transpose"] = [([n(2, 3, 4)], {"perm": (2, 0, 1)}), ([n(3, 4)], {"perm": (1, 0)})]
CASES["broadcast_to"] = [([n(3, 1)], {"shape": (2, 3, 4)}), ([n()], {"shape": (3,)}),
                         ([n(4)], {"shape": (3, 4)})]
CASES["concatenate"] = [([n(2, 3), n(2, 1), n(2, 2)], {"axis": 1}), ([n(1, 3), n(2, 3)], {"axis": 0})]
CASES["slice"] = [([n(5, 4)], {"start": (4, 0), "step": (-2, 1), "shape": (3, 4)}),
                  ([n(5, 4)], {"start": (1, 3), "step": (2, -1), "shape": (2, 3)}),
                  ([n(5, 4)], {"start": (0, 1), "step": (1, 1), "shape": (0, 2)})]
CASES["scatter_slice"] = [([n(3, 4)], {"start": (4, 0), "step": (-2, 1), "in_shape": (5, 4)}),
                          ([n(2, 3)], {"start": (1, 3), "step": (2, -1), "in_shape": (5, 4)})]
# runs of step -1, 1 and 0; an outer axis of several runs (a table) and an innermost one of more
# than MAX_RUN_LOOPS runs (a table too), a repeated source (accumulated by take_runs_add)
_RUNS = (((2, 2, -1), (0, 4, 1), (3, 2, 0)), ((1, 3, 1), (3, 2, -1)))
_MANY = (((0, 3, 1),), tuple((k % 4, 1, 1) for k in range(11)))
CASES["take_runs"] = [([n(4, 4)], {"runs": _RUNS}), ([n(3, 4)], {"runs": _MANY}),
                      ([n(5)], {"runs": (((4, 5, -1), (1, 2, 0)),)})]
CASES["take_runs_add"] = [([n(8, 5)], {"runs": _RUNS, "in_shape": (4, 4)}),
                          ([n(3, 11)], {"runs": _MANY, "in_shape": (3, 4)})]
_IDX = np.array([[0, 2], [2, 2]])
CASES["take"] = [([n(3, 4), _IDX], {"axis": 1}), ([n(3, 4), np.array([2, 0, 2, 2, 1])], {"axis": 0})]
# scatter(x, idx, upd): repeated indices (4 and 0/-6 twice: only the last update counts) and none
CASES["scatter"] = [([n(6), np.array([4, 0, 4, -6, 2]), n(5)], {}),
                    ([n(4), np.zeros(0, np.int64), n(0)], {})]
CASES["take_add"] = [([n(3, 2, 2), _IDX], {"axis": 1, "size": 4}),
                     ([n(5, 4), np.array([2, 0, 2, 2, 1])], {"axis": 0, "size": 3})]
CASES["convolve"] = [([n(6), n(4)], {"lo": 0, "size": 9}), ([n(3), n(5)], {"lo": -2, "size": 11}),
                     ([n(7), n(1)], {"lo": 2, "size": 3}),
                     ([n(2, 6), n(2, 4)], {"lo": 1, "size": 7})]   # a batch of two
CASES["dot_general"] = [
    ([n(3, 4), n(4, 2)], {"contract": ((1,), (0,)), "batch": ((), ())}),
    ([n(4), n(4)], {"contract": ((0,), (0,)), "batch": ((), ())}),
    ([n(3), n(4)], {"contract": ((), ()), "batch": ((), ())}),
    ([n(2, 3, 4), n(2, 4, 5)], {"contract": ((2,), (1,)), "batch": ((0,), (0,))}),
    ([n(4, 2, 3), n(3, 5, 2)], {"contract": ((2,), (0,)), "batch": ((1,), (2,))}),
    ([n(3, 4), n(2, 3)], {"contract": ((0,), (1,)), "batch": ((), ())}),
]

# Primitives with zero derivative almost everywhere, or none at all; they must say so.
NON_DIFFERENTIABLE = {"sign", "floor", "ceil", "round", "logical_not", "lt", "le", "gt", "ge",
                      "eq", "ne", "logical_and", "logical_or", "logical_xor", "argmax", "argmin",
                      "stop_gradient", "argsort", "argselect", "argpartition"}
TESTED_ELSEWHERE = {"custom_vjp_call": "test_custom_vjp_call_primitive",
                    "scan": "test_region_op_vjp", "while": "test_region_op_vjp",
                    "cond": "test_region_op_vjp",
                    # linear algebra (multiple results, structured inputs): tests/test_linalg.py
                    **{p: "test_linalg.test_primitive_rules" for p in (
                        "solve", "lu_solve", "triangular_solve", "slogdet", "cholesky", "eigh",
                        "svd", "qr", "pinv", "triangular_matmul", "congruence_solve")},
                    "sort": "tests/numpy/test_sorting.py::test_sort_primitive_rules",
                    "partition": "tests/numpy/test_partition_plans.py (gradients, vs FD)",
                    "partition_grad": "tests/numpy/test_partition_plans.py::"
                                      "test_partition_grad_rules",
                    "unpermute": "tests/numpy/test_partition_plans.py::test_unpermute_rules"}


def _region_cases():
    """Region ops (loops and branches) are built by their Python front ends; their VJP rules are
    checked through the programs that contain them (the equation is asserted to be there)."""
    from autodiff_jit.control import cond, fori_loop, while_loop
    return {
        "scan": (lambda x, w: np.sum(fori_loop(0, 3, lambda i, c: np.tanh(c * w + 0.1 * i), x) ** 2),
                 [n(3), n(3)]),
        "while": (lambda x: np.sum(while_loop(lambda c: np.sum(c * c) < 50.0,
                                              lambda c: c * 1.5 + np.sin(c), x) ** 2),
                  [np.array([0.5, 0.8, 1.1])]),
        "cond": (lambda x: cond(np.sum(x) > 0, lambda x: np.sum(np.sin(x) * x),
                                lambda x: np.sum(x ** 3), x), [np.array([0.3, -0.2, 0.4])]),
        "cond_false": (lambda x: cond(np.sum(x) > 0, lambda x: np.sum(np.sin(x) * x),
                                      lambda x: np.sum(x ** 3), x), [np.array([-0.3, -0.2, 0.4])]),
    }


@pytest.mark.parametrize("name", ["scan", "while", "cond", "cond_false"])
def test_region_op_vjp(name):
    from helpers import check_grads
    f, args = _region_cases()[name]
    assert ad.make_ir(f)(*args).count(name.split("_")[0]) == 1
    check_grads(f, args, modes=("interpret",))


def _case_ids():
    return [(name, k) for name in sorted(CASES) for k in range(len(CASES[name]))]


@pytest.mark.parametrize("name,k", _case_ids(), ids=[f"{a}-{b}" for a, b in _case_ids()])
def test_primitive_vjp_jvp(name, k):
    args, params = CASES[name][k]
    check_primitive(name, args, params)


def test_convert_element_type_to_float32():
    # f64 -> f32: the cotangent comes back as f64, the tangent goes out as f32
    prim = get_primitive("convert_element_type")
    x = np.array([0.3, -1.25, 2.0])
    out = prim.impl(x, dtype=np.dtype(np.float32))
    g = np.array([1.0, 2.0, 3.0], np.float32)
    ct, = prim.vjp(g, out, x, dtype=np.dtype(np.float32))
    assert np.asarray(ct).dtype == np.float64
    np.testing.assert_array_equal(ct, [1.0, 2.0, 3.0])
    t = prim.jvp([np.array([1.0, 0.5, -1.0])], out, x, dtype=np.dtype(np.float32))
    assert np.asarray(t).dtype == np.float32
    # to an integer type: no gradient flows back into the integer input direction
    xi = np.array([1, 2, 3])
    ct_i, = prim.vjp(np.ones(3), xi.astype(np.float64), xi, dtype=np.dtype(np.float64))
    assert ct_i is None


def test_custom_vjp_call_primitive():
    # fwd returns (sin x, residual cos x); bwd multiplies the cotangent by the residual
    fwd = ad.make_ir(lambda x: (np.sin(x), np.cos(x)))(np.zeros(3))
    bwd = ad.make_ir(lambda c, g: g * c)(np.zeros(3), np.zeros(3))
    prim = get_primitive("custom_vjp_call")
    params = {"fwd": fwd, "bwd": bwd, "num_outputs": 1}
    x = n(3)
    outs = prim.impl(x, **params)
    np.testing.assert_allclose(outs[0], np.sin(x))
    np.testing.assert_allclose(outs[1], np.cos(x))
    avals = prim.abstract_eval([ad.ir.AVal((3,), np.float64)], params)
    assert [a.shape for a in avals] == [(3,), (3,)]
    g = n(3)
    ct, = prim.vjp([g, None], outs, x, **params)
    eps = 1e-6
    fd = np.array([(np.sum(g * np.sin(x + eps * e)) - np.sum(g * np.sin(x - eps * e))) / (2 * eps)
                   for e in np.eye(3)])
    np.testing.assert_allclose(ct, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(NON_DIFFERENTIABLE))
def test_non_differentiable_primitives_declare_it(name):
    prim = get_primitive(name)
    assert not prim.differentiable
    assert prim.vjp is None and prim.jvp is None


def test_every_differentiable_primitive_is_covered():
    prims = all_primitives()
    untested = sorted(set(prims) - set(CASES) - NON_DIFFERENTIABLE - set(TESTED_ELSEWHERE))
    assert not untested, f"primitives without a VJP/JVP test in tests/test_primitives.py: {untested}"
    wrongly_listed = sorted(n for n in NON_DIFFERENTIABLE if prims[n].differentiable)
    assert not wrongly_listed
    for name in CASES:
        assert prims[name].differentiable and prims[name].vjp is not None, name


def test_non_differentiable_primitives_give_zero_gradients():
    x = np.array([-1.5, 0.3, 2.2])
    f = lambda x: np.sum(np.sign(x) + np.floor(x) + np.ceil(x) + np.rint(x) + (x > 0)  # noqa: E731
                         + np.argmax(x) + ad.stop_gradient(x) ** 2) + np.sum(x * 0.0)
    for mode in ("interpret", "compiled"):
        np.testing.assert_array_equal(ad.grad(f, mode=mode)(x), np.zeros(3))


# ---------------------------------------------------------------------------------------------
# property tests on random shapes

seeds = st.integers(0, 2 ** 31 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


@PROPERTY
@given(name=st.sampled_from(sorted(UNARY_DOMAIN)), shape=shapes, seed=seeds)
def test_unary_random_shapes(name, shape, seed):
    rng = np.random.default_rng(seed)
    dom = UNARY_DOMAIN[name]
    x = {n: rng.standard_normal, pos: lambda s: rng.uniform(0.5, 2.0, s),
         unit: lambda s: rng.uniform(-0.8, 0.8, s),
         distinct: lambda s: rng.uniform(0.1, 2.0, s) * rng.choice([-1, 1], s)}[dom](shape)
    check_primitive(name, [np.asarray(x, np.float64)], {}, seed=seed)


@PROPERTY
@given(name=st.sampled_from(["add", "sub", "mul", "div", "pow", "maximum", "minimum"]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=seeds)
def test_binary_random_broadcast_shapes(name, shapes, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = rng.uniform(0.5, 2.0, sa) if name == "pow" else rng.standard_normal(sa)
    b = rng.uniform(0.5, 2.0, sb) if name == "div" else rng.standard_normal(sb)
    # maximum/minimum: continuous draws, so ties (the kink) have probability 0
    check_primitive(name, [np.asarray(a, np.float64), np.asarray(b, np.float64)], {}, seed=seed,
                    rtol=1e-5, atol=1e-6)


@PROPERTY
@given(name=st.sampled_from(["add", "sub", "mul", "div", "pow", "maximum", "minimum"]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=seeds)
def test_binary_vjp_needs_skips_only_the_unwanted_partial(name, shapes, seed):
    # needs=(bool, bool): a partial nobody needs is None, the other equals the full rule's
    rng = np.random.default_rng(seed)
    prim = get_primitive(name)
    sa, sb = shapes.input_shapes
    a = rng.uniform(0.5, 2.0, sa)
    b = rng.uniform(0.5, 2.0, sb)
    out = prim.impl(a, b)
    g = rng.standard_normal(np.shape(out))
    full = prim.vjp(g, out, a, b)
    for needs in [(True, False), (False, True), (False, False), (True, True)]:
        part = prim.vjp(g, out, a, b, needs=needs)
        for want, got, ref in zip(needs, part, full):
            if want:
                np.testing.assert_array_equal(got, ref)
                assert np.shape(got) == np.shape(ref)
            else:
                assert got is None


@PROPERTY
@given(name=st.sampled_from(["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"]),
       shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), data=st.data(),
       seed=seeds)
def test_reductions_random_axes(name, shape, data, seed):
    rng = np.random.default_rng(seed)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)))))
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    check_primitive(name, [x], {"axes": axes}, seed=seed)


@PROPERTY
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), data=st.data(),
       seed=seeds)
def test_shape_primitives_random(shape, data, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    check_primitive("transpose", [x], {"perm": perm}, seed=seed)
    check_primitive("reshape", [x], {"shape": (x.size,)}, seed=seed)
    axis = data.draw(st.integers(0, len(shape) - 1))
    check_primitive("cumsum", [x], {"axis": axis, "reverse": data.draw(st.booleans())}, seed=seed)
    check_primitive("broadcast_to", [x], {"shape": (2,) + shape}, seed=seed)
    # a random strided slice on each axis, negative steps included
    start, step, size = [], [], []
    for d in shape:
        st_ = data.draw(st.sampled_from([1, 2, -1, -2]))
        s = data.draw(st.integers(0, d - 1))
        room = (d - s) if st_ > 0 else s + 1
        k = data.draw(st.integers(1, (room + abs(st_) - 1) // abs(st_)))
        start.append(s), step.append(st_), size.append(k)
    check_primitive("slice", [x], {"start": tuple(start), "step": tuple(step), "shape": tuple(size)},
                    seed=seed)
    idx = rng.integers(0, shape[axis], size=(3,))
    check_primitive("take", [x, idx], {"axis": axis}, seed=seed)


@PROPERTY
@given(m=st.integers(1, 4), k=st.integers(1, 4), nn=st.integers(1, 4), b=st.integers(1, 3),
       seed=seeds)
def test_dot_general_random_sizes(m, k, nn, b, seed):
    rng = np.random.default_rng(seed)
    check_primitive("dot_general", [rng.standard_normal((m, k)), rng.standard_normal((k, nn))],
                    {"contract": ((1,), (0,)), "batch": ((), ())}, seed=seed)
    check_primitive("dot_general", [rng.standard_normal((b, m, k)), rng.standard_normal((b, k, nn))],
                    {"contract": ((2,), (1,)), "batch": ((0,), (0,))}, seed=seed)
