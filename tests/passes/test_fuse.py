"""The fusion analysis (passes/fuse.py): which equations share a kernel."""
import numpy as np

import autodiff_jit as ad
from autodiff_jit.passes import fuse


def _plan(f, *args):
    fn = ad.jit(f, mode="interpret").ir(*args)
    return fn, fuse.plan(fn)


def _names(group):
    return [e.prim.name for e in group.eqns]


def test_elementwise_chain_and_reduction_is_one_group():
    x = np.ones(10)
    fn, p = _plan(lambda x, y: np.sum(np.exp(x) * y + 2.0), x, x)
    assert len(fn.eqns) == 4           # before: four equations
    assert len(p.groups) == 1          # after: one kernel
    assert p.groups[0].kind == "reduce"
    assert set(_names(p.groups[0])) == {"exp", "mul", "add", "reduce_sum"}


def test_value_used_twice_is_stored():
    x = np.ones(10)
    fn, p = _plan(lambda x: np.sum(np.exp(x)) + np.max(np.exp(x) * 2.0), x)
    # cse merges the two exp(x); it is then used twice, so it gets its own kernel
    exps = [e for e in fn.eqns if e.prim.name == "exp"]
    assert len(exps) == 1
    assert p.is_stored(exps[0].outputs[0])
    assert any(g.root is exps[0] for g in p.groups)


def test_views_are_never_stored_and_fuse_through():
    x = np.ones((4, 6))
    fn, p = _plan(lambda x: np.sum(np.transpose(np.sin(x))[1:, ::2] * 3.0), x)
    assert len(p.groups) == 1
    assert "transpose" in _names(p.groups[0]) and "sin" in _names(p.groups[0])


def test_broadcast_of_a_computed_vector_is_stored():
    x, y = np.ones(5), np.ones((7, 5))
    fn, p = _plan(lambda x, y: np.sum(np.exp(x) * y), x, y)
    exp = next(e for e in fn.eqns if e.prim.name == "exp")
    assert p.is_stored(exp.outputs[0])   # recomputing exp 7 times would be wasteful
    assert len(p.groups) == 2


def test_scalar_broadcast_is_inlined():
    x = np.ones(5)
    fn, p = _plan(lambda s, x: np.sum(np.exp(s) * x), 1.0, x)
    assert len(p.groups) == 1


def test_dot_operands_are_stored():
    a, b = np.ones((4, 20)), np.ones((20, 2))
    fn, p = _plan(lambda a, b: np.sum(np.tanh(a) @ b), a, b)
    tanh = next(e for e in fn.eqns if e.prim.name == "tanh")
    assert p.is_stored(tanh.outputs[0])
    kinds = [g.kind for g in p.groups]
    assert kinds == ["elementwise", "other", "reduce"]


def test_short_contraction_is_inlined_into_its_consumer():
    a, b = np.ones((4, 3)), np.ones((3, 2))
    fn, p = _plan(lambda a, b: np.sum(np.tanh(a) @ b), a, b)
    tanh = next(e for e in fn.eqns if e.prim.name == "tanh")
    dot = next(e for e in fn.eqns if e.prim.name == "dot_general")
    assert p.is_stored(tanh.outputs[0])          # read N times by the dot
    assert id(dot.outputs[0]) in p.inlined
    assert [g.kind for g in p.groups] == ["elementwise", "reduce"]


def test_short_contraction_used_twice_is_stored():
    a, b = np.ones((4, 3)), np.ones((3, 2))
    fn, p = _plan(lambda a, b: np.sum(a @ b) + np.max(a @ b), a, b)
    dot = next(e for e in fn.eqns if e.prim.name == "dot_general")
    assert p.is_stored(dot.outputs[0])


def test_dot_operand_needing_divmod_is_stored():
    # reshape of a transposed value: indexing it per element needs div/mod, and a dot reads
    # each element many times, so the view is materialized once
    a, x = np.ones((5, 6)), np.ones((100, 3, 5))
    fn, p = _plan(lambda a, x: np.sum(np.einsum("kij,nkj->nki", a.T.reshape(3, 2, 5), x)), a, x)
    rs = next(e for e in fn.eqns if e.prim.name == "reshape" and e.outputs[0].shape == (3, 2, 5))
    assert p.is_stored(rs.outputs[0])


def test_results_are_stored_and_dead_values_skipped():
    x = np.ones(3)
    fn, p = _plan(lambda x: (x * 2.0, np.sum(x * 2.0)), x)
    mul = next(e for e in fn.eqns if e.prim.name == "mul")
    assert p.is_stored(mul.outputs[0])
    assert len(p.groups) == 2


def test_gradient_groups_are_fewer_than_equations():
    x = np.ones(100)
    rosen = lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)  # noqa
    fn = ad.grad(rosen, mode="interpret").ir(x)
    p = fuse.plan(fn)
    assert len(p.groups) < len(fn.eqns) / 2
    assert fuse.describe(fn).count("Group(") == len(p.groups)


def test_value_added_to_itself_is_inlined():
    x = np.ones(10)
    fn, p = _plan(lambda x: np.sum(np.exp(x) + np.exp(x)), x)   # cse: add(e, e)
    exp = next(e for e in fn.eqns if e.prim.name == "exp")
    add = next(e for e in fn.eqns if e.prim.name == "add")
    assert add.inputs[0] is add.inputs[1]
    assert id(exp.outputs[0]) in p.inlined
    assert len(p.groups) == 1
